package expvarmetrics_test

import (
	"context"
	"encoding/json"
	"expvar"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/expvarmetrics"
)

// snapshot is the part of the Var's JSON the test reads.
type snapshot struct {
	Fragments map[string]struct {
		Lookups               map[string]uint64 `json:"lookups"`
		Renders               uint64            `json:"renders"`
		RenderErrors          uint64            `json:"render_errors"`
		RenderedBytes         uint64            `json:"rendered_bytes"`
		ServedBytes           uint64            `json:"served_bytes"`
		RenderDurationSeconds struct {
			Count   uint64            `json:"count"`
			Buckets map[string]uint64 `json:"buckets"`
		} `json:"render_duration_seconds"`
	} `json:"fragments"`
	Backends map[string]struct {
		BreakerState string `json:"breaker_state"`
		Ops          map[string]struct {
			Operations uint64 `json:"operations"`
			Errors     uint64 `json:"errors"`
		} `json:"ops"`
	} `json:"backends"`
}

func TestVarHoldsFragmentAndBackendSeries(t *testing.T) {
	ctx := context.Background()
	m := expvarmetrics.New(expvarmetrics.Options{})
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

	m.Publish("fragcache_test")
	var s snapshot
	require.NoError(t, json.Unmarshal([]byte(expvar.Get("fragcache_test").String()), &s))
	f := s.Fragments["sidebar"]
	assert.Equal(t, uint64(4), f.Lookups["hit"])
	assert.Equal(t, uint64(2), f.Lookups["miss"])
	assert.Equal(t, uint64(0), f.Lookups["stale_hit"], "every outcome is listed")
	assert.Len(t, f.Lookups, len(fragment.Outcomes()))
	assert.Equal(t, uint64(2), f.Renders)
	assert.Equal(t, uint64(2*len(out)), f.RenderedBytes)
	assert.Equal(t, uint64(4*len(out)), f.ServedBytes)
	assert.Equal(t, uint64(2), f.RenderDurationSeconds.Count)
	assert.Equal(t, uint64(2), f.RenderDurationSeconds.Buckets["+Inf"], "buckets are cumulative")
	b := s.Backends["simple"]
	assert.Equal(t, "closed", b.BreakerState)
	assert.Equal(t, uint64(6+2), b.Ops["get"].Operations, "a lookup each, and a second look per miss")
	assert.Equal(t, uint64(2), b.Ops["set"].Operations)
	assert.Len(t, b.Ops, len(backends.Ops()))
}
