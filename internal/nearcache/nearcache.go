// Package nearcache is the in-process copy of a networked cache's entries
// that fragcache's Redis, memcached and uWSGI backends keep in front of the
// server: a hit costs a map lookup instead of a round trip.
//
// A near cache is only as good as its coherence rule, which belongs to the
// backend: Redis tells it which keys other processes changed (CLIENT
// TRACKING), memcached and uWSGI cannot, so there entries live a short,
// fixed time. This package holds what the three share: the bounded store
// and the ordering rule that keeps a read racing an invalidation from
// putting back the value the invalidation removed.
//
// The rule is a sequence number. A reader calls [Cache.Begin] before it
// sends its request to the server and passes the ticket to [Cache.Put]
// with the reply. Every [Cache.Invalidate] and [Cache.Flush] takes a new
// sequence number and records it (per key, in a small table where keys may
// share a slot, or for everything). Put keeps the value only if nothing
// that could concern its key was recorded after its ticket: the reply may
// have been read by the server before the write that caused the
// invalidation, so it cannot be trusted. A shared slot only costs a
// dropped fill (a later miss), never a stale value.
//
// The store is bounded by entries and by bytes (key + value + a fixed
// per-entry overhead), split over shards, each with its own lock and a
// CLOCK (second chance) eviction, which costs a hit one load of a flag. It
// is written here rather than taken from a cache library because the
// sequence check must run under the same lock as the insert, which no
// library exposes, and the shard lock, map and clock hand are all it
// needs. The precise clock costs 60–80 ns on this project's machines, so
// expiry reads a coarse clock (updated every 50 ms, never ahead) and
// consults the precise one only for entries close to their expiry.
package nearcache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [Options].
const (
	DefaultMaxEntries = 10000
	DefaultMaxBytes   = 64 << 20
)

// EntryOverhead is what an entry is counted as costing beyond its key and
// value bytes: the entry, its map slot and its clock slot, rounded up.
const EntryOverhead = 96

// Options bound a [Cache].
type Options struct {
	// MaxEntries is the most entries the cache holds (0: DefaultMaxEntries).
	MaxEntries int
	// MaxBytes is the most bytes the entries are counted as costing, keys
	// and EntryOverhead included (0: DefaultMaxBytes). A value too large for
	// its shard's share (MaxBytes divided by the shard count, see
	// [Cache.MaxEntryBytes]) is not kept.
	MaxBytes int64
	// TTL caps how long an entry is served after it was put, whatever the
	// TTL given to Put (0: no cap).
	TTL time.Duration
}

// Stats are a Cache's counters since it was made.
type Stats struct {
	Hits, Misses  uint64
	Entries       int
	Bytes         int64
	Evictions     uint64 // entries removed to make room
	Invalidations uint64 // calls of Invalidate
	Flushes       uint64 // calls of Flush, Enable and Disable
	DroppedFills  uint64 // Puts refused because an invalidation came after their ticket
}

// Cache is a bounded in-process store of byte values with invalidation
// sequence numbers. Its methods are safe for concurrent use.
type Cache struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
	ttl    time.Duration

	seq      atomic.Uint64 // last sequence number taken
	flushSeq atomic.Uint64 // sequence number of the last Flush
	enabled  atomic.Bool
	flushes  atomic.Uint64

	epoch  time.Time
	coarse atomic.Int64 // nanoseconds since epoch, never ahead of the precise clock
	done   chan struct{}
	closed sync.Once
}

// invalSlots is the size of each shard's table of invalidation sequence
// numbers. Keys that share a slot only cost each other dropped fills.
const invalSlots = 256

type shard struct {
	mu       sync.RWMutex
	m        map[string]*entry
	ring     []*entry // CLOCK order
	hand     int
	bytes    int64
	maxLen   int
	maxBytes int64
	inval    [invalSlots]uint64

	hits, misses atomic.Uint64
	evictions    uint64 // under mu
	dropped      uint64 // under mu
	invals       uint64 // under mu
	_            [64]byte
}

