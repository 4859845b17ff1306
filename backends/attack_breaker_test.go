package backends_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// healthySlow answers every Get after 20 ms, or earlier with the caller's
// context error: a backend in good health, a little slower than the
// budget some callers have left.
type healthySlow struct {
	backends.Backend
	calls atomic.Int64
}

func (h *healthySlow) Get(ctx context.Context, key string) ([]byte, bool, error) {
	h.calls.Add(1)
	select {
	case <-time.After(20 * time.Millisecond):
		// On a loaded machine both cases can be ready when this goroutine
		// runs again; a caller whose deadline has passed gets its error
		// either way, as from a real server's client.
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// TestAttackCallersOutOfTimeOpenTheBreaker: the breaker excludes a
// cancelled caller, and one whose context had ended before the call, but
// counts as a backend failure a caller's own deadline passing during the
// call. When something else makes pages slow (a database under load, an
// attacker's expensive query), requests reach their blocks with little of
// their deadline left; five of them in a row open the breaker of a
// healthy cache for everyone, which then renders every block uncached and
// adds to the load that made the pages slow. A caller's deadline says
// something about the caller, not the backend, unless the backend held
// the call for longer than it should ever take.
func TestAttackCallersOutOfTimeOpenTheBreaker(t *testing.T) {
	back := &healthySlow{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(back, backends.BreakerOptions{Failures: 5, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, _, err := br.Get(ctx, "k")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	_, _, err := br.Get(context.Background(), "k")
	assert.NoError(t, err, "a caller with time to spare should reach the healthy backend")
	assert.Equal(t, backends.BreakerClosed, br.State(), "callers that ran out of time opened the breaker of a healthy backend")
}

// panicky fails its first Get as a hung server does, then panics once (a
// bug in a custom Backend, or in a codec it calls), then answers.
type panicky struct {
	backends.Backend
	calls atomic.Int64
}

func (p *panicky) Get(ctx context.Context, key string) ([]byte, bool, error) {
	switch p.calls.Add(1) {
	case 1:
		return nil, false, context.DeadlineExceeded
	case 2:
		panic("backend bug")
	}
	return nil, false, nil
}

// TestAttackPanickingProbeWedgesTheBreaker: every Breaker method reports
// the outcome with done(err) after the call returns, not in a defer. When
// the half-open probe panics (and net/http, or the caller, recovers), its
// outcome is never reported: gobreaker keeps the one probe slot taken, and
// the breaker skips the backend for the life of the process.
func TestAttackPanickingProbeWedgesTheBreaker(t *testing.T) {
	back := &panicky{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(back, backends.BreakerOptions{Failures: 1, Cooldown: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	_, _, err := br.Get(ctx, "k")
	require.Error(t, err)
	require.Equal(t, backends.BreakerOpen, br.State())
	testkit.Eventually(t, "the cool-down ends", func() bool { return br.State() == backends.BreakerHalfOpen })
	func() {
		defer func() { _ = recover() }()
		_, _, _ = br.Get(ctx, "k") // the probe panics
	}()
	// The backend answers from now on; after a few cool-downs at most, a
	// call should reach it again.
	reached := false
	for stop := time.Now().Add(2 * time.Second); time.Now().Before(stop); time.Sleep(5 * time.Millisecond) {
		if _, _, err := br.Get(ctx, "k"); err == nil {
			reached = true
			break
		}
	}
	assert.True(t, reached, "after a panicking probe the breaker never lets a call through again (state %v)", br.State())
}

// hangs holds every Get until its caller's context ends, as a stopped
// server does.
type hangs struct{ backends.Backend }

func (hangs) Get(ctx context.Context, _ string) ([]byte, bool, error) {
	<-ctx.Done()
	return nil, false, ctx.Err()
}

// TestBreakerCountsCallersHeldBeyondSlowCall: a caller's deadline that
// passes while a hung backend holds the call past SlowCall still counts,
// so requests with deadlines shorter than the backend's own timeouts open
// the breaker of a hung server (issue 14).
func TestBreakerCountsCallersHeldBeyondSlowCall(t *testing.T) {
	br := backends.NewBreaker(hangs{backends.NewSimple(0)}, backends.BreakerOptions{
		Failures: 3, Cooldown: time.Hour, SlowCall: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, _, err := br.Get(ctx, "k")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Equal(t, backends.BreakerOpen, br.State())
}
