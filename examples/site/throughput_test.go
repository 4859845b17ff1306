package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testservers"
)

// TestThroughputFigures measures the demo site's requests per second over
// each backend: the figures in BENCHMARKS.md behind the README's advice
// for Redis in production. It is a measurement, so it runs only when asked:
//
//	FRAGCACHE_THROUGHPUT=1 go test -run TestThroughputFigures -v -timeout 30m ./examples/site
//
// Eight clients (outageClients, the outage harness's) request every page
// of every engine, alternating request by request between the sites, so
// that load from elsewhere on the machine falls on all alike, for a phase
// (FRAGCACHE_OUTAGE_PHASE, default 3 s) per round (FRAGCACHE_OUTAGE_ROUNDS,
// default 3); ratios are taken within a round. A site's requests per second
// are what closed-loop clients would get from it alone: clients / mean
// request time. The data source answers at once, so a page costs the
// engines and the cache.
func TestThroughputFigures(t *testing.T) {
	if os.Getenv("FRAGCACHE_THROUGHPUT") == "" {
		t.Skip("a measurement: set FRAGCACHE_THROUGHPUT=1 to run it")
	}
	srv := testservers.Redis(t)
	url := "redis://" + srv.Addr
	sites := []struct {
		name string
		site *outageSite
	}{
		{"SimpleCache", newOutageSite(t, map[string]any{"CACHE_TYPE": "SimpleCache"})},
		{"Redis+near", newOutageSite(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url,
			"CACHE_KEY_PREFIX": "near_", "CACHE_OPTIONS": map[string]any{"near_cache": true}})},
		{"Redis", newOutageSite(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": url, "CACHE_KEY_PREFIX": "plain_"})},
		{"no cache", newOutageSite(t, map[string]any{"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": true})},
	}
	phase := phaseLength()
	all := make([]*outageSite, len(sites))
	for i, s := range sites {
		all[i] = s.site
	}
	perSite := make([][]float64, len(sites)) // requests/s per round
	for round := range rounds() {
		l := startLoad(all...)
		time.Sleep(phase)
		ss := l.end()
		for i := range sites {
			mine := between(ss, i, time.Time{}, time.Now())
			st := summarize(mine)
			require.Zero(t, st.failed, "%s: first failure: %s", sites[i].name, st.firstFailure)
			var total time.Duration
			for _, s := range mine {
				total += s.took
			}
			// Closed-loop clients: alone, outageClients clients would serve
			// outageClients requests per mean request time.
			rps := float64(outageClients) * float64(len(mine)) / total.Seconds()
			perSite[i] = append(perSite[i], rps)
			t.Logf("round %d %s: %.0f requests/s (mean %v); %v", round+1, sites[i].name, rps,
				(total / time.Duration(len(mine))).Round(time.Microsecond), st)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%d clients, %v phases, %d rounds; requests/s median [min–max], ratio to SimpleCache and to no cache within each round:\n",
		outageClients, phase, rounds())
	for i, s := range sites {
		toSimple := make([]float64, len(perSite[i]))
		toNone := make([]float64, len(perSite[i]))
		for r := range perSite[i] {
			toSimple[r] = perSite[i][r] / perSite[0][r]
			toNone[r] = perSite[i][r] / perSite[len(sites)-1][r]
		}
		fmt.Fprintf(&report, "  %-12s %s req/s; ×SimpleCache %s; ×no cache %s\n", s.name,
			spreadF(perSite[i], "%.0f"), spreadF(toSimple, "%.2f"), spreadF(toNone, "%.2f"))
	}
	t.Log("\n" + report.String())
	fmt.Fprint(os.Stdout, "\n=== throughput figures\n"+report.String())
}

// spreadF formats numbers as "median [min–max]".
func spreadF(x []float64, format string) string {
	s := slices.Clone(x)
	slices.Sort(s)
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", s[len(s)/2], s[0], s[len(s)-1])
}
