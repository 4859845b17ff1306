package backends_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// SetItems on a backend that is not a Batcher stores item by item.
func TestSetItemsSimple(t *testing.T) {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "p:"})
	assert.False(t, store.Batches())
	testkit.CheckSetItems(t, store)
}

// SetItems on a Batcher makes one SetEntries call, through a breaker too.
func TestSetItemsBatcher(t *testing.T) {
	fb := &fakeBatcher{Backend: backends.NewSimple(0)}
	for _, tt := range []struct {
		name  string
		store *backends.Cache
	}{
		{"bare", backends.New(fb, backends.CacheOptions{KeyPrefix: "p:"})},
		{"behind a breaker", backends.New(backends.NewBreaker(fb, backends.BreakerOptions{}), backends.CacheOptions{KeyPrefix: "q:"})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.True(t, tt.store.Batches())
			fb.calls.Store(0)
			testkit.CheckSetItems(t, tt.store)
			assert.EqualValues(t, 2, fb.calls.Load(), "one SetEntries per SetItems")
		})
	}
}

// A wrapper that does not pass SetEntries on turns batching off, even over
// a Batcher: SetItems could not reach the store in one call through it.
func TestBatchesThroughWrappers(t *testing.T) {
	fb := &fakeBatcher{Backend: backends.NewSimple(0)}
	assert.True(t, backends.New(backends.NewBreaker(fb, backends.BreakerOptions{}), backends.CacheOptions{}).Batches())
	assert.False(t, backends.New(plainWrapper{fb}, backends.CacheOptions{}).Batches())
	assert.False(t, backends.New(backends.NewBreaker(backends.NewSimple(0), backends.BreakerOptions{}), backends.CacheOptions{}).Batches())
}

// fakeBatcher is a SimpleCache that is a Batcher, counting SetEntries calls.
type fakeBatcher struct {
	backends.Backend
	calls atomic.Int64
}

func (f *fakeBatcher) SetEntries(ctx context.Context, entries []backends.Entry) error {
	f.calls.Add(1)
	for _, e := range entries {
		if err := f.Set(ctx, e.Key, e.Value, e.TTL); err != nil {
			return err
		}
	}
	return nil
}

// plainWrapper wraps a Backend without passing SetEntries on.
type plainWrapper struct{ backends.Backend }

func (w plainWrapper) Unwrap() backends.Backend { return w.Backend }
