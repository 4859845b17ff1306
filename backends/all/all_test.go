package all_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/all"
)

// openCache opens a cache from Flask-style settings, closed when t ends.
func openCache(t *testing.T, settings map[string]any) *backends.Cache {
	t.Helper()
	cfg, err := backends.FromMap(settings)
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Open guards the networked backends with a circuit breaker, and only
// them, unless CACHE_OPTIONS says otherwise.
func TestOpenGuardsNetworkedBackends(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		guarded  bool
	}{
		{"RedisCache", map[string]any{"CACHE_TYPE": "RedisCache"}, true},
		{"MemcachedCache", map[string]any{"CACHE_TYPE": "MemcachedCache"}, true},
		{"UWSGICache", map[string]any{"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": "c@127.0.0.1:1"}, true},
		{"SimpleCache", map[string]any{"CACHE_TYPE": "SimpleCache"}, false},
		{"turned off", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"breaker_failures": 0}}, false},
		{"turned on", map[string]any{"CACHE_TYPE": "SimpleCache", "CACHE_OPTIONS": map[string]any{"breaker_failures": 2, "breaker_cooldown": "1s"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCache(t, tt.settings)
			assert.Equal(t, tt.guarded, c.Breaker() != nil)
			_, isBreaker := c.Backend().(*backends.Breaker)
			assert.False(t, isBreaker, "Backend returns the guarded backend")
		})
	}
	for _, bad := range []map[string]any{{"breaker_failures": -1}, {"breaker_failures": "5"}, {"breaker_cooldown": "soon"}, {"breaker_cooldown": -1}} {
		cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": bad})
		require.NoError(t, err)
		_, err = backends.Open(cfg)
		require.ErrorIs(t, err, backends.ErrConfig, "%v", bad)
		assert.Contains(t, err.Error(), "breaker_", "%v", bad)
	}
}

// Importing all makes every Flask-Caching CACHE_TYPE, old and new, known to
// Open: none fails as unknown.
func TestAllKnowsEveryFlaskName(t *testing.T) {
	names := []string{
		"NullCache", "SimpleCache", "FileSystemCache", "RedisCache", "RedisSentinelCache", "RedisClusterCache",
		"UWSGICache", "MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache",
		"null", "simple", "filesystem", "redis", "redissentinel", "rediscluster", "uwsgi",
		"memcached", "gaememcached", "saslmemcached", "spreadsaslmemcached",
	}
	types := backends.Types()
	for _, name := range names {
		assert.Contains(t, types, name)
		cfg := backends.DefaultConfig()
		cfg.Type, cfg.NoNullWarning = name, true
		c, err := backends.Open(cfg)
		assert.NotErrorIs(t, err, backends.ErrUnknownBackend, name)
		if err == nil {
			_ = c.Close()
		}
	}
}

// Issue 18's Kubernetes environment: the service links of a Service named
// "cache" sit beside the app's settings, and the Redis cache still opens.
func TestFromEnvWithKubernetesServiceLinksOpensRedis(t *testing.T) {
	env := []string{
		"CACHE_TYPE=RedisCache", "CACHE_REDIS_HOST=10.0.0.5",
		"CACHE_SERVICE_HOST=10.0.0.5", "CACHE_SERVICE_PORT=6379", "CACHE_PORT_6379_TCP_ADDR=10.0.0.5",
	}
	cfg, err := backends.FromEnv(env, backends.EnvOptions{})
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	_, err = backends.FromEnv(append(env, "CACHE_REDIS_PORT=tcp://10.0.0.5:6379"), backends.EnvOptions{})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_REDIS_PORT")
}
