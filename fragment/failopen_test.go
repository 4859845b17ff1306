package fragment

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testkit"

	"github.com/fragcache/fragcache/backends"
)

func TestBackendFailureRendersUncached(t *testing.T) {
	tests := []struct {
		name    string
		backend func() backends.Backend
		timeout any
		want    Stats
	}{
		{
			name:    "get fails",
			backend: func() backends.Backend { return brokenBackend{} },
			timeout: 60,
			want:    Stats{BackendErrors: 1},
		},
		{
			name:    "set fails",
			backend: func() backends.Backend { s := newSpy(); s.setErr = errBroken; return s },
			timeout: 60,
			want:    Stats{Misses: 1, Renders: 1, BackendErrors: 1},
		},
		{
			name:    "delete fails",
			backend: func() backends.Backend { return brokenBackend{} },
			timeout: "del",
			want:    Stats{DelBlocks: 1, BackendErrors: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := New(backends.New(tt.backend(), backends.CacheOptions{}), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			body, calls := countingBody("<p>uncached</p>")
			call := Call{Site: testSite(), Timeout: tt.timeout, Name: "n"}

			out, err := render(c, call, body)
			require.NoError(t, err, "backend errors fail open")
			assert.Equal(t, "<p>uncached</p>", out)
			assert.EqualValues(t, 1, calls.Load())
			assert.Equal(t, tt.want, c.Stats())

			lines := testkit.LogLines(t, &logs)
			require.Len(t, lines, 1)
			assert.Equal(t, "WARN", lines[0]["level"])
			assert.Equal(t, testSite().String(), lines[0]["site"])
			assert.Contains(t, lines[0]["err"], errBroken.Error())
		})
	}
}

func TestBackendFailuresAreCountedAndLogRateLimited(t *testing.T) {
	const failures = 10
	var logs bytes.Buffer
	c := New(backends.New(brokenBackend{}, backends.CacheOptions{}), Options{
		Logger:      slog.New(slog.NewJSONHandler(&logs, nil)),
		LogInterval: time.Hour,
	})
	body, calls := countingBody("x")
	call := Call{Site: testSite(), Name: "n"}
	for range failures {
		out, err := render(c, call, body)
		require.NoError(t, err)
		require.Equal(t, "x", out)
	}
	assert.EqualValues(t, failures, calls.Load())
	assert.Equal(t, Stats{BackendErrors: failures}, c.Stats())
	lines := testkit.LogLines(t, &logs)
	require.Len(t, lines, 1, "failures within LogInterval are logged once")
	assert.EqualValues(t, 0, lines[0]["suppressed_since_last_report"])

	// Each report counts the failures not logged since the one before.
	fail := func() {
		t.Helper()
		_, err := render(c, call, body)
		require.NoError(t, err)
	}
	passLogInterval(c)
	fail()
	lines = testkit.LogLines(t, &logs)
	require.Len(t, lines, 2, "the first failure after LogInterval is logged")
	assert.EqualValues(t, failures-1, lines[1]["suppressed_since_last_report"])

	fail()
	fail()
	passLogInterval(c)
	fail()
	lines = testkit.LogLines(t, &logs)
	require.Len(t, lines, 3)
	assert.EqualValues(t, 2, lines[2]["suppressed_since_last_report"])
	assert.Equal(t, uint64(failures+4), c.Stats().BackendErrors)
}

// passLogInterval makes the last backend error report older than the
// cache's LogInterval, instead of waiting that long.
func passLogInterval(c *Cache) { c.failures.PassInterval() }

func TestLogIntervalDefaultsToTenSeconds(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	assert.Equal(t, 10*time.Second, c.failures.Interval())
	assert.Same(t, slog.Default(), c.opts.Logger)
}

func TestStrictReturnsBackendErrors(t *testing.T) {
	tests := []struct {
		name      string
		backend   func() backends.Backend
		timeout   any
		bodyCalls int64
		want      Stats
	}{
		{
			name:    "get fails",
			backend: func() backends.Backend { return brokenBackend{} },
			want:    Stats{BackendErrors: 1},
		},
		{
			name:      "set fails",
			backend:   func() backends.Backend { s := newSpy(); s.setErr = errBroken; return s },
			bodyCalls: 1,
			want:      Stats{Misses: 1, Renders: 1, BackendErrors: 1},
		},
		{
			name:    "delete fails",
			backend: func() backends.Backend { return brokenBackend{} },
			timeout: "del",
			want:    Stats{DelBlocks: 1, BackendErrors: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			site := testSite()
			c := New(backends.New(tt.backend(), backends.CacheOptions{}), Options{
				Strict: true,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			body, calls := countingBody("x")
			out, err := render(c, Call{Site: site, Timeout: tt.timeout, Name: "n"}, body)
			require.ErrorIs(t, err, errBroken)
			var se *SiteError
			require.ErrorAs(t, err, &se)
			assert.Same(t, site, se.Site)
			assert.True(t, strings.HasPrefix(err.Error(), site.String()+":"), err.Error())
			assert.Empty(t, out, "a strict failure writes nothing")
			assert.Equal(t, tt.bodyCalls, calls.Load())
			assert.Equal(t, tt.want, c.Stats())
			assert.Empty(t, logs.String(), "returned errors are not also logged")
		})
	}
}

// An outage leaves nothing behind: once the backend works again, renders
// store and hit as usual.
func TestRenderStoresAgainAfterBackendRecovers(t *testing.T) {
	ctx := context.Background()
	spy := newSpy()
	spy.setErr = errBroken
	c := New(backends.New(spy, backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	body, calls := countingBody("x")
	call := Call{Site: testSite(), Name: "n"}
	_, err := render(c, call, body)
	require.NoError(t, err)

	spy.setErr = nil
	for range 2 {
		_, err = render(c, call, body)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, calls.Load(), "one render during the outage, one after, then a hit")
	has, err := c.Store().Has(ctx, c.Key("n"))
	require.NoError(t, err)
	assert.True(t, has)
}

// A fragment that takes longer to render than its request's deadline is
// still stored (the store runs detached from the request's cancellation),
// and the next render is a hit.
func TestSlowRenderUnderADeadlineIsStored(t *testing.T) {
	testkit.ForEachCache(t, "slowstore", func(t *testing.T, open testkit.NewCache) {
		store := open(t)
		c := New(backends.New(ctxBackend{store.Backend()}, backends.CacheOptions{KeyPrefix: store.KeyPrefix()}), Options{})
		call := Call{Site: testSite(), Timeout: 60, Name: "slow"}
		body, calls := countingBody("slow fragment")
		for i := range 3 {
			// A deadline generous enough for a loaded machine's lookups:
			// a lookup that missed it would render fail-open a second time.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var buf bytes.Buffer
			err := c.Render(ctx, call, &buf, func(w io.Writer) error {
				<-ctx.Done() // the body outlives the request's deadline by 50 ms
				time.Sleep(50 * time.Millisecond)
				return body(w)
			})
			cancel()
			require.NoError(t, err, "render %d", i)
			assert.Equal(t, "slow fragment", buf.String())
			if i == 0 {
				testkit.Eventually(t, "the fragment is stored", func() bool {
					ok, err := store.Has(context.Background(), c.Key("slow"))
					return err == nil && ok
				})
			}
		}
		assert.EqualValues(t, 1, calls.Load(), "rendered once, then served as a hit")
		st := c.Stats()
		assert.EqualValues(t, 2, st.Hits)
		assert.Zero(t, st.BackendErrors)
	})
}

// ctxBackend fails every call whose context has ended, as network
// backends do; SimpleCache alone would not show a store on a dead context.
type ctxBackend struct{ backends.Backend }

func (b ctxBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	return b.Backend.Get(ctx, key)
}

func (b ctxBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.Backend.Set(ctx, key, value, ttl)
}

// Over a backend guarded by a circuit breaker, blocks render uncached
// while it is open; Stats shows the state and counts the skipped calls,
// which are not logged one by one.
func TestOpenBreakerIsReportedAndNotLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	store := backends.New(backends.NewBreaker(refusingBackend{}, backends.BreakerOptions{Failures: 2, Cooldown: time.Hour, Logger: logger}), backends.CacheOptions{})
	c := New(store, Options{Logger: logger, LogInterval: time.Nanosecond})
	body, calls := countingBody("uncached")
	for i := range 10 {
		out, err := render(c, Call{Site: testSite(), Timeout: 60, Name: "b"}, body)
		require.NoError(t, err)
		assert.Equal(t, "uncached", out, "render %d", i)
	}
	assert.EqualValues(t, 10, calls.Load())
	st := c.Stats()
	assert.Equal(t, backends.BreakerOpen, st.Breaker)
	assert.EqualValues(t, 2, st.BackendErrors, "the failures that opened the breaker")
	assert.EqualValues(t, 8, st.Skips, "the lookups skipped while it was open")
	var breakerLines, errorLines int
	for _, l := range testkit.LogLines(t, &logs) {
		if l["to"] == "open" {
			breakerLines++
		} else {
			errorLines++
		}
	}
	assert.Equal(t, 1, breakerLines, "the breaker logs its opening once")
	assert.Equal(t, 2, errorLines, "only the real failures are logged")
}

// refusingBackend fails every Get and Set as a server refusing connections
// does, which is what a circuit breaker counts.
type refusingBackend struct{ brokenBackend }

var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}

func (refusingBackend) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, errRefused
}

func (refusingBackend) Set(context.Context, string, []byte, time.Duration) error { return errRefused }
