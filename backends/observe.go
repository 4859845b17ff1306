package backends

import (
	"context"
	"time"
)

// Op names a [Backend] operation, as an [OpObserver] is told it. The
// values are snake_case so that they can serve as metric label values.
type Op string

// The operations of a [Backend].
const (
	OpGet        Op = "get"
	OpGetMany    Op = "get_many"
	OpSet        Op = "set"
	OpSetMany    Op = "set_many"
	OpAdd        Op = "add"
	OpDelete     Op = "delete"
	OpDeleteMany Op = "delete_many"
	OpHas        Op = "has"
	OpInc        Op = "inc"
	OpClear      Op = "clear"
	OpPing       Op = "ping" // a health check, on backends that have one
)

// Ops lists every Op, for metrics packages that declare their series up
// front.
func Ops() []Op {
	return []Op{OpGet, OpGetMany, OpSet, OpSetMany, OpAdd, OpDelete, OpDeleteMany, OpHas, OpInc, OpClear, OpPing}
}

// An OpObserver is told about every backend operation of a Cache built
// with [Observe]: which, how long it took and its error (nil on success; a
// miss is not an error). A call the circuit breaker refused has an error
// matching [ErrBreakerOpen] and never reached the backend. ObserveOp runs
// on the caller's goroutine after the operation, so it must be fast and
// safe for concurrent use. The metrics packages under
// github.com/fragcache/fragcache/metrics implement it.
type OpObserver interface {
	ObserveOp(ctx context.Context, op Op, took time.Duration, err error)
}

// Observe returns a Cache that shares c's backend, prefix, timeout, codec
// and error policy and reports every backend operation to o. c itself stays
// unobserved, so a Cache costs nothing for observation unless it came from
// Observe. The returned Cache's Breaker and Backend are c's.
func Observe(c *Cache, o OpObserver) *Cache {
	cc := *c
	cc.backend = &observed{b: c.backend, o: o}
	return &cc
}

// observed is the Backend wrapper Observe puts around a Cache's backend
// (outside its Breaker, so refused calls are reported too).
type observed struct {
	b Backend
	o OpObserver
}

// Unwrap returns the wrapped backend.
func (ob *observed) Unwrap() Backend { return ob.b }

func (ob *observed) done(ctx context.Context, op Op, began time.Time, err error) {
	ob.o.ObserveOp(ctx, op, time.Since(began), err)
}

func (ob *observed) Get(ctx context.Context, key string) ([]byte, bool, error) {
	began := time.Now()
	v, found, err := ob.b.Get(ctx, key)
	ob.done(ctx, OpGet, began, err)
	return v, found, err
}

func (ob *observed) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	began := time.Now()
	v, err := ob.b.GetMany(ctx, keys)
	ob.done(ctx, OpGetMany, began, err)
	return v, err
}

func (ob *observed) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	began := time.Now()
	err := ob.b.Set(ctx, key, value, ttl)
	ob.done(ctx, OpSet, began, err)
	return err
}

func (ob *observed) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	began := time.Now()
	err := ob.b.SetMany(ctx, items, ttl)
	ob.done(ctx, OpSetMany, began, err)
	return err
}

func (ob *observed) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	began := time.Now()
	added, err := ob.b.Add(ctx, key, value, ttl)
	ob.done(ctx, OpAdd, began, err)
	return added, err
}

func (ob *observed) Delete(ctx context.Context, key string) (bool, error) {
	began := time.Now()
	deleted, err := ob.b.Delete(ctx, key)
	ob.done(ctx, OpDelete, began, err)
	return deleted, err
}

func (ob *observed) DeleteMany(ctx context.Context, keys []string) (int, error) {
	began := time.Now()
	n, err := ob.b.DeleteMany(ctx, keys)
	ob.done(ctx, OpDeleteMany, began, err)
	return n, err
}

func (ob *observed) Has(ctx context.Context, key string) (bool, error) {
	began := time.Now()
	ok, err := ob.b.Has(ctx, key)
	ob.done(ctx, OpHas, began, err)
	return ok, err
}

func (ob *observed) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	began := time.Now()
	n, err := ob.b.Inc(ctx, key, delta, ttl)
	ob.done(ctx, OpInc, began, err)
	return n, err
}

func (ob *observed) Clear(ctx context.Context, prefix string) error {
	began := time.Now()
	err := ob.b.Clear(ctx, prefix)
	ob.done(ctx, OpClear, began, err)
	return err
}

// Ping checks the wrapped backend, if it has a Ping method (a health
// check for readiness probes), and reports it as OpPing; otherwise it
// reports nothing and returns nil, as a backend without one would.
func (ob *observed) Ping(ctx context.Context) error {
	p, ok := ob.b.(interface{ Ping(context.Context) error })
	if !ok {
		return nil
	}
	began := time.Now()
	err := p.Ping(ctx)
	ob.done(ctx, OpPing, began, err)
	return err
}

// Close closes the wrapped backend; closing is not an operation worth
// observing.
func (ob *observed) Close() error { return ob.b.Close() }
