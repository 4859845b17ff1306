package memoize

import (
	"context"
	"crypto/sha256"
	"sync/atomic"
	"testing"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/redis" // RedisCache
	"github.com/fragcache/fragcache/internal/testservers"
)

// work stands for a function worth memoizing: 64 KiB of hashing, about
// the cost of a small template render or a trivial query.
func work(_ context.Context, n int) (string, error) {
	buf := make([]byte, 64<<10)
	buf[0] = byte(n)
	sum := sha256.Sum256(buf)
	return string(sum[:8]), nil
}

type query struct {
	Category string
	Page     int
	Tags     []string
}

func search(_ context.Context, q query) ([]string, error) { return q.Tags, nil }

func benchCaches(b *testing.B) map[string]*backends.Cache {
	caches := map[string]*backends.Cache{
		"simple": backends.New(backends.NewSimple(0), backends.CacheOptions{}),
	}
	srv := testservers.Redis(b)
	c, err := backends.Open(backends.Config{Type: "RedisCache", Settings: map[string]any{"CACHE_REDIS_URL": "redis://" + srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	caches["redis"] = c
	return caches
}

func BenchmarkCall(b *testing.B) {
	ctx := context.Background()
	b.Run("direct/square", func(b *testing.B) {
		for b.Loop() {
			_, _ = square(ctx, 12)
		}
	})
	b.Run("direct/work", func(b *testing.B) {
		for b.Loop() {
			_, _ = work(ctx, 12)
		}
	})
	for name, c := range benchCaches(b) {
		b.Run("hit/"+name+"/int", func(b *testing.B) {
			m := Func(c, work, Options{})
			if _, err := m.Call(ctx, 12); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Call(ctx, 12); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hit/"+name+"/struct", func(b *testing.B) {
			m := Func(c, search, Options{})
			q := query{Category: "lamps", Page: 2, Tags: []string{"brass", "desk"}}
			if _, err := m.Call(ctx, q); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Call(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hit/"+name+"/method", func(b *testing.B) {
			var runs atomic.Int64
			m := Method(c, (*account).balance, Options{})
			a := &account{"A", &runs}
			if _, err := m.Call(ctx, a, "EUR"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Call(ctx, a, "EUR"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("hit/"+name+"/parallel", func(b *testing.B) {
			m := Func(c, work, Options{})
			if _, err := m.Call(ctx, 12); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Call(ctx, 12); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
