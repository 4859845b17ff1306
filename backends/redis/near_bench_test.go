package redis_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/pagebench"
	"github.com/fragcache/fragcache/internal/testservers"
)

// nearContender is one side of BenchmarkRedisNear: an operation and how
// many times one turn runs it (cheap in-memory operations run in batches,
// so that reading the clock does not dominate).
type nearContender struct {
	name  string
	batch int
	op    func() error
	trips *roundTrips // round trips counted on its client, or nil
}

// BenchmarkRedisNear compares, in one loop that gives each contender a turn
// per iteration (so that load from elsewhere on the machine falls on all
// alike), the near-cached Redis backend with SimpleCache, with the Redis
// backend without a near cache, and with go-redis's own client-side cache
// (ClientSideCacheConfig on a RESP3 client, raw GET): a warm fragment hit
// (Get), a warm GetMany of a page's 10 keys, and the 10-fragment page of
// internal/pagebench rendered with html/template, every block a hit. Each
// contender reports ns per call, its ratio to SimpleCache, and its round
// trips per call counted by a go-redis hook.
func BenchmarkRedisNear(b *testing.B) {
	srv := testservers.Redis(b)
	ctx := context.Background()
	newClient := func(protocol int) (*goredis.Client, *roundTrips) {
		c := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Protocol: protocol})
		h := &roundTrips{}
		c.AddHook(h)
		b.Cleanup(func() { _ = c.Close() })
		return c, h
	}
	plainClient, plainTrips := newClient(3)
	nearClient, nearTrips := newClient(3)
	near, err := redis.NewWithNearCache(nearClient, redis.NearCacheOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = near.Close() })
	for st, _ := near.NearCacheStats(); !st.Tracking; st, _ = near.NearCacheStats() {
		time.Sleep(time.Millisecond)
	}
	cscClient := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Protocol: 3,
		ClientSideCacheConfig: &goredis.ClientSideCacheConfig{MaxEntries: 10000}})
	cscTrips := &roundTrips{}
	cscClient.AddHook(cscTrips)
	b.Cleanup(func() { _ = cscClient.Close() })

	opts := backends.CacheOptions{KeyPrefix: "p:", DefaultTimeout: 300 * time.Second}
	simple := backends.New(backends.NewSimple(0), opts)
	nearCache := backends.New(near, opts)
	plain := backends.New(redis.New(plainClient, redis.Options{}), opts)
	value := bytes.Repeat([]byte("x"), redisBenchValue)
	keys := make([]string, redisBenchKeys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		for _, c := range []*backends.Cache{simple, nearCache} {
			if err := c.Set(ctx, keys[i], value); err != nil {
				b.Fatal(err)
			}
		}
	}
	get := func(c *backends.Cache) func() error {
		return func() error {
			_, _, err := c.Backend().Get(ctx, "p:"+keys[0])
			return err
		}
	}
	getMany := func(c *backends.Cache) func() error {
		return func() error { _, err := c.GetMany(ctx, keys...); return err }
	}
	pageRender := func(c *backends.Cache) func() error {
		render := pagebench.Renderer(b, "html-template", fragment.New(c, fragment.Options{}))
		return func() error { return render(io.Discard) }
	}
	rawKey := "p:" + keys[0]
	for _, bench := range []struct {
		name       string
		contenders []nearContender
	}{
		{"Get", []nearContender{
			{"simple", 100, get(simple), nil},
			{"near", 100, get(nearCache), nearTrips},
			{"go-redis-csc", 100, func() error { return cscClient.Get(ctx, rawKey).Err() }, cscTrips},
			{"redis", 1, get(plain), plainTrips},
		}},
		{"GetMany10", []nearContender{
			{"simple", 20, getMany(simple), nil},
			{"near", 20, getMany(nearCache), nearTrips},
			{"redis", 1, getMany(plain), plainTrips},
		}},
		{"Page10", []nearContender{
			{"simple", 5, pageRender(simple), nil},
			{"near", 5, pageRender(nearCache), nearTrips},
			{"redis", 1, pageRender(plain), plainTrips},
		}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			cs := bench.contenders
			for _, c := range cs { // warm: fills the caches and the pools
				for range 3 {
					if err := c.op(); err != nil {
						b.Fatal(err)
					}
				}
			}
			spent := make([]time.Duration, len(cs))
			trips := make([]int64, len(cs))
			for i, c := range cs {
				if c.trips != nil {
					trips[i] = c.trips.n.Load()
				}
			}
			for b.Loop() {
				for i, c := range cs {
					t0 := time.Now()
					for range c.batch {
						if err := c.op(); err != nil {
							b.Fatal(err)
						}
					}
					spent[i] += time.Since(t0)
				}
			}
			base := float64(spent[0]) / float64(cs[0].batch)
			for i, c := range cs {
				calls := float64(b.N * c.batch)
				b.ReportMetric(float64(spent[i].Nanoseconds())/calls, c.name+"-ns/call")
				if i > 0 {
					b.ReportMetric(float64(spent[i])/float64(c.batch)/base, c.name+"/simple")
				}
				if c.trips != nil {
					b.ReportMetric(float64(c.trips.n.Load()-trips[i])/calls, c.name+"-trips/call")
				}
			}
		})
	}
}
