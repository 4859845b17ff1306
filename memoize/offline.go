package memoize

import (
	"context"

	"github.com/fragcache/fragcache/internal/flight"
)

// callOffline runs fn for a call whose lookup failed (the backend down,
// its circuit breaker open) and that has no stale copy at hand: once per
// key across concurrent callers, as a miss is, since an outage of the
// cache is when what fn calls needs that most; its result is stored
// nowhere. It has a flight group of its own because the function's
// version, part of a miss's flight key, could not be read.
func (m *memo[R]) callOffline(ctx context.Context, key string, fn func(context.Context) (R, error)) (R, error) {
	r, _, err := m.offline.Do(ctx, key, func() (R, error) {
		m.calls.Add(1)
		return fn(ctx)
	})
	if err == flight.ErrCycle {
		// As in fill: two calls nested the other way round wait for each
		// other; run it here rather than deadlock or fail.
		m.calls.Add(1)
		return fn(ctx)
	}
	return r, err
}
