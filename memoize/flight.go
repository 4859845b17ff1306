package memoize

import (
	"context"
	"fmt"
	"sync"
)

// group runs one call per key at a time, like
// golang.org/x/sync/singleflight, with two differences that matter here: a
// waiter stops waiting when its own context ends, and a panicking function
// releases its waiters with ErrPanicked (singleflight's DoChan re-panics on
// a fresh goroutine, which no http.Server recovery can catch). Unlike
// package fragment's group it does not detect re-entrance: a memoized
// function that calls itself with the same arguments recurses forever
// with or without a cache, so there is no deadlock a cache could add.
type group[T any] struct {
	mu      sync.Mutex
	flights map[string]*flight[T]
	waiting int // callers waiting for a flight, for tests to synchronise on
}

type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// do runs fn for key unless a call for key is in flight, in which case it
// waits for that call's result; shared reports the latter.
func (g *group[T]) do(ctx context.Context, key string, fn func() (T, error)) (val T, shared bool, err error) {
	g.mu.Lock()
	if g.flights == nil {
		g.flights = make(map[string]*flight[T])
	}
	if f, ok := g.flights[key]; ok {
		g.waiting++
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
		}()
		select {
		case <-f.done:
			return f.val, true, f.err
		case <-ctx.Done():
			var zero T
			return zero, true, ctx.Err()
		}
	}
	f := &flight[T]{done: make(chan struct{})}
	g.flights[key] = f
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished { // fn panicked: release the waiters, then let the panic go on
			f.err = fmt.Errorf("%w: call for key %q", ErrPanicked, key)
		}
		g.mu.Lock()
		delete(g.flights, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.val, f.err = fn()
	finished = true
	return f.val, false, f.err
}
