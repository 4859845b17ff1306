package redis_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/pagebench"
	"github.com/fragcache/fragcache/internal/testservers"
)

// redisBenchValue is the size of a typical stored fragment: one block of
// the page workload below is about 1.2 KB.
const redisBenchValue = 1200

// redisBenchKeys is how many keys GetMany reads: the blocks of one page.
const redisBenchKeys = 10

// redisBenchOps returns each operation through fragcache (a backends.Cache
// over redis.New) and as the equivalent raw go-redis call, on one client
// against one real server, so that a pair differs only by fragcache's own
// work: the key prefix, the value envelope and the Backend call.
func redisBenchOps(b *testing.B) []redisBenchPair {
	srv := testservers.Redis(b)
	ctx := context.Background()
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	cache := backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{KeyPrefix: "p:", DefaultTimeout: 300 * time.Second})
	value := bytes.Repeat([]byte("x"), redisBenchValue)
	keys := make([]string, redisBenchKeys)
	rawKeys := make([]string, redisBenchKeys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		rawKeys[i] = "p:" + keys[i]
		if err := cache.Set(ctx, keys[i], value); err != nil {
			b.Fatal(err)
		}
	}
	return []redisBenchPair{
		{"Get",
			func() error {
				v, err := cache.GetValue(ctx, keys[0])
				if err == nil && !v.Found() {
					err = fmt.Errorf("miss")
				}
				return err
			},
			func() error { _, err := client.Get(ctx, rawKeys[0]).Bytes(); return err }},
		{"Set",
			func() error { return cache.Set(ctx, keys[1], value) },
			func() error { return client.Set(ctx, rawKeys[1], value, 300*time.Second).Err() }},
		{"GetMany",
			func() error { _, err := cache.GetMany(ctx, keys...); return err },
			func() error { _, err := client.MGet(ctx, rawKeys...).Result(); return err }},
	}
}

type redisBenchPair struct {
	name               string
	fragcache, goRedis func() error
}

// BenchmarkRedis runs each operation pair as separate benchmarks: Serial
// on one goroutine (latency), Parallel with b.RunParallel and
// pagebench.Parallelism goroutines per CPU (throughput, where CPU overhead shows
// more).
func BenchmarkRedis(b *testing.B) {
	pairs := redisBenchOps(b)
	run := func(b *testing.B, parallel bool, op func() error) {
		b.ReportAllocs()
		if parallel {
			b.SetParallelism(pagebench.Parallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"Serial", "Parallel"} {
		for _, p := range pairs {
			b.Run(mode+"/"+p.name+"/fragcache", func(b *testing.B) { run(b, mode == "Parallel", p.fragcache) })
			b.Run(mode+"/"+p.name+"/go-redis", func(b *testing.B) { run(b, mode == "Parallel", p.goRedis) })
		}
	}
}

// BenchmarkRedisOverhead alternates the two sides of each pair in one loop
// and times each side, so that load from elsewhere on the machine falls on
// both alike; it reports each side's ns per call and fragcache's overhead
// in percent. ns/op is the pair.
func BenchmarkRedisOverhead(b *testing.B) {
	for _, p := range redisBenchOps(b) {
		b.Run(p.name, func(b *testing.B) {
			var fc, raw time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := p.fragcache(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := p.goRedis(); err != nil {
					b.Fatal(err)
				}
				fc, raw = fc+t1.Sub(t0), raw+time.Since(t1)
			}
			b.ReportMetric(float64(fc.Nanoseconds())/float64(b.N), "fragcache-ns/call")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "go-redis-ns/call")
			b.ReportMetric(100*(float64(fc)/float64(raw)-1), "overhead-%")
		})
	}
}

// BenchmarkRedisPage renders the 10-fragment page with every block a hit,
// per engine: on Redis serially (ten GET round trips per page) and in
// parallel (pagebench.Parallelism goroutines per CPU), and on SimpleCache for
// comparison in the same run.
func BenchmarkRedisPage(b *testing.B) {
	srv := testservers.Redis(b)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	for _, st := range []struct {
		name    string
		backend backends.Backend
	}{
		{"Simple", backends.NewSimple(0)},
		{"Redis", redis.New(client, redis.Options{})},
	} {
		pagebench.Run(b, st.name, st.backend, true)
	}
}
