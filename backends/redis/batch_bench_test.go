package redis_test

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/pagebench"
	"github.com/fragcache/fragcache/internal/redistest"
	"github.com/fragcache/fragcache/internal/testservers"
)

// BenchmarkPageBatching renders the 10-fragment page per engine, all hits
// and all misses, direct and batched (pagebench.RunBatching), on
// SimpleCache and on a loopback Redis whose round trips a go-redis hook
// counts. Run it with -count to interleave the modes.
func BenchmarkPageBatching(b *testing.B) {
	srv := testservers.Redis(b)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	rt := new(redistest.RoundTrips)
	client.AddHook(rt)
	trips := func() int {
		n, _ := rt.Take()
		return n
	}
	pagebench.RunBatching(b, "Simple", backends.NewSimple(0), nil)
	pagebench.RunBatching(b, "Redis", redis.New(client, redis.Options{}), trips)
}
