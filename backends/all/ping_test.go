package all_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// pingBound is how long a Ping of a hung server may take at most: the ctx
// deadline below, plus generous slack for a loaded machine.
const pingDeadline, pingBound = 500 * time.Millisecond, 20 * time.Second

// networked opens each networked family at addr.
var networked = []struct {
	name     string
	start    func(t *testing.T) *testservers.Server
	settings func(addr string) map[string]any
}{
	{"RedisCache", func(t *testing.T) *testservers.Server { return testservers.Redis(t) },
		func(addr string) map[string]any {
			return map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + addr}
		}},
	{"MemcachedCache", func(t *testing.T) *testservers.Server { return testservers.Memcached(t) },
		func(addr string) map[string]any {
			return map[string]any{"CACHE_TYPE": "MemcachedCache", "CACHE_MEMCACHED_SERVERS": []string{addr}}
		}},
	{"UWSGICache", func(t *testing.T) *testservers.Server { return testservers.UWSGI(t) },
		func(addr string) map[string]any {
			return map[string]any{"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": testservers.UWSGICacheName + "@" + addr}
		}},
}

// ping pings c with a deadline and fails the test if Ping outlives it by
// far: a readiness probe must not hang.
func ping(t *testing.T, c *backends.Cache) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pingDeadline)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Ping(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(pingBound):
		t.Fatalf("Ping still running %v after its ctx deadline of %v", pingBound, pingDeadline)
		return nil
	}
}

func TestPingUpDownHung(t *testing.T) {
	for _, fam := range networked {
		t.Run(fam.name, func(t *testing.T) {
			srv := fam.start(t)
			c := openCache(t, fam.settings(srv.Addr))
			require.NoError(t, ping(t, c), "server up")

			srv.Stop()
			assert.Error(t, ping(t, c), "server down")
			assert.Error(t, ping(t, openCache(t, fam.settings(srv.Addr))), "server down, fresh cache")

			assert.Error(t, ping(t, openCache(t, fam.settings(testservers.Stalled(t)))), "server hung")
		})
	}
}

// Ping asks the server even while the circuit breaker is open, and is not
// counted by it.
func TestPingBypassesTheBreaker(t *testing.T) {
	srv := testservers.Redis(t)
	settings := networked[0].settings(srv.Addr)
	settings["CACHE_OPTIONS"] = map[string]any{"breaker_failures": 1, "breaker_cooldown": "1h"}
	c := openCache(t, settings)
	srv.Stop()
	_, _ = c.GetValue(context.Background(), "k") // fails: opens the breaker
	require.Equal(t, backends.BreakerOpen, c.Breaker().State())
	srv.Restart()
	require.NoError(t, ping(t, c), "the server is back; the breaker is still open")
	assert.Equal(t, backends.BreakerOpen, c.Breaker().State(), "Ping is not counted")
}

func TestPingOfInProcessBackendsIsNil(t *testing.T) {
	for _, settings := range []map[string]any{
		{"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": true},
		{"CACHE_TYPE": "SimpleCache"},
		{"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": t.TempDir()},
	} {
		assert.NoError(t, ping(t, openCache(t, settings)), settings["CACHE_TYPE"])
	}
}
