package httpcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// errPanicked is what waiters get when the handler they waited for
// panicked.
var errPanicked = errors.New("httpcache: handler panicked")

// group runs one handler per key at a time, like
// golang.org/x/sync/singleflight, with two differences that matter here: a
// waiter stops waiting when its request's context ends, and a panicking
// handler releases its waiters with errPanicked (singleflight's DoChan
// re-panics on a fresh goroutine, which no http.Server recovery can
// catch), so they run the handler themselves. It is package memoize's
// group, copied rather than shared so that neither package exports it.
// A handler cannot re-enter its own key (it would need to serve a request
// to itself synchronously), so unlike package fragment's group it does not
// detect re-entrance.
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
			f.err = fmt.Errorf("%w: request for key %q", errPanicked, key)
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
