package prommetrics_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/metrics/prommetrics"
)

func body(w io.Writer) error { _, err := io.WriteString(w, "<p>hello</p>"); return err }

func TestFragmentAndBackendSeries(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := prommetrics.New(prommetrics.Options{})
	require.NoError(t, reg.Register(m))

	store := m.Cache("simple", backends.New(backends.NewSimple(0), backends.CacheOptions{}))
	fc := fragment.New(store, fragment.Options{Observer: m})
	site := &fragment.Site{Path: "index.html", Line: 4, Col: 1}
	for user := range 3 { // three vary_on values, one series
		for range 2 {
			call := fragment.Call{Site: site, Timeout: 60, Name: "sidebar", VaryOn: []any{user}}
			require.NoError(t, fc.Render(ctx, call, io.Discard, body))
		}
	}
	require.NoError(t, fc.Render(ctx, fragment.Call{Site: site, Timeout: 60}, io.Discard, body))

	assert.Equal(t, 3.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_lookups_total", "fragment", "sidebar", "outcome", "hit")))
	assert.Equal(t, 3.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_lookups_total", "fragment", "sidebar", "outcome", "miss")))
	assert.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_lookups_total", "fragment", "index.html:4", "outcome", "miss")))
	assert.Equal(t, 3.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_renders_total", "fragment", "sidebar")))
	n := float64(len("<p>hello</p>"))
	assert.Equal(t, 3*n, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_rendered_bytes_total", "fragment", "sidebar")))
	assert.Equal(t, 3*n, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_served_bytes_total", "fragment", "sidebar")))
	// Every lookup is a get, and a miss looks once more before it renders;
	// every render is a set.
	const lookups, misses = 7, 4
	assert.Equal(t, float64(lookups+misses), testutil.ToFloat64(mustCounter(t, reg, "fragcache_backend_operations_total", "backend", "simple", "op", "get")))
	assert.Equal(t, 4.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_backend_operations_total", "backend", "simple", "op", "set")))
	assert.Equal(t, 1.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_backend_breaker_state", "backend", "simple", "state", "closed")))
	assert.Equal(t, 0.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_backend_breaker_state", "backend", "simple", "state", "open")))

	problems, err := testutil.CollectAndLint(m)
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint finds nothing wrong with the names")
}

// unreachable fails every call as an unreachable server does, which is
// what a circuit breaker counts.
type unreachable struct{ testkit.Failing }

func (unreachable) Get(context.Context, string) ([]byte, bool, error) {
	return nil, false, &net.OpError{Op: "dial", Net: "tcp", Err: io.ErrUnexpectedEOF}
}

func TestBackendErrorsSkipsAndBreakerState(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := prommetrics.New(prommetrics.Options{})
	require.NoError(t, reg.Register(m))
	br := backends.NewBreaker(unreachable{}, backends.BreakerOptions{Failures: 2, Cooldown: time.Hour, Name: "down"})
	store := m.Cache("down", backends.New(br, backends.CacheOptions{}))
	fc := fragment.New(store, fragment.Options{Observer: m, Logger: slog.New(slog.DiscardHandler)})
	site := &fragment.Site{Path: "index.html", Line: 4, Col: 1}
	for range 5 {
		require.NoError(t, fc.Render(ctx, fragment.Call{Site: site, Timeout: 60}, io.Discard, body))
	}
	get := func(name string, lv ...string) float64 { return testutil.ToFloat64(mustCounter(t, reg, name, lv...)) }
	assert.Equal(t, 5.0, get("fragcache_backend_operations_total", "backend", "down", "op", "get"))
	assert.Equal(t, 2.0, get("fragcache_backend_errors_total", "backend", "down", "op", "get"), "two failures open the breaker")
	assert.Equal(t, 3.0, get("fragcache_backend_breaker_skips_total", "backend", "down", "op", "get"))
	assert.Equal(t, 1.0, get("fragcache_backend_breaker_state", "backend", "down", "state", "open"))
	assert.Equal(t, 0.0, get("fragcache_backend_breaker_state", "backend", "down", "state", "closed"))
	assert.Equal(t, 5.0, get("fragcache_fragment_lookups_total", "fragment", "index.html:4", "outcome", "uncached"))
}

func TestFragmentNamesAreBounded(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := prommetrics.New(prommetrics.Options{MaxFragments: 2})
	require.NoError(t, reg.Register(m))
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{Observer: m})
	site := &fragment.Site{Path: "index.html", Line: 4, Col: 1}
	for i := range 10 {
		call := fragment.Call{Site: site, Timeout: 60, Name: i}
		require.NoError(t, fc.Render(ctx, call, io.Discard, body))
	}
	assert.Equal(t, 8.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_fragment_renders_total", "fragment", "other")))
	out, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range out {
		if mf.GetName() == "fragcache_fragment_renders_total" {
			assert.Len(t, mf.GetMetric(), 3, "2 names and other")
		}
	}
}

// mustCounter finds the one sample of name with the label values lv
// (name, value pairs) in reg, as a Collector testutil.ToFloat64 reads.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string, lv ...string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	want := map[string]string{}
	for i := 0; i+1 < len(lv); i += 2 {
		want[lv[i]] = lv[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("no %s%v in %s", name, lv, strings.Join(names(mfs), ", "))
	return nil
}

func names[T interface{ GetName() string }](mfs []T) []string {
	var out []string
	for _, mf := range mfs {
		out = append(out, mf.GetName())
	}
	return out
}

// BenchmarkRenderHit compares a fragment hit without metrics and with this
// package observing both the fragment and the backend.
func BenchmarkRenderHit(b *testing.B) {
	site := &fragment.Site{Path: "bench.html", Line: 3, Col: 1}
	for _, observed := range []bool{false, true} {
		name := "none"
		if observed {
			name = "prometheus"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
			var opts fragment.Options
			if observed {
				m := prommetrics.New(prommetrics.Options{})
				store = m.Cache("simple", store)
				opts.Observer = m
			}
			fc := fragment.New(store, opts)
			call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar"}
			require.NoError(b, fc.Render(ctx, call, io.Discard, body))
			b.ReportAllocs()
			for b.Loop() {
				if err := fc.Render(ctx, call, io.Discard, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCachesSharingANameShareTheirSeries(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := prommetrics.New(prommetrics.Options{})
	require.NoError(t, reg.Register(m))
	base := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	a, b := m.Cache("shared", base), m.Cache("shared", base)
	require.NoError(t, a.Set(ctx, "k", "v"))
	require.NoError(t, b.Set(ctx, "k", "v"))
	_, err := reg.Gather()
	require.NoError(t, err, "one breaker series per name, not two")
	assert.Equal(t, 2.0, testutil.ToFloat64(mustCounter(t, reg, "fragcache_backend_operations_total", "backend", "shared", "op", "set")))
}