type entry struct {
	key     string
	value   []byte
	expires int64 // nanoseconds since the cache's epoch; 0: never
	size    int64
	idx     int // position in the ring
	ref     atomic.Bool
}

// coarseTick is how often the coarse clock is updated; coarseMargin is how
// close to its expiry, by the coarse clock, an entry must be for a read to
// consult the precise clock (many ticks, for a descheduled updater).
const (
	coarseTick   = 50 * time.Millisecond
	coarseMargin = time.Second
)

// New returns an enabled Cache. Close stops its clock goroutine.
func New(opt Options) *Cache {
	if opt.MaxEntries <= 0 {
		opt.MaxEntries = DefaultMaxEntries
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	// Up to 32 shards, each with room for at least 64 entries, so a small
	// cache keeps close to one global eviction order.
	n := 1
	for n < 32 && opt.MaxEntries/(2*n) >= 64 {
		n *= 2
	}
	c := &Cache{
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		ttl:    opt.TTL,
		epoch:  time.Now(),
		done:   make(chan struct{}),
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*entry)
		s.maxLen = opt.MaxEntries / n
		if i < opt.MaxEntries%n {
			s.maxLen++
		}
		s.maxBytes = opt.MaxBytes / int64(n)
	}
	c.enabled.Store(true)
	go c.tick()
	return c
}

func (c *Cache) tick() {
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.coarse.Store(c.now())
		}
	}
}

func (c *Cache) now() int64 { return int64(time.Since(c.epoch)) }

// Close stops the clock goroutine and empties the cache, which then keeps
// nothing: Begin reports false.
func (c *Cache) Close() {
	c.closed.Do(func() {
		close(c.done)
		c.Disable()
	})
}

// MaxEntryBytes is the largest entry (key + value + EntryOverhead) a Put
// keeps.
func (c *Cache) MaxEntryBytes() int64 { return c.shards[0].maxBytes }

func (c *Cache) shardOf(key string) (*shard, uint64) {
	h := maphash.String(c.seed, key)
	return &c.shards[h&c.mask], h
}

// Get returns the value under key, if the cache holds a live one. The
// slice is shared: callers must not modify it.
func (c *Cache) Get(key string) ([]byte, bool) {
	s, _ := c.shardOf(key)
	s.mu.RLock()
	e := s.m[key]
	if e == nil {
		s.mu.RUnlock()
		s.misses.Add(1)
		return nil, false
	}
	v, exp := e.value, e.expires
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	s.mu.RUnlock()
	if exp != 0 && !c.live(exp) {
		s.misses.Add(1)
		return nil, false
	}
	s.hits.Add(1)
	return v, true
}

// GetMany looks keys up as Get does: out holds the values found (nil for
// the others), miss the indexes of the keys to read from the server, in
// order. covers, when not nil, says which keys the cache may hold; the
// others are misses without a lookup.
func (c *Cache) GetMany(keys []string, covers func(string) bool) (out [][]byte, miss []int) {
	out = make([][]byte, len(keys))
	for i, k := range keys {
		if covers == nil || covers(k) {
			if v, ok := c.Get(k); ok {
				out[i] = v
				continue
			}
		}
		miss = append(miss, i)
	}
	return out, miss
}

// live reports whether an entry expiring at exp is still live.
func (c *Cache) live(exp int64) bool {
	if exp-c.coarse.Load() > int64(coarseMargin) {
		return true
	}
	return exp > c.now()
}

// Begin returns the ticket a reader passes to Put with the value it is
// about to read from the server; ok is false when the cache is disabled
// (the reader must not Put).
func (c *Cache) Begin() (ticket uint64, ok bool) {
	if !c.enabled.Load() {
		return 0, false
	}
	return c.seq.Load(), true
}

