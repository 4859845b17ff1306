package redis_test

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testkit"
)

// redisTimeouts is what the defaults test compares: the go-redis options
// that decide how long an outage costs.
type redisTimeouts struct {
	Dial, Read, Write, Pool   time.Duration
	MaxRetries, DialerRetries int
	ContextTimeout            bool
}

// clientTimeouts opens settings (Open does not connect) and returns the
// options of the go-redis client it built.
func clientTimeouts(t *testing.T, settings map[string]any) redisTimeouts {
	t.Helper()
	c := openCache(t, settings)
	switch cl := c.Backend().(*redis.Backend).Client().(type) {
	case *goredis.Client:
		o := cl.Options()
		return redisTimeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled}
	case *goredis.ClusterClient:
		o := cl.Options()
		return redisTimeouts{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout, o.MaxRetries, o.DialerRetries, o.ContextTimeoutEnabled}
	}
	t.Fatalf("unexpected client %T", c.Backend().(*redis.Backend).Client())
	return redisTimeouts{}
}

func TestRedisDefaultsSuitACache(t *testing.T) {
	cacheDefaults := redisTimeouts{
		Dial: 500 * time.Millisecond, Read: 250 * time.Millisecond, Write: 250 * time.Millisecond,
		Pool: 250 * time.Millisecond, MaxRetries: 1, DialerRetries: 1, ContextTimeout: true,
	}
	with := func(f func(*redisTimeouts)) redisTimeouts {
		d := cacheDefaults
		f(&d)
		return d
	}
	overrides := map[string]any{"dial_timeout": 2, "read_timeout": "1s", "write_timeout": 1.5, "pool_timeout": "3s",
		"max_retries": 3, "dialer_retries": 5, "context_timeout_enabled": false}
	overridden := redisTimeouts{2 * time.Second, time.Second, 1500 * time.Millisecond, 3 * time.Second, 3, 5, false}
	tests := []struct {
		name     string
		settings map[string]any
		want     redisTimeouts
	}{
		{"host and port", map[string]any{"CACHE_TYPE": "RedisCache"}, cacheDefaults},
		{"URL", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://127.0.0.1:1/0"}, cacheDefaults},
		{"sentinel", map[string]any{"CACHE_TYPE": "RedisSentinelCache"}, cacheDefaults},
		{"cluster", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "127.0.0.1:1"}, cacheDefaults},
		{"URL query wins over the defaults", map[string]any{"CACHE_TYPE": "RedisCache",
			"CACHE_REDIS_URL": "redis://127.0.0.1:1/0?read_timeout=2s&max_retries=2"},
			with(func(d *redisTimeouts) { d.Read, d.MaxRetries = 2*time.Second, 2 })},
		{"CACHE_OPTIONS win over the URL query", map[string]any{"CACHE_TYPE": "RedisCache",
			"CACHE_REDIS_URL": "redis://127.0.0.1:1/0?read_timeout=2s", "CACHE_OPTIONS": map[string]any{"read_timeout": "100ms"}},
			with(func(d *redisTimeouts) { d.Read = 100 * time.Millisecond })},
		{"CACHE_OPTIONS override every default", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": overrides}, overridden},
		{"CACHE_OPTIONS override every default (cluster)", map[string]any{"CACHE_TYPE": "RedisClusterCache",
			"CACHE_REDIS_CLUSTER": "127.0.0.1:1", "CACHE_OPTIONS": overrides}, overridden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotPanics(t, func() { assert.Equal(t, tt.want, clientTimeouts(t, tt.settings)) })
		})
	}
}

// With "go_redis_logger", go-redis's own log lines (here: a failed dial)
// go to Config.Logger.
func TestRedisLoggerOption(t *testing.T) {
	var buf safeBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	t.Cleanup(func() { redis.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))) })
	cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + closedPort(t),
		"CACHE_OPTIONS": map[string]any{"go_redis_logger": true}})
	require.NoError(t, err)
	cfg.Logger = logger
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.GetValue(t.Context(), "k")
	require.Error(t, err)
	testkit.Eventually(t, "go-redis logs the failed dial through the app's logger", func() bool {
		return strings.Contains(buf.String(), `"msg":"go-redis: redis: connection pool: failed to dial`)
	})

	cfg.Options = map[string]any{"go_redis_logger": "yes"}
	_, err = backends.Open(cfg)
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "go_redis_logger")
}

// safeBuffer is a bytes.Buffer for a logger written from other goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
