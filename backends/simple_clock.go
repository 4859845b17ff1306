package backends

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Reading the precise clock costs 60–80 ns on this project's (virtual)
// machines, more than the rest of a Get, so Simple reads a coarse one where
// the answer cannot depend on the difference.
const (
	// coarseTick is how often the coarse clock is updated.
	coarseTick = 100 * time.Millisecond
	// coarseMargin is how close to its expiry, by the coarse clock, an
	// entry must be for a read to consult the precise clock. It covers the
	// tick and any delay in running the updating goroutine, many times over.
	coarseMargin = time.Second
)

// coarseClock holds a reading of a Simple's precise clock, at most about a
// tick old, and never ahead of it.
type coarseClock struct {
	now      atomic.Int64
	done     chan struct{} // closed by stop
	exited   chan struct{} // closed by the goroutine as it returns
	stopOnce sync.Once
}

// startCoarseClock starts the coarse clock if it is not running; the caller
// holds s.mu.
func (s *Simple) startCoarseClock() {
	if s.noCoarse || s.coarse.Load() != nil {
		return
	}
	c := &coarseClock{done: make(chan struct{}), exited: make(chan struct{})}
	c.now.Store(s.now())
	// The goroutine holds the clock weakly, and Simple holds it strongly,
	// so a Simple that is dropped without Close stops its goroutine at the
	// next tick. It must not capture s: s.now closes over the start time
	// only.
	go runCoarseClock(weak.Make(c), s.now, c.done, c.exited)
	s.coarse.Store(c)
}

func runCoarseClock(w weak.Pointer[coarseClock], now func() int64, done <-chan struct{}, exited chan<- struct{}) {
	defer close(exited)
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		c := w.Value()
		if c == nil {
			return
		}
		c.now.Store(now())
	}
}

func (c *coarseClock) stop() { c.stopOnce.Do(func() { close(c.done) }) }
