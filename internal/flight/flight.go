// Package flight runs one computation per key at a time and shares its
// result with the callers that asked for the same key meanwhile: what
// fragment blocks, memoized functions and cached HTTP handlers all need so
// that concurrent misses do the work once.
//
// It is golang.org/x/sync/singleflight's idea with four differences that
// matter here. A waiter stops waiting when its own context ends. A
// panicking computation releases its waiters with ErrPanicked and the
// panic goes on in its own goroutine (singleflight's DoChan re-panics on a
// fresh goroutine, which no http.Server recovery can catch). And a caller
// that would wait for itself gets ErrRecursive instead of a deadlock: a
// template block that re-enters its own fragment, a memoized function that
// calls itself with the same arguments, or two computations each waiting
// for the other across goroutines, in one Group or in two (the wait-for
// graph is the process's, not a Group's). The last case (ErrCycle) is an
// accident of timing rather than a bug, and callers compute such a value
// themselves.
// And a caller whose computation fails after its own context ended does
// not pass that failure on to waiters whose contexts are alive: one of them
// takes over.
//
// Template engines give a function no per-render context (html/template
// has none at all), so the only identity a computation shares with the
// calls nested inside it is its goroutine. The id comes from
// github.com/petermattis/goid: a few nanoseconds, where runtime.Stack, the
// only standard-library way, walks the whole stack (50–110 µs at the
// depths Jet and html/template render at). It is read only on the miss
// path, never on a cache hit.
//
// A computation nobody waits for allocates nothing: its bookkeeping is
// reused, and the channel waiters block on is made by the first waiter.
// That is every cache miss but the concurrent ones.
package flight

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/petermattis/goid"
)

var (
	// ErrRecursive is returned when a key is requested while it is being
	// computed by the calling goroutine itself, or by a goroutine that is,
	// through a chain of waits, waiting for the caller: waiting would
	// deadlock.
	ErrRecursive = errors.New("re-enters a key that is still being computed by its own caller")
	// ErrCycle is the ErrRecursive of the second kind: the key is being
	// computed by another goroutine that waits, directly or through
	// others, for the caller. Unlike a goroutine re-entering its own key
	// (a bug in what it computes), this is an accident of timing between
	// two computations that nest the same keys in opposite orders, so
	// callers can compute the value themselves without sharing it.
	ErrCycle = fmt.Errorf("%w: another goroutine computing it waits for this one", ErrRecursive)
	// ErrPanicked is returned to the callers that waited for a computation
	// that panicked.
	ErrPanicked = errors.New("the computation being waited for panicked")
	// ErrAbandon, returned (or wrapped) by a computation, says that its
	// result is of no use to anyone else: waiters do not get it but take
	// over, as after a computation whose caller's context ended. Fragment
	// batching uses it for a render that left nested blocks to a later
	// pass.
	ErrAbandon = errors.New("the computation was abandoned")
)

// Group deduplicates computations by key. The zero value is ready to use;
// a Group must not be copied after first use.
type Group[V any] struct {
	mu      sync.Mutex
	calls   map[string]*call[V]
	waiting int // callers waiting for a computation of this group
	// free holds calls nobody waited for, for reuse: a computation
	// without waiters (every cache miss but the concurrent ones) then
	// allocates nothing.
	free sync.Pool
}

// waits is the process-wide wait-for graph: goroutine → the goroutine
// computing what it waits for. It is one for every Group because a cycle
// can run through several: a memoized function waiting for another one
// that waits for the first, a fragment whose body calls a memoized
// function that renders that fragment. A graph per Group would see none of
// these, and they would deadlock. The lock is taken only by callers that
// are about to wait, never on the path of a computation's leader.
var waits struct {
	mu sync.Mutex
	on map[int64]int64
}

type call[V any] struct {
	owner int64 // goroutine computing the value
	// done is made by the first waiter and closed when the computation
	// ends; both under Group.mu, which also guards waiters, the callers
	// that ever waited. A call that had none is reused (Group.free):
	// nobody can reach it once it is out of Group.calls.
	done    chan struct{}
	waiters int
	val     V
	err     error
	// abandoned: the computation failed after its caller's context
	// ended, so its error says nothing about the key.
	abandoned bool
}

