// Package prommetrics exports fragcache's metrics to Prometheus through
// prometheus/client_golang: a [Metrics] is a prometheus.Collector, a
// fragment.Observer for per-fragment series and, through [Metrics.Cache],
// the observer of a backend's operations and circuit breaker. The series
// and their labels are listed in the doc of package
// github.com/fragcache/fragcache/metrics.
//
//	m := prommetrics.New(prommetrics.Options{})
//	prometheus.MustRegister(m)
//	store = m.Cache("redis", store)
//	fc := fragment.New(store, fragment.Options{Observer: m})
//	http.Handle("GET /metrics", promhttp.Handler())
package prommetrics

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/internal/bounded"
)

// Options configure a Metrics. The zero value is usable.
type Options struct {
	// MaxFragments bounds the fragment names kept as label values; the
	// rest are counted under fragment="other". 0 means 1000.
	MaxFragments int
	// RenderBuckets are the render-time histogram's buckets, in seconds;
	// nil means prometheus.DefBuckets.
	RenderBuckets []float64
	// OpBuckets are the backend-latency histogram's buckets, in seconds;
	// nil means 100 µs to 2.5 s, which covers a local SimpleCache to a
	// remote server near its timeout.
	OpBuckets []float64
	// ConstLabels are added to every series (an app or cache name when a
	// process has several).
	ConstLabels prometheus.Labels
}

var defaultOpBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// Metrics collects fragcache's series. It is safe for concurrent use.
type Metrics struct {
	lookups      *prometheus.CounterVec
	renders      *prometheus.CounterVec
	renderErrors *prometheus.CounterVec
	renderTime   *prometheus.HistogramVec
	rendered     *prometheus.CounterVec
	served       *prometheus.CounterVec
	ops          *prometheus.CounterVec
	opErrors     *prometheus.CounterVec
	skips        *prometheus.CounterVec
	opTime       *prometheus.HistogramVec
	breakerDesc  *prometheus.Desc

	fragments *bounded.Map[*fragmentSeries]

	mu     sync.Mutex
	caches []namedCache
}

type namedCache struct {
	name  string
	cache *backends.Cache
}

// fragmentSeries are one fragment's series, looked up once per name.
type fragmentSeries struct {
	lookups    [6]prometheus.Counter // by fragment.Outcome
	renders    prometheus.Counter
	errors     prometheus.Counter
	renderTime prometheus.Observer
	rendered   prometheus.Counter
	served     prometheus.Counter
}

// New returns a Metrics; register it with a prometheus.Registerer.
func New(opts Options) *Metrics {
	if opts.RenderBuckets == nil {
		opts.RenderBuckets = prometheus.DefBuckets
	}
	if opts.OpBuckets == nil {
		opts.OpBuckets = defaultOpBuckets
	}
	cl := opts.ConstLabels
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fragcache", Name: name, Help: help, ConstLabels: cl}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "fragcache", Name: name, Help: help, Buckets: buckets, ConstLabels: cl}, labels)
	}
	m := &Metrics{
		lookups:      counter("fragment_lookups_total", "Cache block executions, by outcome (hit, stale_hit, miss, refresh, delete, uncached).", "fragment", "outcome"),
		renders:      counter("fragment_renders_total", "Cache block bodies rendered to be stored.", "fragment"),
		renderErrors: counter("fragment_render_errors_total", "Cache block bodies whose render failed (nothing was stored).", "fragment"),
		renderTime:   histogram("fragment_render_duration_seconds", "Time to render a cache block's body to be stored.", opts.RenderBuckets, "fragment"),
		rendered:     counter("fragment_rendered_bytes_total", "Bytes of cache block bodies rendered to be stored.", "fragment"),
		served:       counter("fragment_served_bytes_total", "Bytes of fragments written from the cache.", "fragment"),
		ops:          counter("backend_operations_total", "Operations on the cache backend, refused ones included.", "backend", "op"),
		opErrors:     counter("backend_errors_total", "Operations that reached the cache backend and failed.", "backend", "op"),
		skips:        counter("backend_breaker_skips_total", "Operations the open circuit breaker refused.", "backend", "op"),
		opTime:       histogram("backend_operation_duration_seconds", "Time of operations that reached the cache backend.", opts.OpBuckets, "backend", "op"),
		breakerDesc: prometheus.NewDesc("fragcache_backend_breaker_state",
			"The circuit breaker's state: 1 for the current one (closed, half_open, open), 0 for the others.",
			[]string{"backend", "state"}, cl),
	}
	m.fragments = bounded.New(opts.MaxFragments, func(name string) *fragmentSeries {
		s := &fragmentSeries{
			renders:    m.renders.WithLabelValues(name),
			errors:     m.renderErrors.WithLabelValues(name),
			renderTime: m.renderTime.WithLabelValues(name),
			rendered:   m.rendered.WithLabelValues(name),
			served:     m.served.WithLabelValues(name),
		}
		for _, o := range fragment.Outcomes() {
			s.lookups[o] = m.lookups.WithLabelValues(name, o.String())
		}
		return s
	})
	return m
}

