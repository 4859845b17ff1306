// Package bounded keeps per-name values for the metrics packages, up to a
// limit: a fragment name computed from request data would otherwise grow a
// metric's label set without bound.
package bounded

import (
	"sync"
	"sync/atomic"
)

// Overflow is the name under which values past the limit are kept.
const Overflow = "other"

// DefaultLimit is the number of names kept when a metrics package's
// MaxFragments is 0.
const DefaultLimit = 1000

// Map maps names to values built on first use. Past Limit names, every new
// name shares the value of Overflow. It is safe for concurrent use; a name
// already in the map costs one sync.Map load.
type Map[T any] struct {
	limit int64
	make  func(name string) T
	m     sync.Map // name → T
	n     atomic.Int64
	mu    sync.Mutex // serialises building, so make runs once per name
}

// New returns a Map of at most limit names (0 means DefaultLimit) plus
// Overflow, whose values make builds.
func New[T any](limit int, make func(name string) T) *Map[T] {
	if limit <= 0 {
		limit = DefaultLimit
	}
	return &Map[T]{limit: int64(limit), make: make}
}

// Get returns name's value, building it on first use, or Overflow's once
// the map is full.
func (b *Map[T]) Get(name string) T {
	if v, ok := b.m.Load(name); ok {
		return v.(T)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.m.Load(name); ok {
		return v.(T)
	}
	if b.n.Load() >= b.limit {
		name = Overflow
		if v, ok := b.m.Load(name); ok {
			return v.(T)
		}
	}
	v := b.make(name)
	b.m.Store(name, v)
	b.n.Add(1)
	return v
}

// Range calls f for every name and value, in no particular order.
func (b *Map[T]) Range(f func(name string, v T)) {
	b.m.Range(func(k, v any) bool {
		f(k.(string), v.(T))
		return true
	})
}
