package memoize

// The typed wrappers below differ only in arity; each is a thin shell over
// memo[R], which holds all behaviour.

import (
	"context"
	"reflect"

	"github.com/fragcache/fragcache/backends"
)

// Memoized is a function of one argument whose results are cached; build it
// with [Func]. It is safe for concurrent use.
type Memoized[A, R any] struct {
	m  *memo[R]
	fn func(context.Context, A) (R, error)
}

// Func memoizes fn. It panics, as for a programming error, if cache or fn
// is nil, if fn is a function literal or method value and opts.Name is
// empty, if opts.Timeout is negative other than backends.NoExpiry, or if
// opts.IgnoreArgs names a position fn does not have.
func Func[A, R any](cache *backends.Cache, fn func(context.Context, A) (R, error), opts Options) *Memoized[A, R] {
	return &Memoized[A, R]{
		m:  newMemo[R](cache, fn, nil, []reflect.Type{reflect.TypeFor[A]()}, opts),
		fn: fn,
	}
}

// Call returns the stored result for the arguments, or runs the function,
// stores its result and returns it. Errors from the function are returned
// and never stored.
func (f *Memoized[A, R]) Call(ctx context.Context, a A) (R, error) {
	return f.m.call(ctx, nil, f.args(a), func(ctx context.Context) (R, error) { return f.fn(ctx, a) })
}

// Delete removes the result stored for exactly these arguments and
// reports whether there was one, valid or already invalidated (Flask's
// delete_memoized(f, *args)).
func (f *Memoized[A, R]) Delete(ctx context.Context, a A) (bool, error) {
	return f.m.deleteOne(ctx, nil, f.args(a))
}

// Uncached runs the function without reading or writing the cache.
func (f *Memoized[A, R]) Uncached(ctx context.Context, a A) (R, error) {
	return f.fn(ctx, a)
}

// args encodes the arguments of one call for its key.
func (f *Memoized[A, R]) args(a A) keyArgs {
	return func(e *argEncoder, ignore []bool) error {
		return encodeArg(e, ignore, 0, a)
	}
}

// DeleteMemoized invalidates every stored result, whatever the arguments,
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

// Memoized2 is a function of two arguments whose results are cached; build it
// with [Func2]. It is safe for concurrent use.
type Memoized2[A, B, R any] struct {
	m  *memo[R]
	fn func(context.Context, A, B) (R, error)
}

// Func2 memoizes fn. It panics, as for a programming error, if cache or fn
// is nil, if fn is a function literal or method value and opts.Name is
// empty, if opts.Timeout is negative other than backends.NoExpiry, or if
// opts.IgnoreArgs names a position fn does not have.
func Func2[A, B, R any](cache *backends.Cache, fn func(context.Context, A, B) (R, error), opts Options) *Memoized2[A, B, R] {
	return &Memoized2[A, B, R]{
		m:  newMemo[R](cache, fn, nil, []reflect.Type{reflect.TypeFor[A](), reflect.TypeFor[B]()}, opts),
		fn: fn,
	}
}

// Call returns the stored result for the arguments, or runs the function,
// stores its result and returns it. Errors from the function are returned
// and never stored.
func (f *Memoized2[A, B, R]) Call(ctx context.Context, a A, b B) (R, error) {
	return f.m.call(ctx, nil, f.args(a, b), func(ctx context.Context) (R, error) { return f.fn(ctx, a, b) })
}

// Delete removes the result stored for exactly these arguments and
// reports whether there was one, valid or already invalidated (Flask's
// delete_memoized(f, *args)).
func (f *Memoized2[A, B, R]) Delete(ctx context.Context, a A, b B) (bool, error) {
	return f.m.deleteOne(ctx, nil, f.args(a, b))
}

// Uncached runs the function without reading or writing the cache.
func (f *Memoized2[A, B, R]) Uncached(ctx context.Context, a A, b B) (R, error) {
	return f.fn(ctx, a, b)
}

// args encodes the arguments of one call for its key.
func (f *Memoized2[A, B, R]) args(a A, b B) keyArgs {
	return func(e *argEncoder, ignore []bool) error {
		if err := encodeArg(e, ignore, 0, a); err != nil {
			return err
		}
		return encodeArg(e, ignore, 1, b)
	}
}

