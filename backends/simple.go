package backends

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
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
// publish immutable entries into it (see simpleTable). Writers are
// serialized by one mutex, which keeps eviction order exact and global.
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

// simpleEntry is one stored value. Once published in the table it never
// changes except for its links, which only writers (holding Simple.mu) read:
// a new value, even Inc's, is a new entry, so a reader holding an entry
// always sees one consistent key, value and expiry.
type simpleEntry struct {
	key        string
	value      string        // the bytes given to Set, viewed as a string: 16 bytes instead of a slice's 24
	expires    int64         // Simple.now units; 0 = never
	prev, next *simpleEntry  // the TTL class ring
	qprev      *simpleEntry  // the eviction policy's ring: write order, or a TinyLFU queue
	qnext      *simpleEntry  //
	meta       atomic.Uint32 // EvictTinyLFU: queue and accessed bits (readers set the latter)
	pos        uint32        // where the table holds it (bucket<<3 | slot), kept by writers so eviction need not hash the key
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

func (e *simpleEntry) bytes() []byte {
	if len(e.value) == 0 {
		return emptyValue
	}
	// Sharing the bytes is the Backend contract: callers must not modify
	// a returned value. The slice's capacity is its length, so an append
	// reallocates instead of writing past it.
	return unsafe.Slice(unsafe.StringData(e.value), len(e.value))
}

// ownedString views b, which the caller hands over, as a string without a copy.
func ownedString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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

// lookup returns the live entry for key, without locking, and records the
// read for the eviction policy.
func (s *Simple) lookup(t *simpleTable, key string) *simpleEntry {
	h := s.hash(key)
	e := t.find(key, h)
	if e == nil || s.expired(e.expires) {
		return nil
	}
	if s.lfu != nil {
		s.lfu.hit(e, h)
	}
	return e
}

// Get returns the stored bytes themselves; callers must not modify them.
func (s *Simple) Get(_ context.Context, key string) ([]byte, bool, error) {
	t := s.table.Load()
	if t == nil {
		return nil, false, ErrClosed
	}
	if e := s.lookup(t, key); e != nil {
		return e.bytes(), true, nil
	}
	return nil, false, nil
}

// GetMany returns the stored bytes of keys, nil for a miss.
func (s *Simple) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	t := s.table.Load()
	if t == nil {
		return nil, ErrClosed
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if e := s.lookup(t, k); e != nil {
			out[i] = e.bytes()
		}
	}
	return out, nil
}

// Has reports whether key holds a live entry.
func (s *Simple) Has(_ context.Context, key string) (bool, error) {
	t := s.table.Load()
	if t == nil {
		return false, ErrClosed
	}
	e := t.find(key, s.hash(key))
	return e != nil && !s.expired(e.expires), nil
}

// Set stores value under key.
func (s *Simple) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.store(key, h, value, ttl)
	return nil
}

// SetMany stores every item under one lock.
func (s *Simple) SetMany(_ context.Context, items map[string][]byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for k, v := range items {
		s.store(k, s.hash(k), v, ttl)
	}
	return nil
}

// Add stores value unless key holds a live entry.
func (s *Simple) Add(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	h := s.hash(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	if e := s.table.Load().find(key, h); e != nil && !s.expired(e.expires) {
		return false, nil
	}
	s.store(key, h, value, ttl)
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
	if !found || s.expired(t.at(at).expires) {
		s.store(key, h, formatInt(delta), ttl)
		return delta, nil
	}
	old := t.at(at)
	n, err := parseStoredInt(old.bytes())
	if err != nil {
		return 0, err
	}
	if n, err = addInt64(n, delta); err != nil {
		return 0, err
	}
	e := &simpleEntry{key: old.key, value: ownedString(formatInt(n)), expires: old.expires}
	e.meta.Store(old.meta.Load())
	takeClassPlace(old, e)
	takeQueuePlace(old, e)
	t.replace(at, e)
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
		s.table.Store(newSimpleTable(min(max(s.threshold, 0), initialTableSize)))
		s.n = 0
		s.order.qprev, s.order.qnext = &s.order, &s.order
		if s.lfu != nil {
			s.lfu.reset()
		}
		clear(s.classes)
		clear(s.heads)
		s.heads = s.heads[:0]
		return nil
	}
	t := s.table.Load()
	t.all(func(at slot, e *simpleEntry) {
		if strings.HasPrefix(e.key, prefix) {
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

// store inserts or replaces key; the caller holds the lock.
func (s *Simple) store(key string, h uint64, value []byte, ttl time.Duration) {
	e := &simpleEntry{key: key, value: ownedString(value), expires: s.expiresAt(ttl)}
	t := s.table.Load()
	at, found := t.locate(key, h)
	if found {
		old := t.at(at)
		unlinkClass(old)
		s.linkClass(e, ttl)
		if s.lfu != nil {
			s.lfu.replaced(old, e, h)
		} else { // an overwrite is the newest write
			unlinkQueue(old)
			pushBack(&s.order, e)
		}
		t.replace(at, e)
		return
	}
	if s.threshold > 0 && s.n >= s.threshold {
		// Removing the victim only frees slots, and frees one as empty
		// only in a bucket that already had an empty slot (which the probe
		// for key would have stopped at), so at stays a valid place for key.
		s.evictOne()
	}
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
}

// rebuild replaces the table with one sized for the entries it holds plus
// room to grow, without tombstones, and returns it. Readers keep using the
// old one until the swap.
func (s *Simple) rebuild() *simpleTable {
	old := s.table.Load()
	t := newSimpleTable(s.n + s.n/4 + 1)
	old.all(func(_ slot, e *simpleEntry) {
		h := s.hash(e.key)
		at, _ := t.locate(e.key, h)
		t.put(at, e, h)
	})
	s.table.Store(t)
	return t
}

// evictOne removes an expired entry if a class head has expired, else the
// policy's victim: the oldest write, or TinyLFU's choice. Heads are enough:
// each ring is ordered by write time and, sharing one TTL, by expiry too.
func (s *Simple) evictOne() {
	for i := 0; i < len(s.heads); {
		c := s.heads[i]
		h := c.ring.next
		if h == &c.ring {
			s.dropClass(i)
			continue
		}
		if s.expired(h.expires) {
			s.evict(h)
			return
		}
		i++
	}
	if s.lfu != nil {
		if v := s.lfu.victim(s.hash); v != nil {
			s.evict(v)
		}
		return
	}
	if v := s.order.qnext; v != &s.order {
		s.evict(v)
	}
}

// evict removes the stored entry e.
func (s *Simple) evict(e *simpleEntry) {
	s.table.Load().remove(slot{uint64(e.pos >> 3), int(e.pos & 7)})
	s.unlink(e)
	s.n--
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
	return !s.expired(e.expires)
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

// takeClassPlace puts e where old is in its TTL class, for Inc, which
// keeps an entry's place.
func takeClassPlace(old, e *simpleEntry) {
	e.prev, e.next = old.prev, old.next
	e.prev.next, e.next.prev = e, e
	old.prev, old.next = nil, nil
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
