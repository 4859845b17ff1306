package backends

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"
)

// DefaultThreshold is Flask's CACHE_THRESHOLD default: the most entries a
// SimpleCache or FileSystemCache holds.
const DefaultThreshold = 500

// Simple is Flask's SimpleCache: an in-process map, bounded by a threshold
// and safe for concurrent use.
//
// It never holds more than threshold entries (Flask holds threshold+1). When
// an insert would exceed the threshold, one entry makes room: an expired
// entry if there is one, otherwise the oldest write. Flask sorts the whole
// cache on every prune and evicts never-expiring entries first; Simple does
// neither. Entries are kept in one write-ordered list per distinct TTL, so
// each list is also ordered by expiry, and eviction inspects only the list
// heads: O(k) per insert for k distinct TTLs in use (a handful in practice),
// independent of the number of entries.
//
// One RWMutex guards the map. Reads take it shared and reorder nothing (there
// is no LRU bookkeeping), so parallel Gets cost a map lookup plus the lock's
// reader count: about 40 ns per Get with two cores reading in parallel
// (BenchmarkSimpleGetParallel), so sharding the map by key was not worth
// giving up exact, global eviction order and an exact threshold. Get returns the stored slice itself, without a copy, and
// reads the clock only for entries that can expire.
type Simple struct {
	threshold int
	now       func() int64 // monotonic nanoseconds, never 0; a field so tests can stop time

	mu      sync.RWMutex
	items   map[string]*simpleEntry
	classes map[time.Duration]*ttlClass
	heads   []*ttlClass // the values of classes; scanning a slice is cheaper than ranging over a map
	seq     uint64
	closed  bool
}

type simpleEntry struct {
	key        string
	value      []byte
	expires    int64 // monotonic nanoseconds; 0 = never
	seq        uint64
	class      *ttlClass
	prev, next *simpleEntry
}

// ttlClass is the write-ordered list of entries that share one TTL.
type ttlClass struct {
	ttl        time.Duration
	head, tail *simpleEntry
	index      int // position in Simple.heads
}

// NewSimple returns an empty Simple cache that holds at most threshold
// entries; 0 means unlimited.
func NewSimple(threshold int) *Simple {
	start := time.Now()
	return &Simple{
		threshold: threshold,
		now:       func() int64 { return int64(time.Since(start)) + 1 },
		items:     make(map[string]*simpleEntry),
		classes:   make(map[time.Duration]*ttlClass),
	}
}

// Len returns the number of entries held, expired ones included until they
// are evicted or overwritten.
func (s *Simple) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.items)
}

func (s *Simple) live(e *simpleEntry, now int64) bool {
	return e.expires == 0 || now < e.expires
}

// lookup returns the live entry for key; the caller holds the lock.
func (s *Simple) lookup(key string) *simpleEntry {
	e := s.items[key]
	if e == nil || (e.expires != 0 && s.now() >= e.expires) {
		return nil
	}
	return e
}

// Get returns the stored slice itself; callers must not modify it.
func (s *Simple) Get(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	if e := s.lookup(key); e != nil {
		return e.value, true, nil
	}
	return nil, false, nil
}

// GetMany returns the stored slices of keys, nil for a miss.
func (s *Simple) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if e := s.lookup(k); e != nil {
			out[i] = e.value
		}
	}
	return out, nil
}

// Set stores value under key.
func (s *Simple) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.store(key, value, ttl)
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
		s.store(k, v, ttl)
	}
	return nil
}

// Add stores value unless key holds a live entry.
func (s *Simple) Add(_ context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	if s.lookup(key) != nil {
		return false, nil
	}
	s.store(key, value, ttl)
	return true, nil
}

// Delete removes key.
func (s *Simple) Delete(_ context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, ErrClosed
	}
	return s.remove(key), nil
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
		if s.remove(k) {
			n++
		}
	}
	return n, nil
}

// Has reports whether key holds a live entry.
func (s *Simple) Has(_ context.Context, key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false, ErrClosed
	}
	return s.lookup(key) != nil, nil
}

// Inc adds delta to the integer under key, keeping the entry's TTL.
func (s *Simple) Inc(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	e := s.lookup(key)
	if e == nil {
		s.store(key, formatInt(delta), ttl)
		return delta, nil
	}
	n, err := parseStoredInt(e.value)
	if err != nil {
		return 0, err
	}
	if n, err = addInt64(n, delta); err != nil {
		return 0, err
	}
	e.value = formatInt(n) // in place: position and expiry stay
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
		clear(s.items)
		clear(s.classes)
		clear(s.heads)
		s.heads = s.heads[:0]
		return nil
	}
	for k := range s.items {
		if strings.HasPrefix(k, prefix) {
			s.remove(k)
		}
	}
	return nil
}

// Close drops every entry; later operations return ErrClosed.
func (s *Simple) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.items, s.classes, s.heads = nil, nil, nil
	return nil
}

// store inserts or replaces key; the caller holds the write lock.
func (s *Simple) store(key string, value []byte, ttl time.Duration) {
	var now int64 // read lazily: a never-expiring overwrite needs no clock
	e := s.items[key]
	if e != nil {
		s.unlink(e)
	} else {
		if s.threshold > 0 && len(s.items) >= s.threshold {
			now = s.now()
			e = s.evictOne(now)
		}
		if e == nil {
			e = &simpleEntry{}
		}
		e.key = key
		s.items[key] = e
	}
	e.value = value
	e.expires = 0
	if ttl > 0 {
		if now == 0 {
			now = s.now()
		}
		e.expires = now + min(int64(ttl), math.MaxInt64-now) // saturate: a huge TTL must not wrap into the past
	}
	s.seq++
	e.seq = s.seq
	s.link(e, ttl)
}

// evictOne removes an expired entry if a list head is expired, else the
// oldest write, and returns it for reuse: no reader can hold it, since Get
// hands out the value slice, never the entry. Heads are enough: each list is
// ordered by write time and, sharing one TTL, by expiry too.
func (s *Simple) evictOne(now int64) *simpleEntry {
	var victim *simpleEntry
	for _, c := range s.heads {
		h := c.head
		if !s.live(h, now) {
			victim = h
			break
		}
		if victim == nil || h.seq < victim.seq {
			victim = h
		}
	}
	if victim != nil {
		s.unlink(victim)
		delete(s.items, victim.key)
		*victim = simpleEntry{}
	}
	return victim
}

func (s *Simple) remove(key string) (wasLive bool) {
	e := s.items[key]
	if e == nil {
		return false
	}
	s.unlink(e)
	delete(s.items, key)
	return s.live(e, s.now())
}

func (s *Simple) link(e *simpleEntry, ttl time.Duration) {
	c := s.classes[ttl]
	if c == nil {
		c = &ttlClass{ttl: ttl, index: len(s.heads)}
		s.classes[ttl] = c
		s.heads = append(s.heads, c)
	}
	e.class, e.prev, e.next = c, c.tail, nil
	if c.tail != nil {
		c.tail.next = e
	} else {
		c.head = e
	}
	c.tail = e
}

func (s *Simple) unlink(e *simpleEntry) {
	c := e.class
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next, e.class = nil, nil, nil
	if c.head == nil {
		delete(s.classes, c.ttl)
		last := s.heads[len(s.heads)-1]
		last.index = c.index
		s.heads[c.index] = last
		s.heads[len(s.heads)-1] = nil
		s.heads = s.heads[:len(s.heads)-1]
	}
}
