package backends

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// DefaultThreshold is Flask's CACHE_THRESHOLD default: the most entries a
// SimpleCache or FileSystemCache holds.
const DefaultThreshold = 500

// Simple is Flask's SimpleCache: an in-process cache, bounded by a threshold
// and safe for concurrent use.
//
// It never holds more than threshold entries (Flask holds threshold+1). When
// an insert would exceed the threshold, one entry makes room: an expired
// entry if there is one, otherwise the oldest write (see [SimpleOptions] for
// a policy with a higher hit ratio). Flask sorts the whole cache on every
// prune and evicts never-expiring entries first; Simple does neither.
// Entries are kept in one write-ordered ring per distinct TTL, so each ring
// is also ordered by expiry, and looking for an expired entry inspects only
// the ring heads: O(k) per insert for k distinct TTLs in use (a handful in
// practice), independent of the number of entries.
//
// Reads take no lock and write no shared memory: the index is a hash table
// that readers search with atomic loads while writers, one at a time,
// change it (see simpleTable), and each entry is read under its own seqlock.
// Writers are serialized by one mutex, which keeps eviction order exact and
// global. An overwrite updates its entry in place and an insert into a full
// cache reuses the evicted entry, so neither allocates.
// Get returns the stored bytes without a copy, and an entry keeps the slice
// given to Set (the [Backend] contract makes it the backend's), so a value
// stored through [Cache] is copied once, into its envelope.
//
// Expiry is exact. A Get of an entry that can expire compares its expiry
// with a coarse clock, updated by a goroutine every 100 ms, and reads the
// precise clock only when the entry is within a second of expiring, so the
// coarse clock's lag never changes an answer unless its goroutine is kept
// from running for most of a second. The goroutine starts with the first
// expiring entry and stops at Close or when the cache is garbage.
type Simple struct {
	threshold int
	seed      maphash.Seed
	now       func() int64 // precise monotonic nanoseconds, never 0; a field so tests can stop time
	table     atomic.Pointer[simpleTable]
	coarse    atomic.Pointer[coarseClock] // nil until the first expiring entry
	noCoarse  bool                        // tests that stop time keep every read on now

	mu      sync.Mutex  // serializes writers; readers never take it
	n       int         // entries in the table, expired ones included
	order   simpleEntry // EvictFIFO: sentinel of the write-order ring; order.qnext is the oldest write
	lfu     *tinyLFU    // EvictTinyLFU's queues and sketch; nil for EvictFIFO or no threshold
	classes map[time.Duration]*ttlClass
	heads   []*ttlClass // the values of classes; scanning a slice is cheaper than ranging over a map
	closed  bool
}

// simpleEntry is one stored value. Readers load its key, value and expiry
// under a seqlock: a writer (holding Simple.mu) makes seq odd, changes
// them, and makes it even again; a reader retries until it read all three
// between two equal, even loads of seq, so it never mixes two writes (or
// two keys, as an evicted entry is reused for another key). Every field a
// reader loads is atomic, which is what makes this race-free for the race
// detector too. The links and pos are for writers only.
type simpleEntry struct {
	seq     atomic.Uint32
	meta    atomic.Uint32 // EvictTinyLFU: queue and accessed bits (readers set the latter)
	keyLen  atomic.Uint32
	pos     uint32 // where the table holds it (bucket<<3 | slot), so eviction need not hash the key
	keyData atomic.Pointer[byte]
	valData atomic.Pointer[byte] // the bytes given to Set, kept (the Backend contract makes them the backend's)
	valLen  atomic.Uint64
	expires atomic.Int64 // Simple.now units; 0 = never

	prev, next   *simpleEntry // the TTL class ring
	qprev, qnext *simpleEntry // the eviction policy's ring: write order, or a TinyLFU queue
}

// entryState is one consistent reading of an entry.
type entryState struct {
	key     string
	value   *byte
	valLen  int
	expires int64
}

// load reads e's key, value and expiry as one write left them.
func (e *simpleEntry) load() entryState {
	for tries := 0; ; tries++ {
		if seq := e.seq.Load(); seq&1 == 0 {
			k, kl, v, vl, exp := e.keyData.Load(), e.keyLen.Load(), e.valData.Load(), e.valLen.Load(), e.expires.Load()
			if e.seq.Load() == seq {
				return entryState{unsafe.String(k, kl), v, int(vl), exp}
			}
		}
		if tries >= 8 {
			runtime.Gosched() // the writer was preempted between its two increments
		}
	}
}

