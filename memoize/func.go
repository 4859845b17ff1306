package memoize

import (
	"context"
	"reflect"

	"github.com/fragcache/fragcache/backends"
)

// Memoized is a function whose results are cached by its argument; build it
// with [Func]. It is safe for concurrent use.
type Memoized[A, R any] struct {
	m  *memo[R]
	fn func(context.Context, A) (R, error)
}

// Func memoizes fn, a function of a context and one argument; a function
// of several arguments takes them as a struct, every field of which is
// part of the key unless Options.IgnoreFields names it. It panics, as for
// a programming error, if cache or fn is nil, if fn is a function literal
// or method value and opts.Name is empty, if opts.Timeout is negative
// other than backends.NoExpiry, or if opts.IgnoreFields names a field A
// does not have.
func Func[A, R any](cache *backends.Cache, fn func(context.Context, A) (R, error), opts Options) *Memoized[A, R] {
	return &Memoized[A, R]{m: newMemo[R](cache, fn, nil, reflect.TypeFor[A](), opts), fn: fn}
}

// Call returns the stored result for the argument, or runs the function,
// stores its result and returns it. Errors from the function are returned
// and never stored.
func (f *Memoized[A, R]) Call(ctx context.Context, a A) (R, error) {
	return f.m.call(ctx, nil, a, func(ctx context.Context) (R, error) { return f.fn(ctx, a) })
}

// Delete removes the result stored for exactly this argument and reports
// whether there was one, valid or already invalidated (Flask's
// delete_memoized(f, *args)).
func (f *Memoized[A, R]) Delete(ctx context.Context, a A) (bool, error) {
	return f.m.deleteOne(ctx, nil, a)
}

// Uncached runs the function without reading or writing the cache.
func (f *Memoized[A, R]) Uncached(ctx context.Context, a A) (R, error) {
	return f.fn(ctx, a)
}

// DeleteMemoized invalidates every stored result, whatever the argument,
// in one write: the function's version is replaced, and entries holding
// the old one are misses from then on (Flask's delete_memoized(f)).
func (f *Memoized[A, R]) DeleteMemoized(ctx context.Context) error {
	return f.m.deleteMemoized(ctx)
}

// DeleteVerhash deletes the function's version key; the next call creates
// a new version, so every stored result is invalidated (Flask's
// delete_memoized_verhash).
func (f *Memoized[A, R]) DeleteVerhash(ctx context.Context) error {
	return f.m.deleteVerhash(ctx)
}

// Name returns the name the function is identified by in keys.
func (f *Memoized[A, R]) Name() string { return f.m.name }

// Stats returns a snapshot of the function's counters.
func (f *Memoized[A, R]) Stats() Stats { return f.m.stats() }
