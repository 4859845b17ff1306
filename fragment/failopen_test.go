package fragment

import (
	"bytes"
	"context"
	"log/slog"
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
			want:    Stats{Deletes: 1, BackendErrors: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := New(backends.New(tt.backend(), backends.Options{}), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			body, calls := countingBody("<p>uncached</p>")
			call := Call{Site: testSite(), Timeout: tt.timeout, HasName: true, Name: "n"}

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
	c := New(backends.New(brokenBackend{}, backends.Options{}), Options{
		Logger:      slog.New(slog.NewJSONHandler(&logs, nil)),
		LogInterval: time.Hour,
	})
	body, calls := countingBody("x")
	call := Call{Site: testSite(), HasName: true, Name: "n"}
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
func passLogInterval(c *Cache) {
	c.logMu.Lock()
	c.lastLog = c.lastLog.Add(-c.opts.LogInterval)
	c.logMu.Unlock()
}

func TestLogIntervalDefaultsToTenSeconds(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.Options{}), Options{})
	assert.Equal(t, 10*time.Second, c.opts.LogInterval)
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
			want:    Stats{Deletes: 1, BackendErrors: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			site := testSite()
			c := New(backends.New(tt.backend(), backends.Options{}), Options{
				Strict: true,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			body, calls := countingBody("x")
			out, err := render(c, Call{Site: site, Timeout: tt.timeout, HasName: true, Name: "n"}, body)
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
	c := New(backends.New(spy, backends.Options{}), Options{Logger: slog.New(slog.DiscardHandler)})
	body, calls := countingBody("x")
	call := Call{Site: testSite(), HasName: true, Name: "n"}
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
