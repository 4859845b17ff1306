package httpcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/petermattis/goid"
)

// Concurrent misses of one key run the handler once: the first request
// leads, the others wait for its response. This is internal/flight's idea,
// which the other packages use, with one thing flight.Group.Do cannot give:
// the leader releases its waiters while its handler is still running, as
// soon as the response turns out not to be one they can share (it streams,
// is refused by the rules, grows past MaxBodySize), and the handler goes on
// in the leader's own goroutine, where net/http can recover its panics.
// Do releases waiters only when its function returns, which would mean
// running the handler on a goroutine of its own or waiting for a stream to
// end. As in flight, a goroutine that would wait for itself (a handler
// serving its own URL in-process, or two doing so for each other) is told
// so instead of deadlocking; the goroutine id comes from
// github.com/petermattis/goid, as in flight, read only on a miss.
//
// Why not one mechanism: flight could grow a release hook (Do passing fn
// a func that hands waiters a value early), but httpcache would still need
// what flight has no use for elsewhere: a split join/wait, since a waiter
// must check the outcome against its own variant key (Vary) before taking
// it; an outcome that says "look again" rather than a value or an error;
// and pass hints (hit-for-miss) that make later requests skip the group.
// That is a second API in flight with one caller, on the path fragment
// and memoize share. Both keep the same rules (one leader per key, a
// waiter's own ctx ends its wait, a panicking leader releases its
// waiters, a cancelled leader hands over, self-waits are refused), and
// their tests check each.

// errRecursive is join's answer to a request that would wait for itself.
var errRecursive = errors.New("the response is being produced by the request's own goroutine, or one waiting for it")

// passHintTTL is how long requests for a key whose response could not be
// shared run the handler without waiting for one another, and
// maxPassHints bounds how many keys are remembered (Varnish calls this
// hit-for-miss). A response that ends after a long wait (a long poll) is
// only known to be unshareable when it ends; this keeps its later
// requests from queueing behind one another. A response that can be
// stored clears the hint.
const (
	passHintTTL  = time.Minute
	maxPassHints = 4096
)

// fills coordinates the requests of one Cache.
type fills struct {
	mu      sync.Mutex
	leading map[string]*fill
	waiting map[int64]*fill // goroutine → the fill it waits for
	hints   map[string]time.Time
}

// fill is one run of the handler that other requests may wait for.
type fill struct {
	key      string
	owner    int64 // the leader's goroutine
	done     chan struct{}
	released bool // guarded by fills.mu
	out      outcome
}

// outcome is what a leader hands its waiters.
type outcome struct {
	e     *entry  // the response, or nil if it cannot be shared
	key   string  // the key e was stored under
	m     *marker // the vary marker e was stored with, if any
	retry bool    // the leader's request ended: one of the waiters takes over
}

type joinResult uint8

const (
	lead joinResult = iota // run the handler; f is yours to release
	wait                   // another request runs it: wait for f
	solo                   // run the handler, with no one waiting (a pass hint)
)

// join enters key: the caller leads, waits, or runs alone. A caller that
// would wait for itself gets errRecursive.
func (fs *fills) join(key string, now time.Time) (*fill, joinResult, error) {
	me := goid.Get()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.leading == nil {
		fs.leading = make(map[string]*fill)
		fs.waiting = make(map[int64]*fill)
		fs.hints = make(map[string]time.Time)
	}
	if until, ok := fs.hints[key]; ok {
		if now.Before(until) {
			return nil, solo, nil
		}
		delete(fs.hints, key)
	}
	if f, ok := fs.leading[key]; ok {
		for w := f; w != nil; w = fs.waiting[w.owner] {
			if w.owner == me {
				return nil, 0, errRecursive
			}
		}
		fs.waiting[me] = f
		return f, wait, nil
	}
	f := &fill{key: key, owner: me, done: make(chan struct{})}
	fs.leading[key] = f
	return f, lead, nil
}

// wait waits for f's outcome, or for ctx to end.
func (fs *fills) wait(ctx context.Context, f *fill) (outcome, error) {
	var err error
	select {
	case <-f.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	fs.mu.Lock()
	delete(fs.waiting, goid.Get())
	fs.mu.Unlock()
	if err != nil {
		return outcome{}, err
	}
	return f.out, nil
}

// release hands out to f's waiters, once; later calls do nothing.
func (fs *fills) release(f *fill, out outcome) {
	if f == nil {
		return
	}
	fs.mu.Lock()
	if f.released {
		fs.mu.Unlock()
		return
	}
	f.released, f.out = true, out
	if fs.leading[f.key] == f {
		delete(fs.leading, f.key)
	}
	fs.mu.Unlock()
	close(f.done)
}

// hint remembers that key's response could not be shared; unhint forgets.
func (fs *fills) hint(key string, now time.Time) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.hints == nil {
		fs.hints = make(map[string]time.Time)
	}
	if _, ok := fs.hints[key]; !ok && len(fs.hints) >= maxPassHints {
		for k, until := range fs.hints { // drop the expired, or else any one
			if !now.Before(until) || len(fs.hints) >= maxPassHints {
				delete(fs.hints, k)
			}
		}
	}
	fs.hints[key] = now.Add(passHintTTL)
}

func (fs *fills) unhint(key string) {
	fs.mu.Lock()
	delete(fs.hints, key)
	fs.mu.Unlock()
}

// waiters returns how many requests wait for another's handler.
func (fs *fills) waiters() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.waiting)
}
