// Package stalecopy keeps, in memory, the values a process most recently
// stored or first read, so that fragment blocks and memoized functions can
// serve them while their backend cannot be reached (its circuit breaker
// open, or a call failing), until each value's grace period ends. It is
// bounded by a cost in bytes: the value's (its length for fragments, its
// encoded size for memoized results), its key's, and EntryOverhead for the
// bookkeeping, so that keys chosen by clients (a vary_on term, an
// argument) count, and the number of values kept is bounded too, by the
// bound divided by EntryOverhead. The value kept longest goes first. Reads take a shared lock only, and a
// read of a value already kept writes nothing, so a hit costs a map lookup.
package stalecopy

import (
	"container/list"
	"sync"
)

// EntryOverhead is what a value costs beyond its own bytes and its key's:
// the map entry, list element and entry record (about 130 bytes on 64-bit
// platforms, rounded up).
const EntryOverhead = 160

// Copies holds values by key. A nil *Copies keeps nothing.
type Copies[V any] struct {
	max  int
	maxN int // most values kept; 0 = no limit but max's
	cost func(V) int
	copy func(V) V
	mu   sync.RWMutex
	m    map[string]*list.Element // → *entry[V]
	age  list.List                // front: newest
	n    int                      // total cost held
}

type entry[V any] struct {
	key     string
	v       V
	cost    int
	version int64 // identifies the stored version (its stale time)
	until   int64 // Unix ms after which it is not served; 0 = never
}

// New returns Copies bounded by max, the total cost of the values kept:
// cost(v) + len(key) + EntryOverhead each.
// copy, if not nil, makes the copy of a value that is kept (a caller's
// bytes may be the backend's).
func New[V any](max int, cost func(V) int, copy func(V) V) *Copies[V] {
	return &Copies[V]{max: max, cost: cost, copy: copy, m: make(map[string]*list.Element)}
}

// LimitCount makes c keep at most n values besides its cost bound, and
// returns c; it is for construction, before c is shared.
func (c *Copies[V]) LimitCount(n int) *Copies[V] {
	c.maxN = n
	return c
}

// Keep records v for key, unless this version of it is kept already (v is
// then not copied: a hit of a kept value costs a map lookup).
func (c *Copies[V]) Keep(key string, version, until int64, v V) {
	if c == nil {
		return
	}
	c.mu.RLock()
	e, ok := c.m[key]
	same := ok && e.Value.(*entry[V]).version == version
	c.mu.RUnlock()
	if same {
		return
	}
	if c.copy != nil {
		v = c.copy(v)
	}
	ce := &entry[V]{key: key, v: v, cost: c.cost(v) + len(key) + EntryOverhead, version: version, until: until}
	if ce.cost > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.n -= e.Value.(*entry[V]).cost
		c.age.Remove(e)
	}
	c.m[key] = c.age.PushFront(ce)
	c.n += ce.cost
	for c.n > c.max || c.maxN > 0 && c.age.Len() > c.maxN {
		old := c.age.Back()
		oe := old.Value.(*entry[V])
		c.age.Remove(old)
		delete(c.m, oe.key)
		c.n -= oe.cost
	}
}

// Get returns the value kept for key if it may still be served at now
// (Unix ms).
func (c *Copies[V]) Get(key string, now int64) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[key]
	if !ok {
		return zero, false
	}
	ce := e.Value.(*entry[V])
	if ce.until != 0 && now >= ce.until {
		return zero, false
	}
	return ce.v, true
}

// Clear drops every value kept.
func (c *Copies[V]) Clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	c.age.Init()
	c.n = 0
}
