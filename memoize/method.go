package memoize

import (
	"context"
	"reflect"

	"github.com/fragcache/fragcache/backends"
)

// MemoizedMethod is a method whose results are cached per receiver and
// argument; build it with [Method]. It is safe for concurrent use.
type MemoizedMethod[T Identifier, A, R any] struct {
	m  *memo[R]
	fn func(T, context.Context, A) (R, error)
}

// Method memoizes the method expression fn, such as (*Repo).Find, of a
// method taking a context and one argument (a struct for several, as for
// [Func]). The receiver's CacheID is part of every key: two receivers
// never share entries, and DeleteInstance invalidates one receiver's. A
// method value (repo.Find) cannot be memoized this way, since its receiver
// is hidden in it; pass the method expression and the receiver to Call. It
// panics, as for a programming error, if cache or fn is nil, if fn is a
// function literal or method value and opts.Name is empty, if opts.Timeout
// is negative other than backends.NoExpiry, or if opts.IgnoreFields names
// a field A does not have.
func Method[T Identifier, A, R any](cache *backends.Cache, fn func(T, context.Context, A) (R, error), opts Options) *MemoizedMethod[T, A, R] {
	return &MemoizedMethod[T, A, R]{m: newMemo[R](cache, fn, reflect.TypeFor[T](), reflect.TypeFor[A](), opts), fn: fn}
}

// Call returns the stored result for recv and the argument, or runs the
// method, stores its result and returns it. Errors from the method are
// returned and never stored.
func (f *MemoizedMethod[T, A, R]) Call(ctx context.Context, recv T, a A) (R, error) {
	id, err := receiverID(recv)
	if err != nil {
		var zero R
		return zero, err
	}
	return f.m.call(ctx, &id, a, func(ctx context.Context) (R, error) { return f.fn(recv, ctx, a) })
}

// Delete removes the result stored for recv and exactly this argument and
// reports whether there was one, valid or already invalidated.
func (f *MemoizedMethod[T, A, R]) Delete(ctx context.Context, recv T, a A) (bool, error) {
	id, err := receiverID(recv)
	if err != nil {
		return false, err
	}
	return f.m.deleteOne(ctx, &id, a)
}

// DeleteInstance invalidates every result stored for recv, whatever the
// argument, by giving recv a new version; other receivers keep theirs.
func (f *MemoizedMethod[T, A, R]) DeleteInstance(ctx context.Context, recv T) error {
	id, err := receiverID(recv)
	if err != nil {
		return err
	}
	return f.m.deleteInstance(ctx, id)
}

// Uncached runs the method without reading or writing the cache.
func (f *MemoizedMethod[T, A, R]) Uncached(ctx context.Context, recv T, a A) (R, error) {
	return f.fn(recv, ctx, a)
}

// DeleteMemoized invalidates every stored result, for every receiver and
// argument, in one write: the function's version is replaced, and entries
// holding the old one are misses from then on (Flask's delete_memoized(f)).
func (f *MemoizedMethod[T, A, R]) DeleteMemoized(ctx context.Context) error {
	return f.m.deleteMemoized(ctx)
}

// DeleteVerhash deletes the function's version key; the next call creates
// a new version, so every stored result is invalidated (Flask's
// delete_memoized_verhash).
func (f *MemoizedMethod[T, A, R]) DeleteVerhash(ctx context.Context) error {
	return f.m.deleteVerhash(ctx)
}

// Name returns the name the function is identified by in keys.
func (f *MemoizedMethod[T, A, R]) Name() string { return f.m.name }

// Stats returns a snapshot of the function's counters.
func (f *MemoizedMethod[T, A, R]) Stats() Stats { return f.m.stats() }