// store writes key, value and expiry; the caller holds Simple.mu.
func (e *simpleEntry) store(key string, value []byte, expires int64) {
	e.seq.Add(1)
	e.keyData.Store(unsafe.StringData(key))
	e.keyLen.Store(uint32(len(key)))
	e.valData.Store(unsafe.SliceData(value))
	e.valLen.Store(uint64(len(value)))
	e.expires.Store(expires)
	e.seq.Add(1)
}

// storeValue writes value and expiry, keeping the key; the caller holds
// Simple.mu. Every atomic store is a locked instruction on amd64, so an
// overwrite saves the two the key would cost.
func (e *simpleEntry) storeValue(value []byte, expires int64) {
	e.seq.Add(1)
	e.valData.Store(unsafe.SliceData(value))
	e.valLen.Store(uint64(len(value)))
	e.expires.Store(expires)
	e.seq.Add(1)
}

// keyIs reports whether e holds key. Only writers may call it: without the
// seqlock, it relies on holding Simple.mu, which keeps e still.
func (e *simpleEntry) keyIs(key string) bool {
	kl := e.keyLen.Load()
	return int(kl) == len(key) && unsafe.String(e.keyData.Load(), kl) == key
}

// ttlClass is the write-ordered ring of entries that share one TTL, and so
// also their expiry order.
type ttlClass struct {
	ttl  time.Duration
	ring simpleEntry // sentinel: ring.next is the oldest write, ring.prev the newest
}

// emptyValue is what Get returns for an empty stored value: found values are
// never nil.
var emptyValue = []byte{}

func (st entryState) bytes() []byte {
	if st.valLen == 0 {
		return emptyValue
	}
	// Sharing the bytes is the Backend contract: callers must not modify
	// a returned value. The slice's capacity is its length, so an append
	// reallocates instead of writing past it.
	return unsafe.Slice(st.value, st.valLen)
}

// NewSimple returns an empty Simple cache that holds at most threshold
// entries; 0 means unlimited. It evicts as Flask does: an expired entry,
// else the oldest write.
func NewSimple(threshold int) *Simple {
	return NewSimpleWithOptions(SimpleOptions{Threshold: threshold})
}

// SimpleOptions configure a [Simple] built with [NewSimpleWithOptions].
type SimpleOptions struct {
	// Threshold is the most entries the cache holds (CACHE_THRESHOLD); 0
	// means unlimited, and then no entry is ever evicted.
	Threshold int
	// Eviction chooses the live entry that makes room for a new one when
	// none has expired (CACHE_OPTIONS "eviction"). The zero value means
	// EvictFIFO.
	Eviction Eviction
}

// NewSimpleWithOptions returns an empty Simple cache configured by opts. It
// panics if opts.Eviction is not one of the Evict constants, since that is
// a programming error ([Open] reports a bad CACHE_OPTIONS value as an
// error).
func NewSimpleWithOptions(opts SimpleOptions) *Simple {
	threshold := opts.Threshold
	start := time.Now()
	s := &Simple{
		threshold: threshold,
		seed:      maphash.MakeSeed(),
		now:       func() int64 { return int64(time.Since(start)) + 1 },
		classes:   make(map[time.Duration]*ttlClass),
	}
	s.table.Store(newSimpleTable(min(max(threshold, 0), initialTableSize)))
	s.order.qprev, s.order.qnext = &s.order, &s.order
	switch opts.Eviction {
	case "", EvictFIFO:
	case EvictTinyLFU:
		if threshold > 0 { // unbounded, nothing is evicted, and reads need not record themselves
			s.lfu = newTinyLFU(threshold)
		}
	default:
		panic(fmt.Sprintf("backends.NewSimpleWithOptions: unknown Eviction %q", opts.Eviction))
	}
	return s
}

