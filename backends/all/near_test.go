package all_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// TestNearCacheOpen: CACHE_OPTIONS near_cache on memcached and uWSGI puts a
// TTL-bounded backends.NearCache outside the breaker.
func TestNearCacheOpen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings func(t *testing.T) map[string]any
	}{
		{"MemcachedCache", func(t *testing.T) map[string]any {
			return map[string]any{"CACHE_TYPE": "MemcachedCache", "CACHE_MEMCACHED_SERVERS": []string{testservers.Memcached(t).Addr}}
		}},
		{"UWSGICache", func(t *testing.T) map[string]any {
			return map[string]any{"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": testservers.UWSGICacheName + "@" + testservers.UWSGI(t).Addr}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := tc.settings(t)
			settings["CACHE_OPTIONS"] = map[string]any{"near_cache": true, "near_cache_ttl": "1h", "near_cache_entries": 100}
			cfg, err := backends.FromMap(settings)
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			n, ok := c.Backend().(*backends.NearCache)
			require.True(t, ok, "Backend() is the near cache, %T", c.Backend())
			assert.NotNil(t, c.Breaker(), "the breaker still guards the server")
			ctx := context.Background()
			require.NoError(t, c.Set(ctx, "k", "v"))
			for range 3 {
				var s string
				found, err := c.Get(ctx, "k", &s)
				require.NoError(t, err)
				require.True(t, found)
				require.Equal(t, "v", s)
			}
			assert.Equal(t, uint64(2), n.Stats().Hits)

			settings["CACHE_OPTIONS"] = map[string]any{"near_cache": true, "near_cache_heartbeat": "1s"}
			cfg, err = backends.FromMap(settings)
			require.NoError(t, err)
			_, err = backends.Open(cfg)
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.ErrorContains(t, err, "near_cache_heartbeat")
		})
	}
}
