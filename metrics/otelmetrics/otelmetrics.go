// Package otelmetrics records fragcache's metrics with OpenTelemetry
// metric instruments (go.opentelemetry.io/otel/metric), for apps that
// export through an OpenTelemetry SDK. A [Metrics] is a fragment.Observer
// and, through [Metrics.Cache], the observer of a backend's operations and
// circuit breaker. The series are those listed in the doc of package
// github.com/fragcache/fragcache/metrics, with OpenTelemetry's dotted names
// and units, which its Prometheus exporter turns into those names:
//
//	fragcache.fragment.lookups             {lookup}    fragment, outcome
//	fragcache.fragment.renders             {render}    fragment
//	fragcache.fragment.render_errors       {error}     fragment
//	fragcache.fragment.render.duration     s           fragment (histogram)
//	fragcache.fragment.rendered            By          fragment
//	fragcache.fragment.served              By          fragment
//	fragcache.backend.operations           {operation} backend, op
//	fragcache.backend.errors               {error}     backend, op
//	fragcache.backend.breaker_skips        {skip}      backend, op
//	fragcache.backend.operation.duration   s           backend, op (histogram)
//	fragcache.backend.breaker.state                    backend, state (observable gauge)
//
// Attribute sets are built once per fragment name and backend operation,
// so recording allocates nothing.
package otelmetrics

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/internal/bounded"
)

// ScopeName is the instrumentation scope of the Meter New takes from its
// MeterProvider.
const ScopeName = "github.com/fragcache/fragcache/metrics/otelmetrics"

// Options configure a Metrics. The zero value is usable.
type Options struct {
	// MaxFragments bounds the fragment names kept as attribute values;
	// the rest are recorded under fragment="other". 0 means 1000.
	MaxFragments int
	// RenderBuckets and OpBuckets are explicit bucket boundaries, in
	// seconds, for the two histograms; nil leaves them to the SDK's
	// defaults and views.
	RenderBuckets, OpBuckets []float64
}

// Metrics records fragcache's instruments. It is safe for concurrent use.
type Metrics struct {
	lookups, renders, renderErrors, rendered, served metric.Int64Counter
	renderTime                                       metric.Float64Histogram
	ops, opErrors, skips                             metric.Int64Counter
	opTime                                           metric.Float64Histogram

	fragments *bounded.Map[*fragmentAttrs]

	mu     sync.Mutex
	caches []namedCache
}

type namedCache struct {
	name  string
	cache *backends.Cache
}

// fragmentAttrs are one fragment's precomputed attribute options.
type fragmentAttrs struct {
	byOutcome [6]metric.AddOption // fragment and outcome
	add       metric.AddOption    // fragment
	record    metric.RecordOption // fragment
}

// New creates the instruments on mp's Meter for ScopeName (use
// otel.GetMeterProvider() for the global one).
func New(mp metric.MeterProvider, opts Options) (*Metrics, error) {
	meter := mp.Meter(ScopeName)
	m := &Metrics{}
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string, buckets []float64) metric.Float64Histogram {
		o := []metric.Float64HistogramOption{metric.WithUnit("s"), metric.WithDescription(desc)}
		if buckets != nil {
			o = append(o, metric.WithExplicitBucketBoundaries(buckets...))
		}
		h, err := meter.Float64Histogram(name, o...)
		errs = append(errs, err)
		return h
	}
	m.lookups = counter("fragcache.fragment.lookups", "{lookup}", "Cache block executions, by outcome (hit, stale_hit, miss, refresh, delete, uncached).")
	m.renders = counter("fragcache.fragment.renders", "{render}", "Cache block bodies rendered to be stored.")
	m.renderErrors = counter("fragcache.fragment.render_errors", "{error}", "Cache block bodies whose render failed (nothing was stored).")
	m.renderTime = histogram("fragcache.fragment.render.duration", "Time to render a cache block's body to be stored.", opts.RenderBuckets)
	m.rendered = counter("fragcache.fragment.rendered", "By", "Bytes of cache block bodies rendered to be stored.")
	m.served = counter("fragcache.fragment.served", "By", "Bytes of fragments written from the cache.")
	m.ops = counter("fragcache.backend.operations", "{operation}", "Operations on the cache backend, refused ones included.")
	m.opErrors = counter("fragcache.backend.errors", "{error}", "Operations that reached the cache backend and failed.")
	m.skips = counter("fragcache.backend.breaker_skips", "{skip}", "Operations the open circuit breaker refused.")
	m.opTime = histogram("fragcache.backend.operation.duration", "Time of operations that reached the cache backend.", opts.OpBuckets)
	_, err := meter.Int64ObservableGauge("fragcache.backend.breaker.state",
		metric.WithDescription("The circuit breaker's state: 1 for the current one (closed, half_open, open), 0 for the others."),
		metric.WithInt64Callback(m.observeBreakers))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.fragments = bounded.New(opts.MaxFragments, func(name string) *fragmentAttrs {
		f := attribute.String("fragment", name)
		a := &fragmentAttrs{
			add:    metric.WithAttributeSet(attribute.NewSet(f)),
			record: metric.WithAttributeSet(attribute.NewSet(f)),
		}
		for _, o := range fragment.Outcomes() {
			a.byOutcome[o] = metric.WithAttributeSet(attribute.NewSet(f, attribute.String("outcome", o.String())))
		}
		return a
	})
	return m, nil
}

