package otelmetrics_test

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/otelmetrics"
)

func TestInstrumentsRecordFragmentsAndBackends(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m, err := otelmetrics.New(mp, otelmetrics.Options{})
	require.NoError(t, err)

	store := m.Cache("simple", backends.New(backends.NewSimple(0), backends.CacheOptions{}))
	fc := fragment.New(store, fragment.Options{Observer: m})
	site := &fragment.Site{Path: "index.html", Line: 4, Col: 1}
	const out = "<p>hello</p>"
	body := func(w io.Writer) error { _, err := io.WriteString(w, out); return err }
	for user := range 2 {
		for range 3 {
			call := fragment.Call{Site: site, Timeout: 60, Name: "sidebar", VaryOn: []any{user}}
			require.NoError(t, fc.Render(ctx, call, io.Discard, body))
		}
	}

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, otelmetrics.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	got := map[string]metricdata.Metrics{}
	for _, mt := range rm.ScopeMetrics[0].Metrics {
		got[mt.Name] = mt
	}
	sum := func(name string, kv ...attribute.KeyValue) int64 {
		t.Helper()
		mt, ok := got[name]
		require.True(t, ok, "no %s", name)
		want := attribute.NewSet(kv...)
		switch d := mt.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&want) {
					return p.Value
				}
			}
		case metricdata.Gauge[int64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&want) {
					return p.Value
				}
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				if p.Attributes.Equals(&want) {
					return int64(p.Count)
				}
			}
		}
		t.Fatalf("no %s%v", name, kv)
		return 0
	}
	frag := attribute.String("fragment", "sidebar")
	assert.EqualValues(t, 4, sum("fragcache.fragment.lookups", frag, attribute.String("outcome", "hit")))
	assert.EqualValues(t, 2, sum("fragcache.fragment.lookups", frag, attribute.String("outcome", "miss")))
	assert.EqualValues(t, 2, sum("fragcache.fragment.renders", frag))
	assert.EqualValues(t, 2, sum("fragcache.fragment.render.duration", frag))
	assert.EqualValues(t, 2*len(out), sum("fragcache.fragment.rendered", frag))
	assert.EqualValues(t, 4*len(out), sum("fragcache.fragment.served", frag))
	be := attribute.String("backend", "simple")
	assert.EqualValues(t, 6+2, sum("fragcache.backend.operations", be, attribute.String("op", "get")))
	assert.EqualValues(t, 2, sum("fragcache.backend.operation.duration", be, attribute.String("op", "set")))
	assert.EqualValues(t, 1, sum("fragcache.backend.breaker.state", be, attribute.String("state", "closed")))
	assert.EqualValues(t, 0, sum("fragcache.backend.breaker.state", be, attribute.String("state", "open")))
	assert.Equal(t, "By", got["fragcache.fragment.rendered"].Unit)
	assert.Equal(t, "s", got["fragcache.fragment.render.duration"].Unit)
}