// simpleFromConfig is SimpleCache's factory: CACHE_THRESHOLD, and
// CACHE_OPTIONS "eviction" ("fifo", the default, or "tinylfu").
func simpleFromConfig(cfg Config) (Backend, error) {
	if cfg.Threshold < 0 {
		return nil, fmt.Errorf("%w: CACHE_THRESHOLD %d is negative", ErrConfig, cfg.Threshold)
	}
	if err := CheckOptions("SimpleCache", cfg.Options, "eviction"); err != nil {
		return nil, err
	}
	opts := SimpleOptions{Threshold: cfg.Threshold}
	if v, ok := cfg.Options["eviction"]; ok {
		switch e, _ := v.(string); Eviction(e) {
		case EvictFIFO, EvictTinyLFU:
			opts.Eviction = Eviction(e)
		default:
			return nil, fmt.Errorf("%w: CACHE_OPTIONS eviction: got %v (%T), want %q or %q", ErrConfig, v, v, EvictFIFO, EvictTinyLFU)
		}
	}
	return NewSimpleWithOptions(opts), nil
}

// initialTableSize bounds the table a new Simple allocates up front; it
// grows as entries arrive.
const initialTableSize = 1 << 10

// expiresAt returns when an entry written now with ttl expires, 0 for never.
// It is the one place that reads the Backend's timeout convention (0 =
// never); now+ttl saturates, so a huge TTL does not wrap into the past.
func (s *Simple) expiresAt(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	s.startCoarseClock()
	now := s.now()
	return now + min(int64(ttl), math.MaxInt64-now)
}

// expired reports whether an entry expiring at expires is past it. The
// coarse clock lags the precise one, so it proves expiry on its own, and it
// proves liveness when the expiry is more than coarseMargin ahead of it.
func (s *Simple) expired(expires int64) bool {
	if expires == 0 {
		return false
	}
	if c := s.coarse.Load(); c != nil {
		now := c.now.Load()
		if now >= expires {
			return true
		}
		if expires-now > int64(coarseMargin) {
			return false
		}
	}
	return s.now() >= expires
}

func (s *Simple) hash(key string) uint64 { return maphash.String(s.seed, key) }

// Len returns the number of entries held, expired ones included until they
// are evicted or overwritten.
func (s *Simple) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// lookup returns the live value stored under key, without locking, and
// records the read for the eviction policy. It is simpleTable.find and the
// entry's load folded into one function: the read path is a few
// nanoseconds faster without passing entryState through two returns.
func (s *Simple) lookup(t *simpleTable, key string) ([]byte, bool) {
	h := s.hash(key)
	tag := tagOf(h)
	i := h & t.mask
	for range len(t.buckets) {
		b := &t.buckets[i]
		ctrl := b.ctrl.Load()
		for m := matchTag(ctrl, tag); m != 0; m &= m - 1 {
			e := b.slots[bits.TrailingZeros64(m)/8].Load()
			if e == nil {
				continue
			}
			for tries := 0; ; tries++ {
				seq := e.seq.Load()
				if seq&1 == 0 {
					k, kl, v, vl, exp := e.keyData.Load(), e.keyLen.Load(), e.valData.Load(), e.valLen.Load(), e.expires.Load()
					if e.seq.Load() == seq {
						if int(kl) != len(key) || unsafe.String(k, kl) != key {
							break // another key: go on probing
						}
						if exp != 0 && s.expired(exp) {
							return nil, false
						}
						if s.lfu != nil {
							s.lfu.hit(e, h)
						}
						if vl == 0 {
							return emptyValue, true
						}
						return unsafe.Slice(v, vl), true // cap == len: an append reallocates
					}
				}
				if tries >= 8 {
					runtime.Gosched() // the writer was preempted between its two increments
				}
			}
		}
		if hasEmpty(ctrl) {
			return nil, false
		}
		i = (i + 1) & t.mask
	}
	return nil, false
}

// Get returns the stored bytes themselves; callers must not modify them.
func (s *Simple) Get(_ context.Context, key string) ([]byte, bool, error) {
	t := s.table.Load()
	if t == nil {
		return nil, false, ErrClosed
	}
	v, ok := s.lookup(t, key)
	return v, ok, nil
}

// GetMany returns the stored bytes of keys, nil for a miss.
func (s *Simple) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	t := s.table.Load()
	if t == nil {
		return nil, ErrClosed
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i], _ = s.lookup(t, k)
	}
	return out, nil
}

