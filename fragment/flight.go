package fragment

import (
	"context"
	"fmt"
	"sync"

	"github.com/petermattis/goid"
)

// group runs one render per key at a time, like singleflight.Group, and
// refuses to wait where waiting would deadlock: when the key is being
// rendered by the calling goroutine itself (a block re-entering its own
// fragment), or by a goroutine that is, through a chain of waits, waiting
// for the caller. Template engines give a function no per-render context
// (html/template has none at all), so the only identity shared by a block
// and the blocks nested inside it is the goroutine. Its id comes from
// github.com/petermattis/goid (a few nanoseconds; runtime.Stack, the only
// standard-library way, walks the whole stack: 50–110 µs per call at the
// depths Jet and html/template render at), and only on the miss path.
type group struct {
	mu      sync.Mutex
	flights map[string]*flight
	waiting map[int64]*flight // goroutine → the flight it waits for
}

type flight struct {
	owner int64 // goroutine rendering the body
	done  chan struct{}
	val   []byte
	err   error
}

// do runs fn for key unless a render of key is in flight, in which case it
// waits for that render's result; shared reports the latter.
func (g *group) do(ctx context.Context, key string, fn func() ([]byte, error)) (val []byte, shared bool, err error) {
	me := goid.Get()
	g.mu.Lock()
	if g.flights == nil {
		g.flights = make(map[string]*flight)
		g.waiting = make(map[int64]*flight)
	}
	if f, ok := g.flights[key]; ok {
		for w := f; w != nil; w = g.waiting[w.owner] {
			if w.owner == me {
				g.mu.Unlock()
				return nil, false, ErrRecursive
			}
		}
		g.waiting[me] = f
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			delete(g.waiting, me)
			g.mu.Unlock()
		}()
		select {
		case <-f.done:
			return f.val, true, f.err
		case <-ctx.Done():
			return nil, true, ctx.Err()
		}
	}
	f := &flight{owner: me, done: make(chan struct{})}
	g.flights[key] = f
	g.mu.Unlock()

	finished := false
	defer func() {
		if !finished { // fn panicked: release the waiters, then let the panic go on
			f.err = fmt.Errorf("%w: render of %q", ErrPanicked, key)
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
