package prommetrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/metrics/prommetrics"
)

// Wire the metrics into a store and a fragment cache, and serve them.
func Example() {
	reg := prometheus.NewRegistry()
	m := prommetrics.New(prommetrics.Options{})
	reg.MustRegister(m)

	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	store = m.Cache("simple", store) // use the observed Cache everywhere
	fc := fragment.New(store, fragment.Options{Observer: m})

	// What an engine does for `cache 60, "sidebar", user.ID`, twice.
	site := &fragment.Site{Path: "base.html", Line: 12, Col: 1}
	for range 2 {
		call := fragment.Call{Site: site, Timeout: 60, Name: "sidebar", VaryOn: []any{42}}
		_ = fc.Render(context.Background(), call, io.Discard, func(w io.Writer) error {
			_, err := io.WriteString(w, "<ul>…</ul>")
			return err
		})
	}

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "fragcache_fragment_lookups_total{") && !strings.HasSuffix(line, " 0") {
			fmt.Println(line)
		}
	}
	// Output:
	// fragcache_fragment_lookups_total{fragment="sidebar",outcome="hit"} 1
	// fragcache_fragment_lookups_total{fragment="sidebar",outcome="miss"} 1
}