// Do runs fn for key unless a computation of key is in flight, in which
// case it waits for that computation's result; shared reports the latter.
// Waiting ends early with ctx.Err() when ctx ends.
//
// ctx is the caller's, and fn typically runs under it. When a computation
// fails after its caller's ctx ended (a request cancelled mid-render), its
// error is about that caller, not the key: waiters whose own ctx is alive
// do not inherit it, but take over — one of them runs its own fn, the
// others wait for that one.
func (g *Group[V]) Do(ctx context.Context, key string, fn func() (V, error)) (val V, shared bool, err error) {
	val, shared, _, err = g.do(ctx, key, fn, true)
	return val, shared, err
}

// TryDo runs fn for key unless a computation of key is in flight, in
// which case it returns at once with ran=false and the zero value: for a
// caller that has something else to use meanwhile (a stale copy). A
// caller that would wait for itself gets ErrRecursive as from Do.
func (g *Group[V]) TryDo(ctx context.Context, key string, fn func() (V, error)) (val V, ran bool, err error) {
	val, _, ran, err = g.do(ctx, key, fn, false)
	return val, ran, err
}

func (g *Group[V]) do(ctx context.Context, key string, fn func() (V, error), wait bool) (val V, shared, ran bool, err error) {
	me := goid.Get()
	for {
		g.mu.Lock()
		if g.calls == nil {
			g.calls = make(map[string]*call[V])
		}
		c, ok := g.calls[key]
		if !ok {
			break // g.mu stays locked: lead
		}
		if c.owner == me {
			g.mu.Unlock()
			return val, false, false, ErrRecursive
		}
		if !wait {
			g.mu.Unlock()
			return val, false, false, nil
		}
		// Looking for a cycle and joining the graph happen under one
		// lock, so that of two goroutines about to close a cycle the
		// second sees the first's edge. The graph has no cycle (no edge
		// that would close one is added), so the walk ends.
		waits.mu.Lock()
		for o, ok := waits.on[c.owner]; ok; o, ok = waits.on[o] {
			if o == me {
				waits.mu.Unlock()
				g.mu.Unlock()
				return val, false, false, ErrCycle
			}
		}
		if waits.on == nil {
			waits.on = make(map[int64]int64)
		}
		waits.on[me] = c.owner
		waits.mu.Unlock()
		if c.done == nil {
			c.done = make(chan struct{})
		}
		c.waiters++
		done := c.done
		g.waiting++
		g.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		waits.mu.Lock()
		delete(waits.on, me)
		waits.mu.Unlock()
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
		if ctx.Err() != nil {
			return val, true, false, ctx.Err()
		}
		if c.abandoned {
			continue // take over: lead, or wait for whoever took over first
		}
		return c.val, true, false, c.err
	}

	c, _ := g.free.Get().(*call[V])
	if c == nil {
		c = new(call[V])
	}
	c.owner = me
	g.calls[key] = c
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished { // fn panicked: release the waiters, then let the panic go on
			c.err = fmt.Errorf("%w (key %q)", ErrPanicked, key)
		}
		g.mu.Lock()
		delete(g.calls, key)
		done, waited := c.done, c.waiters > 0
		g.mu.Unlock()
		if waited {
			close(done) // the waiters read c from now on: it is not reused
		} else if finished {
			*c = call[V]{}
			g.free.Put(c)
		}
	}()
	val, err = fn()
	c.val, c.err = val, err
	c.abandoned = err != nil && (ctx.Err() != nil || errors.Is(err, ErrAbandon))
	finished = true
	return val, false, true, err
}

// Waiting returns how many callers are waiting for a computation of g in
// flight.
func (g *Group[V]) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// InFlight reports whether key is being computed.
func (g *Group[V]) InFlight(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[key]
	return ok
}
