package httpcache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// hungBackend stands for a backend that has stopped answering: every call
// is counted and fails as a call to a hung server does once its timeout
// fires (the breaker counts that as a failure).
type hungBackend struct {
	backends.Backend
	calls atomic.Int64
}

var errHung = fmt.Errorf("read tcp 127.0.0.1:6379: %w", context.DeadlineExceeded)

func (h *hungBackend) Get(context.Context, string) ([]byte, bool, error) {
	h.calls.Add(1)
	return nil, false, errHung
}

func (h *hungBackend) GetMany(context.Context, []string) ([][]byte, error) {
	h.calls.Add(1)
	return nil, errHung
}

func (h *hungBackend) Set(context.Context, string, []byte, time.Duration) error {
	h.calls.Add(1)
	return errHung
}

func (h *hungBackend) Delete(context.Context, string) (bool, error) {
	h.calls.Add(1)
	return false, errHung
}

// TestAttackBreakerGuardsHTTPCache: once a backend's circuit breaker is
// open, fragments and memoized functions skip the backend at once (issue
// 14: an outage costs milliseconds). httpcache reaches the backend through
// backends.Cache.Backend(), which unwraps the breaker, so every request
// still pays a call to the hung server (its full timeout, in production)
// and its failures never feed the breaker.
func TestAttackBreakerGuardsHTTPCache(t *testing.T) {
	hung := &hungBackend{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(hung, backends.BreakerOptions{Failures: 1, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	store := backends.New(br, backends.CacheOptions{})

	_, err := store.GetValue(t.Context(), "open-the-breaker")
	require.Error(t, err)
	require.Equal(t, backends.BreakerOpen, br.State(), "one failure opens this breaker")
	before := hung.calls.Load()

	c := New(store, Options{Logger: slog.New(slog.DiscardHandler)})
	h, runs := page(nil)
	h = c.Middleware(h)
	for i := range 5 {
		rec := do(t, h, http.MethodGet, fmt.Sprintf("/p?i=%d", i))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	assert.EqualValues(t, 5, runs.Load(), "every request served uncached")
	assert.Zero(t, hung.calls.Load()-before,
		"with the breaker open, no request should reach the hung backend (httpcache bypasses the breaker)")
	assert.NotZero(t, br.Stats().Skipped, "the skips should be counted by the breaker")
	st := c.Stats()
	assert.EqualValues(t, br.Stats().Skipped, st.Skips, "httpcache counts the calls skipped for it")
	assert.Zero(t, st.BackendErrors, "a skip is not a backend error")
	assert.Equal(t, backends.BreakerOpen, st.Breaker)
}

// TestHTTPCacheFailuresFeedTheBreaker: httpcache's own failed calls count
// towards opening the breaker, which then spares the hung backend.
func TestHTTPCacheFailuresFeedTheBreaker(t *testing.T) {
	hung := &hungBackend{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(hung, backends.BreakerOptions{Failures: 3, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	c := New(backends.New(br, backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	h, runs := page(nil)
	h = c.Middleware(h)
	for i := range 10 {
		rec := do(t, h, http.MethodGet, fmt.Sprintf("/p?i=%d", i))
		require.Equal(t, http.StatusOK, rec.Code)
	}
	assert.EqualValues(t, 10, runs.Load(), "every request served uncached")
	assert.Equal(t, backends.BreakerOpen, br.State(), "httpcache's failures opened the breaker")
	st := c.Stats()
	assert.EqualValues(t, hung.calls.Load(), st.BackendErrors, "every call that reached the backend failed and was counted")
	assert.Less(t, hung.calls.Load(), int64(10), "once open, the breaker spared the backend")
	assert.EqualValues(t, br.Stats().Skipped, st.Skips)
}
