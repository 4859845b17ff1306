package memcached_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/memcached"
	"github.com/fragcache/fragcache/internal/pagebench"
	"github.com/fragcache/fragcache/internal/testservers"
)

// BenchmarkMemcached is Get and Set of 100 B and 10 KB values through a
// Cache over the Memcached backend, as Open builds it: CACHE_KEY_PREFIX as
// a namespace, so every key carries its generation. (The protocol client
// alone, next to gomemcache, is benchmarked in internal/memcache.)
func BenchmarkMemcached(b *testing.B) {
	srv := testservers.Memcached(b)
	ctx := context.Background()
	for _, spread := range []bool{false, true} {
		m, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}, Spread: spread, Namespaces: []string{"flask_cache_"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		c := backends.New(m, backends.CacheOptions{KeyPrefix: "flask_cache_", DefaultTimeout: 300 * time.Second})
		kind := "Memcached"
		if spread {
			kind = "Spread"
		}
		for _, size := range []int{100, 10 << 10} {
			value := bytes.Repeat([]byte("x"), size)
			keys := make([]string, 256)
			for i := range keys {
				keys[i] = "view//page/" + strconv.Itoa(i)
				if err := c.Set(ctx, keys[i], value); err != nil {
					b.Fatal(err)
				}
			}
			name := strconv.Itoa(size) + "B"
			if size >= 1<<10 {
				name = strconv.Itoa(size>>10) + "KB"
			}
			b.Run(kind+"/Get/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					v, err := c.GetValue(ctx, keys[i%len(keys)])
					if err != nil || !v.Found() {
						b.Fatal(v.Found(), err)
					}
					i++
				}
			})
			b.Run(kind+"/Set/"+name, func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := c.Set(ctx, keys[i%len(keys)], value); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkMemcachedPage renders the 10-fragment page workload (see
// pageEngines) with every block a hit, per engine, on memcached serially
// (ten get round trips per page) and in parallel (pagebench.Parallelism
// goroutines per CPU).
func BenchmarkMemcachedPage(b *testing.B) {
	srv := testservers.Memcached(b)
	m, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}, MaxIdleConns: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	pagebench.Run(b, "Memcached", m, true)
}
