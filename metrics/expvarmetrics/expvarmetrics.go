// Package expvarmetrics publishes fragcache's metrics through the standard
// library's expvar, for apps that serve /debug/vars rather than run a
// metrics system. A [Metrics] is a fragment.Observer and, through
// [Metrics.Cache], the observer of a backend's operations; [Metrics.Var]
// is one expvar.Var whose JSON holds the series listed in the doc of
// package github.com/fragcache/fragcache/metrics, nested by label:
//
//	{"fragments": {"sidebar": {"lookups": {"hit": 3, "miss": 1, …}, "renders": 1,
//	  "render_errors": 0, "render_duration_seconds": {"count": 1, "sum": 0.04,
//	  "buckets": {"0.005": 0, …, "+Inf": 1}}, "rendered_bytes": 120, "served_bytes": 360}},
//	 "backends": {"redis": {"breaker_state": "closed", "ops": {"get": {"operations": 4,
//	  "errors": 0, "breaker_skips": 0, "duration_seconds": {…}}, …}}}}
//
// Histogram buckets are cumulative, as in Prometheus. Counters are atomics;
// nothing is locked on the render path.
package expvarmetrics

import (
	"context"
	"errors"
	"expvar"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/internal/bounded"
)

// Options configure a Metrics. The zero value is usable.
type Options struct {
	// MaxFragments bounds the fragment names kept; the rest are counted
	// under "other". 0 means 1000.
	MaxFragments int
	// RenderBuckets and OpBuckets are the upper bounds, in seconds, of the
	// render-time and backend-latency histograms; nil means the defaults
	// of package prommetrics.
	RenderBuckets, OpBuckets []float64
}

var (
	defaultRenderBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	defaultOpBuckets     = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

// Metrics counts fragcache's series for expvar. It is safe for concurrent
// use.
type Metrics struct {
	opts      Options
	fragments *bounded.Map[*fragmentStats]

	mu       sync.Mutex
	backends []*backendStats
}

// New returns a Metrics; publish it with [Metrics.Publish] or
// expvar.Publish(name, m.Var()).
func New(opts Options) *Metrics {
	if opts.RenderBuckets == nil {
		opts.RenderBuckets = defaultRenderBuckets
	}
	if opts.OpBuckets == nil {
		opts.OpBuckets = defaultOpBuckets
	}
	m := &Metrics{opts: opts}
	m.fragments = bounded.New(opts.MaxFragments, func(string) *fragmentStats {
		return &fragmentStats{renderTime: newHistogram(opts.RenderBuckets)}
	})
	return m
}

var _ fragment.Observer = (*Metrics)(nil)

type fragmentStats struct {
	lookups               [6]atomic.Uint64 // by fragment.Outcome
	renders, renderErrors atomic.Uint64
	renderTime            *histogram
	renderedBytes, served atomic.Uint64
}

// ObserveLookup implements fragment.Observer.
func (m *Metrics) ObserveLookup(_ context.Context, b fragment.Block, o fragment.Outcome, bytes int) {
	s := m.fragments.Get(b.Name)
	if int(o) < len(s.lookups) {
		s.lookups[o].Add(1)
	}
	if bytes > 0 {
		s.served.Add(uint64(bytes))
	}
}

// ObserveRender implements fragment.Observer.
func (m *Metrics) ObserveRender(_ context.Context, b fragment.Block, took time.Duration, bytes int, err error) {
	s := m.fragments.Get(b.Name)
	s.renders.Add(1)
	s.renderTime.observe(took)
	if err != nil {
		s.renderErrors.Add(1)
		return
	}
	s.renderedBytes.Add(uint64(max(bytes, 0)))
}

type backendStats struct {
	name  string
	cache *backends.Cache
	ops   map[backends.Op]*opStats // read-only once built
}

type opStats struct {
	ops, errors, skips atomic.Uint64
	time               *histogram
}

// ObserveOp implements backends.OpObserver.
func (b *backendStats) ObserveOp(_ context.Context, op backends.Op, took time.Duration, err error) {
	s := b.ops[op]
	if s == nil {
		return
	}
	s.ops.Add(1)
	switch {
	case err == nil:
	case errors.Is(err, backends.ErrBreakerOpen):
		s.skips.Add(1)
		return
	default:
		s.errors.Add(1)
	}
	s.time.observe(took)
}

// Cache returns c observed under the backend name: its operations are
// counted and timed, and its circuit breaker's state is read whenever the
// Var is. Use the returned Cache; c itself stays unobserved. Caches given
// one name share its series, and the breaker state reported is the first
// one's.
func (m *Metrics) Cache(name string, c *backends.Cache) *backends.Cache {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range m.backends {
		if b.name == name {
			return backends.Observe(c, b)
		}
	}
	b := &backendStats{name: name, cache: c, ops: map[backends.Op]*opStats{}}
	for _, op := range backends.Ops() {
		b.ops[op] = &opStats{time: newHistogram(m.opts.OpBuckets)}
	}
	m.backends = append(m.backends, b)
	return backends.Observe(c, b)
}

// Var returns the expvar.Var whose value is a snapshot of every series.
func (m *Metrics) Var() expvar.Var { return expvar.Func(func() any { return m.Snapshot() }) }

// Publish publishes the Var under name (expvar.Publish panics if name is
// taken, as it does for any Var).
func (m *Metrics) Publish(name string) { expvar.Publish(name, m.Var()) }

// Snapshot returns the current values as the Var's JSON shows them.
func (m *Metrics) Snapshot() map[string]any {
	frags := map[string]any{}
	m.fragments.Range(func(name string, s *fragmentStats) {
		lookups := map[string]uint64{}
		for _, o := range fragment.Outcomes() {
			lookups[o.String()] = s.lookups[o].Load()
		}
		frags[name] = map[string]any{
			"lookups":                 lookups,
			"renders":                 s.renders.Load(),
			"render_errors":           s.renderErrors.Load(),
			"render_duration_seconds": s.renderTime.snapshot(),
			"rendered_bytes":          s.renderedBytes.Load(),
			"served_bytes":            s.served.Load(),
		}
	})
	m.mu.Lock()
	bs := append([]*backendStats(nil), m.backends...)
	m.mu.Unlock()
	backs := map[string]any{}
	for _, b := range bs {
		state := backends.BreakerClosed
		if br := b.cache.Breaker(); br != nil {
			state = br.State()
		}
		ops := map[string]any{}
		for op, s := range b.ops {
			ops[string(op)] = map[string]any{
				"operations":       s.ops.Load(),
				"errors":           s.errors.Load(),
				"breaker_skips":    s.skips.Load(),
				"duration_seconds": s.time.snapshot(),
			}
		}
		backs[b.name] = map[string]any{"breaker_state": state.String(), "ops": ops}
	}
	return map[string]any{"fragments": frags, "backends": backs}
}

// histogram counts durations into fixed buckets with atomics.
type histogram struct {
	bounds []float64       // upper bounds in seconds, ascending
	counts []atomic.Uint64 // per bucket, the last one +Inf; not cumulative
	sumNs  atomic.Int64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.bounds) && s > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

func (h *histogram) snapshot() map[string]any {
	buckets := make(map[string]uint64, len(h.counts))
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i], 'g', -1, 64)
		}
		buckets[le] = cum
	}
	sum := float64(h.sumNs.Load()) / float64(time.Second)
	return map[string]any{"count": cum, "sum": sum, "buckets": buckets}
}
