package backends_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// flaky is a backend whose Get fails with err while err is set, counting
// the calls that reach it.
type flaky struct {
	backends.Backend
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *flaky) Get(ctx context.Context, key string) ([]byte, bool, error) {
	f.calls.Add(1)
	if e := f.err.Load(); e != nil {
		return nil, false, *e
	}
	return f.Backend.Get(ctx, key)
}

func (f *flaky) fail(err error) { f.err.Store(&err) }
func (f *flaky) heal()          { f.err.Store(nil) }

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: syscall.ECONNREFUSED.Error()}}

func TestBreakerOpensSkipsProbesAndCloses(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	f := &flaky{Backend: backends.NewSimple(0)}
	br := backends.NewBreaker(f, backends.BreakerOptions{Failures: 3, Cooldown: 50 * time.Millisecond, Name: "test",
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	f.fail(errRefused)
	for i := range 3 {
		_, _, err := br.Get(ctx, "k")
		require.ErrorIs(t, err, errRefused, "failure %d reaches the caller", i)
	}
	assert.Equal(t, backends.BreakerOpen, br.State(), "3 consecutive failures open it")
	for range 10 {
		_, _, err := br.Get(ctx, "k")
		require.ErrorIs(t, err, backends.ErrBreakerOpen)
	}
	assert.EqualValues(t, 3, f.calls.Load(), "an open breaker skips the backend")

	testkit.Eventually(t, "the cool-down ends", func() bool { return br.State() == backends.BreakerHalfOpen })
	_, _, err := br.Get(ctx, "k")
	require.ErrorIs(t, err, errRefused, "the probe reaches the backend")
	assert.Equal(t, backends.BreakerOpen, br.State(), "a failed probe opens it again")

	f.heal()
	testkit.Eventually(t, "the cool-down ends", func() bool { return br.State() == backends.BreakerHalfOpen })
	_, _, err = br.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, backends.BreakerClosed, br.State(), "a successful probe closes it")
	st := br.Stats()
	assert.EqualValues(t, 2, st.Opens)
	assert.EqualValues(t, 10, st.Skipped)

	// One line per transition: open, half-open, open, half-open, closed.
	var got []string
	for _, l := range testkit.LogLines(t, &logs) {
		assert.Equal(t, "test", l["backend"])
		got = append(got, l["to"].(string))
	}
	assert.Equal(t, []string{"open", "half-open", "open", "half-open", "closed"}, got)
}

// Only failures that say the backend is unavailable count: answers, a
// cancelled caller and a caller whose context had ended do not.
func TestBreakerCountsOnlyBackendFailures(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		ctx   func() context.Context
		opens bool
	}{
		{"connection refused", errRefused, context.Background, true},
		{"timeout", fmt.Errorf("redis GET: %w", &net.OpError{Op: "read", Err: timeoutErr{}}), context.Background, true},
		{"deadline passed during the call", context.DeadlineExceeded, context.Background, true},
		{"value too large", backends.ErrValueTooLarge, context.Background, false},
		{"wrong password", backends.ErrAuth, context.Background, false},
		{"not an integer", backends.ErrNotInteger, context.Background, false},
		{"some other answer", errors.New("ERR wrong number of arguments"), context.Background, false},
		{"cancelled caller", context.Canceled, context.Background, false},
		{"context already ended", errRefused, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flaky{Backend: backends.NewSimple(0)}
			f.fail(tt.err)
			br := backends.NewBreaker(f, backends.BreakerOptions{Failures: 2, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
			for range 5 {
				_, _, _ = br.Get(tt.ctx(), "k")
			}
			want := backends.BreakerClosed
			if tt.opens {
				want = backends.BreakerOpen
			}
			assert.Equal(t, want, br.State())
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestBreakerStateTextRoundTrips(t *testing.T) {
	for _, st := range []backends.BreakerState{backends.BreakerClosed, backends.BreakerHalfOpen, backends.BreakerOpen} {
		b, err := st.MarshalText()
		require.NoError(t, err)
		var got backends.BreakerState
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, st, got)
	}
	var s backends.BreakerState
	assert.Error(t, s.UnmarshalText([]byte("ajar")))
}