var _ fragment.Observer = (*Metrics)(nil)

// ObserveLookup implements fragment.Observer.
func (m *Metrics) ObserveLookup(ctx context.Context, b fragment.Block, o fragment.Outcome, bytes int) {
	a := m.fragments.Get(b.Name)
	if int(o) < len(a.byOutcome) {
		m.lookups.Add(ctx, 1, a.byOutcome[o])
	}
	if bytes > 0 {
		m.served.Add(ctx, int64(bytes), a.add)
	}
}

// ObserveRender implements fragment.Observer.
func (m *Metrics) ObserveRender(ctx context.Context, b fragment.Block, took time.Duration, bytes int, err error) {
	a := m.fragments.Get(b.Name)
	m.renders.Add(ctx, 1, a.add)
	m.renderTime.Record(ctx, took.Seconds(), a.record)
	if err != nil {
		m.renderErrors.Add(ctx, 1, a.add)
		return
	}
	m.rendered.Add(ctx, int64(bytes), a.add)
}

// Cache returns c observed under the backend attribute name: its
// operations are counted and timed, and its circuit breaker's state is
// observed at every collection. Use the returned Cache; c itself stays
// unobserved. Caches given one name share its series, and the breaker
// state reported is the first one's.
func (m *Metrics) Cache(name string, c *backends.Cache) *backends.Cache {
	ob := &opObserver{m: m, attrs: map[backends.Op]opAttrs{}}
	for _, op := range backends.Ops() {
		set := attribute.NewSet(attribute.String("backend", name), attribute.String("op", string(op)))
		ob.attrs[op] = opAttrs{add: metric.WithAttributeSet(set), record: metric.WithAttributeSet(set)}
	}
	m.mu.Lock()
	if !slices.ContainsFunc(m.caches, func(nc namedCache) bool { return nc.name == name }) {
		m.caches = append(m.caches, namedCache{name, c})
	}
	m.mu.Unlock()
	return backends.Observe(c, ob)
}

type opAttrs struct {
	add    metric.AddOption
	record metric.RecordOption
}

// opObserver is one backend's backends.OpObserver; attrs is read-only
// once built.
type opObserver struct {
	m     *Metrics
	attrs map[backends.Op]opAttrs
}

func (ob *opObserver) ObserveOp(ctx context.Context, op backends.Op, took time.Duration, err error) {
	a, ok := ob.attrs[op]
	if !ok {
		return
	}
	ob.m.ops.Add(ctx, 1, a.add)
	switch {
	case err == nil:
	case errors.Is(err, backends.ErrBreakerOpen):
		ob.m.skips.Add(ctx, 1, a.add)
		return
	default:
		ob.m.opErrors.Add(ctx, 1, a.add)
	}
	ob.m.opTime.Record(ctx, took.Seconds(), a.record)
}

func (m *Metrics) observeBreakers(_ context.Context, o metric.Int64Observer) error {
	m.mu.Lock()
	caches := append([]namedCache(nil), m.caches...)
	m.mu.Unlock()
	for _, nc := range caches {
		state := backends.BreakerClosed
		if br := nc.cache.Breaker(); br != nil {
			state = br.State()
		}
		for _, s := range []backends.BreakerState{backends.BreakerClosed, backends.BreakerHalfOpen, backends.BreakerOpen} {
			v := int64(0)
			if s == state {
				v = 1
			}
			o.Observe(v, metric.WithAttributes(attribute.String("backend", nc.name), attribute.String("state", stateLabel(s))))
		}
	}
	return nil
}

// stateLabel is a breaker state's attribute value, as package prommetrics
// spells it.
func stateLabel(s backends.BreakerState) string {
	switch s {
	case backends.BreakerHalfOpen:
		return "half_open"
	case backends.BreakerOpen:
		return "open"
	}
	return "closed"
}
