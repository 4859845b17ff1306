package metrics_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCoreNeverImportsAMetricsLibrary proves the promise of the package
// doc: the core's dependency graph holds no metrics library and no adapter.
func TestCoreNeverImportsAMetricsLibrary(t *testing.T) {
	core := []string{
		"github.com/fragcache/fragcache/backends",
		"github.com/fragcache/fragcache/backends/all", // every backend family
		"github.com/fragcache/fragcache/fragment",
		"github.com/fragcache/fragcache/keys",
		"github.com/fragcache/fragcache/pongo2tag",
		"github.com/fragcache/fragcache/jettag",
		"github.com/fragcache/fragcache/htmltemplate",
		"github.com/fragcache/fragcache/memoize",
		"github.com/fragcache/fragcache/httpcache",
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, core...)...).CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/fragcache/fragcache/backends", "go list -deps lists the packages themselves")
	for _, d := range deps {
		for _, banned := range []string{
			"github.com/prometheus/",
			"go.opentelemetry.io/",
			"expvar",
			"github.com/fragcache/fragcache/metrics",
		} {
			assert.False(t, d == banned || strings.HasPrefix(d, banned), "the core depends on %s", d)
		}
	}

	// And each adapter does pull in its library, so the check above is
	// looking at the right graph.
	for adapter, lib := range map[string]string{
		"github.com/fragcache/fragcache/metrics/prommetrics":   "github.com/prometheus/client_golang/prometheus",
		"github.com/fragcache/fragcache/metrics/otelmetrics":   "go.opentelemetry.io/otel/metric",
		"github.com/fragcache/fragcache/metrics/expvarmetrics": "expvar",
	} {
		out, err := exec.Command("go", "list", "-deps", adapter).CombinedOutput()
		require.NoError(t, err, "go list: %s", out)
		assert.Contains(t, strings.Fields(string(out)), lib, adapter)
	}
}
