package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testservers"
)

// The documented Redis mode: CACHE_TYPE=RedisCache and a URL, every cache
// of the demo on a real redis-server, visible in the badges, the counters
// and /metrics.
func TestRedisMode(t *testing.T) {
	srv := testservers.Redis(t)
	s := startSite(t, []string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_URL=redis://" + srv.Addr + "/0", "CACHE_KEY_PREFIX=demo-test:"})
	cold := s.page("/pongo2/")
	warm := s.page("/pongo2/")
	assert.Equal(t, allBadges(cold, "miss"), badges(cold))
	assert.Equal(t, allBadges(warm, "hit"), badges(warm))
	st := s.stats()
	assert.Equal(t, "RedisCache", st.Backend)
	assert.Equal(t, fragments(cold), st.Hits)

	code, body := s.post("/invalidate", url.Values{"fragment": {"sidebar"}, "return": {"/pongo2/"}})
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "miss", badges(body)["pongo2-sidebar"])
	assert.Equal(t, "hit", badges(body)["pongo2-products"])

	assert.Contains(t, s.page("/memoize"), `id="memoize-state">MISS<`)
	assert.Contains(t, s.page("/memoize"), `id="memoize-state">HIT<`)

	metrics := s.page("/metrics")
	assert.Contains(t, metrics, `fragcache_backend_breaker_state{backend="RedisCache",state="closed"} 1`)
	assert.Contains(t, metrics, `fragcache_backend_operations_total{backend="RedisCache",op="get_many"}`, "memoize reads with GetMany")
	assert.Contains(t, metrics, `fragcache_fragment_lookups_total{fragment="pongo2-sidebar",outcome="miss"} 2`)
}