var _ fragment.Observer = (*Metrics)(nil)
var _ prometheus.Collector = (*Metrics)(nil)

// ObserveLookup implements fragment.Observer.
func (m *Metrics) ObserveLookup(_ context.Context, b fragment.Block, o fragment.Outcome, bytes int) {
	s := m.fragments.Get(b.Name)
	if int(o) < len(s.lookups) {
		s.lookups[o].Inc()
	}
	if bytes > 0 {
		s.served.Add(float64(bytes))
	}
}

// ObserveRender implements fragment.Observer.
func (m *Metrics) ObserveRender(_ context.Context, b fragment.Block, took time.Duration, bytes int, err error) {
	s := m.fragments.Get(b.Name)
	s.renders.Inc()
	s.renderTime.Observe(took.Seconds())
	if err != nil {
		s.errors.Inc()
		return
	}
	s.rendered.Add(float64(bytes))
}

// Cache returns c observed under the backend label name: its operations
// are counted and timed, and its circuit breaker's state is reported at
// every scrape. Use the returned Cache (for fragments, memoize, httpcache
// and app code alike); c itself stays unobserved. Caches given one name
// share its series, and the breaker state reported is the first one's.
func (m *Metrics) Cache(name string, c *backends.Cache) *backends.Cache {
	ob := &opObserver{series: map[backends.Op]*opSeries{}}
	for _, op := range backends.Ops() {
		ob.series[op] = &opSeries{
			ops:    m.ops.WithLabelValues(name, string(op)),
			errors: m.opErrors.WithLabelValues(name, string(op)),
			skips:  m.skips.WithLabelValues(name, string(op)),
			time:   m.opTime.WithLabelValues(name, string(op)),
		}
	}
	m.mu.Lock()
	if !slices.ContainsFunc(m.caches, func(nc namedCache) bool { return nc.name == name }) {
		m.caches = append(m.caches, namedCache{name, c})
	}
	m.mu.Unlock()
	return backends.Observe(c, ob)
}

type opSeries struct {
	ops, errors, skips prometheus.Counter
	time               prometheus.Observer
}

// opObserver is one backend's backends.OpObserver; its map is read-only
// after Cache built it.
type opObserver struct {
	series map[backends.Op]*opSeries
}

func (ob *opObserver) ObserveOp(_ context.Context, op backends.Op, took time.Duration, err error) {
	s := ob.series[op]
	if s == nil {
		return
	}
	s.ops.Inc()
	switch {
	case err == nil:
	case errors.Is(err, backends.ErrBreakerOpen):
		s.skips.Inc()
		return // never reached the backend: its time says nothing
	default:
		s.errors.Inc()
	}
	s.time.Observe(took.Seconds())
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.breakerDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	m.mu.Lock()
	caches := append([]namedCache(nil), m.caches...)
	m.mu.Unlock()
	for _, nc := range caches {
		state := backends.BreakerClosed
		if br := nc.cache.Breaker(); br != nil {
			state = br.State()
		}
		for _, s := range []backends.BreakerState{backends.BreakerClosed, backends.BreakerHalfOpen, backends.BreakerOpen} {
			v := 0.0
			if s == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.breakerDesc, prometheus.GaugeValue, v, nc.name, BreakerStateLabel(s))
		}
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.lookups, m.renders, m.renderErrors, m.renderTime, m.rendered, m.served,
		m.ops, m.opErrors, m.skips, m.opTime}
}

// BreakerStateLabel returns the state label value of a breaker state:
// "closed", "half_open" or "open".
func BreakerStateLabel(s backends.BreakerState) string {
	switch s {
	case backends.BreakerHalfOpen:
		return "half_open"
	case backends.BreakerOpen:
		return "open"
	}
	return "closed"
}