// Has reports whether key holds a live entry.
func (s *Simple) Has(_ context.Context, key string) (bool, error) {
	t := s.table.Load()
	if t == nil {
		return false, ErrClosed
	}
	e, st := t.find(key, s.hash(key))
	return e != nil && !s.expired(st.expires), nil
}

// Set stores value under key.
func (s *Simple) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.store(key, h, value, ttl)
}

// SetMany stores every item under one lock.
func (s *Simple) SetMany(_ context.Context, items map[string][]byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var errs []error
	for k, v := range items {
		if err := s.store(k, s.hash(k), v, ttl); err != nil {
			errs = append(errs, &KeyError{Key: k, Err: err})
		}
	}
	return errors.Join(errs...)
}

// Add stores value unless key holds a live entry.
func (s *Simple) Add(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	if e, st := s.table.Load().find(key, h); e != nil && !s.expired(st.expires) {
		return false, nil
	}
	if err := s.store(key, h, value, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// Delete removes key.
func (s *Simple) Delete(_ context.Context, key string) (bool, error) {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	return s.remove(key, h), nil
}

// DeleteMany removes every key and counts the live ones.
func (s *Simple) DeleteMany(_ context.Context, keys []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n := 0
	for _, k := range keys {
		if s.remove(k, s.hash(k)) {
			n++
		}
	}
	return n, nil
}

// Inc adds delta to the integer under key, keeping the entry's TTL and its
// place in the eviction order.
func (s *Simple) Inc(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	t := s.table.Load()
	at, found := t.locate(key, h)
	var st entryState
	if found {
		st = t.at(at).load()
	}
	if !found || s.expired(st.expires) {
		if err := s.store(key, h, formatInt(delta), ttl); err != nil {
			return 0, err
		}
		return delta, nil
	}
	n, err := parseStoredInt(st.bytes())
	if err != nil {
		return 0, err
	}
	if n, err = addInt64(n, delta); err != nil {
		return 0, err
	}
	t.at(at).storeValue(formatInt(n), st.expires) // in place: position and expiry stay
	return n, nil
}

// Clear removes every key starting with prefix.
func (s *Simple) Clear(_ context.Context, prefix string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if prefix == "" {
		// Readers may still be searching the old table, so it is
		// replaced rather than emptied. The new one has room for as many
		// entries as the old held (up to the initial size), and the TTL
		// classes stay, emptied: refilling the cache, the usual next
		// step, then does not rebuild the table or remake the classes.
		s.table.Store(newSimpleTable(min(max(s.threshold, s.n, 0), initialTableSize)))
		s.n = 0
		s.order.qprev, s.order.qnext = &s.order, &s.order
		if s.lfu != nil {
			s.lfu.reset()
		}
		for _, c := range s.heads {
			c.ring.prev, c.ring.next = &c.ring, &c.ring
		}
		return nil
	}
	t := s.table.Load()
	t.all(func(at slot, e *simpleEntry) {
		if strings.HasPrefix(e.load().key, prefix) {
			t.remove(at)
			s.unlink(e)
			s.n--
		}
	})
	return nil
}

// Close drops every entry and stops the coarse clock; later operations
// return ErrClosed.
func (s *Simple) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.table.Store(nil)
	s.n = 0
	s.order.qprev, s.order.qnext = &s.order, &s.order
	s.classes, s.heads = nil, nil
	if c := s.coarse.Load(); c != nil {
		c.stop()
	}
	return nil
}

// maxKeyLen is the longest key an entry can hold (its length is a uint32).
const maxKeyLen = math.MaxUint32

// store inserts or replaces key; the caller holds the lock.
func (s *Simple) store(key string, h uint64, value []byte, ttl time.Duration) error {
	if uint64(len(key)) > maxKeyLen {
		return fmt.Errorf("backends: SimpleCache key of %d bytes is over %d", len(key), uint64(maxKeyLen))
	}
	expires := s.expiresAt(ttl)
	t := s.table.Load()
	at, found := t.locate(key, h)
	if found {
		e := t.at(at)
		e.storeValue(value, expires)
		unlinkClass(e)
		s.linkClass(e, ttl)
		if s.lfu != nil { // an overwrite is a read as far as the policy is concerned
			s.lfu.replaced(e, h)
		} else { // and the newest write for FIFO
			unlinkQueue(e)
			pushBack(&s.order, e)
		}
		return nil
	}
	var e *simpleEntry
	if s.threshold > 0 && s.n >= s.threshold {
		// Removing the victim only frees slots, and frees one as empty
		// only in a bucket that already had an empty slot (which the probe
		// for key would have stopped at), so at stays a valid place for key.
		e = s.evictOne()
	}
	if e == nil {
		e = &simpleEntry{}
	}
	e.store(key, value, expires) // a reader still holding the victim now reads another key, and moves on
	if t.needsRebuild() {
		t = s.rebuild()
		at, _ = t.locate(key, h)
	}
	t.put(at, e, h)
	s.n++
	s.linkClass(e, ttl)
	if s.lfu != nil {
		s.lfu.added(e, h)
		s.lfu.sketch.maybeReset()
	} else {
		pushBack(&s.order, e)
	}
	return nil
}

// rebuild replaces the table with one sized for the entries it holds plus
// room to grow, without tombstones, and returns it. Readers keep using the
// old one until the swap.
func (s *Simple) rebuild() *simpleTable {
	old := s.table.Load()
	t := newSimpleTable(s.n + s.n/4 + 1)
	old.all(func(_ slot, e *simpleEntry) {
		key := e.load().key
		h := s.hash(key)
		at, _ := t.locate(key, h)
		t.put(at, e, h)
	})
	s.table.Store(t)
	return t
}

// evictOne removes an expired entry if a class head has expired, else the
// policy's victim (the oldest write, or TinyLFU's choice), and returns it
// for reuse. Heads are enough: each ring is ordered by write time and,
// sharing one TTL, by expiry too.
func (s *Simple) evictOne() *simpleEntry {
	for i := 0; i < len(s.heads); {
		c := s.heads[i]
		h := c.ring.next
		if h == &c.ring {
			s.dropClass(i)
			continue
		}
		if s.expired(h.expires.Load()) {
			return s.evict(h)
		}
		i++
	}
	if s.lfu != nil {
		if v := s.lfu.victim(s.hash); v != nil {
			return s.evict(v)
		}
		return nil
	}
	if v := s.order.qnext; v != &s.order {
		return s.evict(v)
	}
	return nil
}

// evict removes the stored entry e and returns it.
func (s *Simple) evict(e *simpleEntry) *simpleEntry {
	s.table.Load().remove(slot{uint64(e.pos >> 3), int(e.pos & 7)})
	s.unlink(e)
	s.n--
	return e
}

// remove deletes key and reports whether it held a live entry.
func (s *Simple) remove(key string, h uint64) (wasLive bool) {
	t := s.table.Load()
	at, found := t.locate(key, h)
	if !found {
		return false
	}
	e := t.at(at)
	t.remove(at)
	s.unlink(e)
	s.n--
	return !s.expired(e.expires.Load())
}

// linkClass appends e, a new entry, to its TTL class.
func (s *Simple) linkClass(e *simpleEntry, ttl time.Duration) {
	c := s.classes[ttl]
	if c == nil {
		if len(s.heads) > 2*s.n+8 {
			s.dropEmptyClasses() // TTLs that are no longer used, when eviction has not met them
		}
		c = &ttlClass{ttl: ttl}
		c.ring.prev, c.ring.next = &c.ring, &c.ring
		s.classes[ttl] = c
		s.heads = append(s.heads, c)
	}
	e.prev, e.next = c.ring.prev, &c.ring
	c.ring.prev.next = e
	c.ring.prev = e
}

// unlink takes e out of its TTL class and its policy's ring.
func (s *Simple) unlink(e *simpleEntry) {
	unlinkClass(e)
	if s.lfu != nil {
		s.lfu.removed(e)
	} else {
		unlinkQueue(e)
	}
}

func unlinkClass(e *simpleEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *Simple) dropClass(i int) {
	c := s.heads[i]
	delete(s.classes, c.ttl)
	last := len(s.heads) - 1
	s.heads[i] = s.heads[last]
	s.heads[last] = nil
	s.heads = s.heads[:last]
}

func (s *Simple) dropEmptyClasses() {
	for i := 0; i < len(s.heads); {
		if c := s.heads[i]; c.ring.next == &c.ring {
			s.dropClass(i)
			continue
		}
		i++
	}
}