// DeleteMemoized invalidates every stored result, whatever the arguments,
// in one write: the function's version is replaced, and entries holding
// the old one are misses from then on (Flask's delete_memoized(f)).
func (f *Memoized2[A, B, R]) DeleteMemoized(ctx context.Context) error {
	return f.m.deleteMemoized(ctx)
}

// DeleteVerhash deletes the function's version key; the next call creates
// a new version, so every stored result is invalidated (Flask's
// delete_memoized_verhash).
func (f *Memoized2[A, B, R]) DeleteVerhash(ctx context.Context) error {
	return f.m.deleteVerhash(ctx)
}

// Name returns the name the function is identified by in keys.
func (f *Memoized2[A, B, R]) Name() string { return f.m.name }

// Stats returns a snapshot of the function's counters.
func (f *Memoized2[A, B, R]) Stats() Stats { return f.m.stats() }

// Memoized3 is a function of three arguments whose results are cached; build it
// with [Func3]. It is safe for concurrent use.
type Memoized3[A, B, C, R any] struct {
	m  *memo[R]
	fn func(context.Context, A, B, C) (R, error)
}

// Func3 memoizes fn. It panics, as for a programming error, if cache or fn
// is nil, if fn is a function literal or method value and opts.Name is
// empty, if opts.Timeout is negative other than backends.NoExpiry, or if
// opts.IgnoreArgs names a position fn does not have.
func Func3[A, B, C, R any](cache *backends.Cache, fn func(context.Context, A, B, C) (R, error), opts Options) *Memoized3[A, B, C, R] {
	return &Memoized3[A, B, C, R]{
		m:  newMemo[R](cache, fn, nil, []reflect.Type{reflect.TypeFor[A](), reflect.TypeFor[B](), reflect.TypeFor[C]()}, opts),
		fn: fn,
	}
}

// Call returns the stored result for the arguments, or runs the function,
// stores its result and returns it. Errors from the function are returned
// and never stored.
func (f *Memoized3[A, B, C, R]) Call(ctx context.Context, a A, b B, c C) (R, error) {
	return f.m.call(ctx, nil, f.args(a, b, c), func(ctx context.Context) (R, error) { return f.fn(ctx, a, b, c) })
}

// Delete removes the result stored for exactly these arguments and
// reports whether there was one, valid or already invalidated (Flask's
// delete_memoized(f, *args)).
func (f *Memoized3[A, B, C, R]) Delete(ctx context.Context, a A, b B, c C) (bool, error) {
	return f.m.deleteOne(ctx, nil, f.args(a, b, c))
}

// Uncached runs the function without reading or writing the cache.
func (f *Memoized3[A, B, C, R]) Uncached(ctx context.Context, a A, b B, c C) (R, error) {
	return f.fn(ctx, a, b, c)
}

// args encodes the arguments of one call for its key.
func (f *Memoized3[A, B, C, R]) args(a A, b B, c C) keyArgs {
	return func(e *argEncoder, ignore []bool) error {
		if err := encodeArg(e, ignore, 0, a); err != nil {
			return err
		}
		if err := encodeArg(e, ignore, 1, b); err != nil {
			return err
		}
		return encodeArg(e, ignore, 2, c)
	}
}

// DeleteMemoized invalidates every stored result, whatever the arguments,
// in one write: the function's version is replaced, and entries holding
// the old one are misses from then on (Flask's delete_memoized(f)).
func (f *Memoized3[A, B, C, R]) DeleteMemoized(ctx context.Context) error {
	return f.m.deleteMemoized(ctx)
}

// DeleteVerhash deletes the function's version key; the next call creates
// a new version, so every stored result is invalidated (Flask's
// delete_memoized_verhash).
func (f *Memoized3[A, B, C, R]) DeleteVerhash(ctx context.Context) error {
	return f.m.deleteVerhash(ctx)
}

// Name returns the name the function is identified by in keys.
func (f *Memoized3[A, B, C, R]) Name() string { return f.m.name }

// Stats returns a snapshot of the function's counters.
func (f *Memoized3[A, B, C, R]) Stats() Stats { return f.m.stats() }