// Put keeps value under key for at most ttl (0: until invalidated or
// evicted; the cache's TTL caps either), unless an Invalidate of a key in
// the same slot or a Flush came after ticket, or the entry is larger than
// MaxEntryBytes. It reports whether it kept the value. The cache owns
// value afterwards.
func (c *Cache) Put(key string, value []byte, ttl time.Duration, ticket uint64) bool {
	if ttl < 0 || value == nil {
		return false
	}
	if c.ttl > 0 && (ttl == 0 || ttl > c.ttl) {
		ttl = c.ttl
	}
	size := int64(len(key)) + int64(len(value)) + EntryOverhead
	s, h := c.shardOf(key)
	if size > s.maxBytes {
		return false
	}
	var exp int64
	if ttl > 0 {
		exp = c.now() + int64(ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ticket < c.flushSeq.Load() || ticket < s.inval[slot(h)] || !c.enabled.Load() {
		s.dropped++
		return false
	}
	if e := s.m[key]; e != nil {
		s.bytes += size - e.size
		e.value, e.expires, e.size = value, exp, size
		e.ref.Store(true)
	} else {
		e = &entry{key: key, value: value, expires: exp, size: size, idx: len(s.ring)}
		s.m[key] = e
		s.ring = append(s.ring, e)
		s.bytes += size
	}
	for len(s.ring) > s.maxLen || s.bytes > s.maxBytes {
		s.evictOne(key)
	}
	return true
}

// slot maps a key's hash to its invalidation slot; the shard index uses the
// low bits, so the slot takes high ones.
func slot(h uint64) int { return int(h >> 56) }

// evictOne removes the entry under the clock hand that has not been read
// since the hand last passed, never keep (the entry just put) unless it is
// the only one.
func (s *shard) evictOne(keep string) {
	for range 2*len(s.ring) + 1 {
		if s.hand >= len(s.ring) {
			s.hand = 0
		}
		e := s.ring[s.hand]
		if e.key != keep && !e.ref.Load() {
			// The ring's last entry moves into the hole; stepping past it
			// puts it just behind the hand, where CLOCK puts new entries.
			s.remove(e)
			s.evictions++
			s.hand++
			return
		}
		e.ref.Store(false)
		s.hand++
	}
	// Every other entry was read again while the hand went round twice
	// (concurrent readers), or only keep is left: remove what the hand is on.
	if s.hand >= len(s.ring) {
		s.hand = 0
	}
	s.remove(s.ring[s.hand])
	s.evictions++
}

// remove deletes e from the shard; the caller holds mu.
func (s *shard) remove(e *entry) {
	delete(s.m, e.key)
	last := len(s.ring) - 1
	moved := s.ring[last]
	s.ring[e.idx] = moved
	moved.idx = e.idx
	s.ring[last] = nil
	s.ring = s.ring[:last]
	s.bytes -= e.size
}

// Invalidate removes key and makes every Put of it with an earlier ticket
// fail: the server said the key changed (or this process changed it).
func (c *Cache) Invalidate(key string) {
	s, h := c.shardOf(key)
	s.mu.Lock()
	s.inval[slot(h)] = c.seq.Add(1)
	s.invals++
	if e := s.m[key]; e != nil {
		s.remove(e)
	}
	s.mu.Unlock()
}

// Flush removes every entry and makes every Put with an earlier ticket
// fail.
func (c *Cache) Flush() {
	c.flushSeq.Store(c.seq.Add(1))
	c.flushes.Add(1)
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		clear(s.ring)
		s.ring = s.ring[:0]
		s.hand, s.bytes = 0, 0
		s.mu.Unlock()
	}
}

// Disable flushes the cache and keeps it empty until Enable: the backend
// lost what kept the entries coherent (its invalidation stream).
func (c *Cache) Disable() {
	c.enabled.Store(false)
	c.Flush()
}

// Enable flushes the cache and lets Begin hand out tickets again; readers
// that began before it cannot Put.
func (c *Cache) Enable() {
	c.Flush()
	c.enabled.Store(true)
}

// Enabled reports whether the cache keeps values (see Disable).
func (c *Cache) Enabled() bool { return c.enabled.Load() }

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	st := Stats{Flushes: c.flushes.Load()}
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		s.mu.RLock()
		st.Entries += len(s.m)
		st.Bytes += s.bytes
		st.Evictions += s.evictions
		st.DroppedFills += s.dropped
		st.Invalidations += s.invals
		s.mu.RUnlock()
	}
	return st
}
