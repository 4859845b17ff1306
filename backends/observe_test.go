package backends_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// opLog records what an OpObserver is told.
type opLog struct {
	mu   sync.Mutex
	ops  []backends.Op
	errs []error
}

func (l *opLog) ObserveOp(_ context.Context, op backends.Op, took time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if took < 0 {
		panic("negative duration")
	}
	l.ops = append(l.ops, op)
	l.errs = append(l.errs, err)
}

func TestObserveReportsEveryOperation(t *testing.T) {
	ctx := context.Background()
	base := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "p:"})
	var log opLog
	c := backends.Observe(base, &log)

	calls := []struct {
		op  backends.Op
		run func() error
	}{
		{backends.OpSet, func() error { return c.Set(ctx, "a", "x") }},
		{backends.OpGet, func() error { _, err := c.GetValue(ctx, "a"); return err }},
		{backends.OpGetMany, func() error { _, err := c.GetMany(ctx, "a", "b"); return err }},
		{backends.OpSetMany, func() error { return c.SetMany(ctx, map[string]any{"b": "y"}) }},
		{backends.OpAdd, func() error { _, err := c.Add(ctx, "c", "z"); return err }},
		{backends.OpHas, func() error { _, err := c.Has(ctx, "c"); return err }},
		{backends.OpInc, func() error { _, err := c.Inc(ctx, "n", 1); return err }},
		{backends.OpDelete, func() error { _, err := c.Delete(ctx, "c"); return err }},
		{backends.OpDeleteMany, func() error { _, err := c.DeleteMany(ctx, "a", "b"); return err }},
		{backends.OpClear, func() error { return c.Clear(ctx) }},
	}
	var want []backends.Op
	for _, call := range calls {
		require.NoError(t, call.run(), call.op)
		want = append(want, call.op)
	}
	assert.Equal(t, want, log.ops, "one report per operation, in order")
	assert.ElementsMatch(t, slices.DeleteFunc(backends.Ops(), func(op backends.Op) bool { return op == backends.OpPing }), want,
		"the table covers every Op but ping (TestObservedKeepsPing)")
	for _, err := range log.errs {
		assert.NoError(t, err)
	}

	before := len(log.ops)
	_, err := base.GetValue(ctx, "a")
	require.NoError(t, err)
	assert.Len(t, log.ops, before, "the Cache Observe was given stays unobserved")
	assert.Equal(t, base.Backend(), c.Backend(), "Backend sees through the observer")
	assert.Equal(t, base.KeyPrefix(), c.KeyPrefix())
}

func TestObserveReportsErrorsAndBreakerRefusals(t *testing.T) {
	ctx := context.Background()
	f := &flaky{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(f, backends.BreakerOptions{Failures: 2, Cooldown: time.Hour, Name: "test"})
	var log opLog
	c := backends.Observe(backends.New(br, backends.CacheOptions{}), &log)
	require.Same(t, br, c.Breaker(), "Breaker sees through the observer")

	f.fail(errRefused)
	for range 3 {
		_, err := c.GetValue(ctx, "k")
		require.Error(t, err)
	}
	require.Len(t, log.errs, 3)
	assert.ErrorIs(t, log.errs[0], errRefused)
	assert.ErrorIs(t, log.errs[1], errRefused)
	assert.ErrorIs(t, log.errs[2], backends.ErrBreakerOpen, "the third call is refused by the open breaker")
	assert.False(t, errors.Is(log.errs[0], backends.ErrBreakerOpen))
}

func TestObserveSeesThroughANearCacheToTheBreaker(t *testing.T) {
	br := backends.NewBreaker(backends.NewSimple(0), backends.BreakerOptions{Name: "test"})
	near := backends.NewNearCache(br, backends.NearCacheOptions{})
	c := backends.Observe(backends.New(near, backends.CacheOptions{}), &opLog{})
	assert.Same(t, br, c.Breaker(), "observed, near cache, breaker: Open's order")
}
