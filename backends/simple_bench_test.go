package backends_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// simpleBenchWorkingSet is the working set of the read and overwrite benchmarks: large
// enough to spread over the map, small enough to stay in cache so that the
// benchmarks measure Simple rather than memory latency.
const simpleBenchWorkingSet = 1 << 12

func simpleBenchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// simpleBenchFilled returns an unbounded Simple holding simpleBenchWorkingSet never-expiring
// 64-byte values, and their keys.
func simpleBenchFilled(b *testing.B) (*backends.Simple, []string) {
	b.Helper()
	ctx := context.Background()
	s := backends.NewSimple(0)
	keys := simpleBenchKeys("fragment:", simpleBenchWorkingSet)
	for _, k := range keys {
		if err := s.Set(ctx, k, make([]byte, 64), 0); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

func BenchmarkSimpleGet(b *testing.B) {
	ctx := context.Background()
	s, keys := simpleBenchFilled(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok, _ := s.Get(ctx, keys[i&(simpleBenchWorkingSet-1)]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkSimpleGetParallel(b *testing.B) {
	ctx := context.Background()
	s, keys := simpleBenchFilled(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := s.Get(ctx, keys[i&(simpleBenchWorkingSet-1)]); !ok {
				b.Error("miss")
				return
			}
			i += 7 // goroutines start together; a stride keeps them on different keys
		}
	})
}

// BenchmarkSimpleGetExpiring reads entries with a TTL, which costs a clock
// read per Get on top of BenchmarkSimpleGetParallel.
func BenchmarkSimpleGetExpiring(b *testing.B) {
	ctx := context.Background()
	s := backends.NewSimple(0)
	keys := simpleBenchKeys("fragment:", simpleBenchWorkingSet)
	for _, k := range keys {
		if err := s.Set(ctx, k, make([]byte, 64), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok, _ := s.Get(ctx, keys[i&(simpleBenchWorkingSet-1)]); !ok {
				b.Error("miss")
				return
			}
			i += 7
		}
	})
}

func BenchmarkSimpleSet(b *testing.B) {
	ctx := context.Background()
	s, keys := simpleBenchFilled(b)
	val := make([]byte, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Set(ctx, keys[i&(simpleBenchWorkingSet-1)], val, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSimpleSetParallel(b *testing.B) {
	ctx := context.Background()
	s, keys := simpleBenchFilled(b)
	val := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := s.Set(ctx, keys[i&(simpleBenchWorkingSet-1)], val, 5*time.Minute); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// BenchmarkSimpleSetAtThreshold inserts a new key into a full cache on every
// Set, so every Set evicts. The cost per Set must not grow with the size.
func BenchmarkSimpleSetAtThreshold(b *testing.B) {
	ctx := context.Background()
	val := make([]byte, 64)
	for _, size := range []int{1_000, 100_000, 1_000_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			// Cycling through size+1 keys makes each Set's key the one
			// evicted by the previous Set: always an insert, never an
			// overwrite.
			keys := simpleBenchKeys("fragment:", size+1)
			s := backends.NewSimple(size)
			for _, k := range keys[:size] {
				if err := s.Set(ctx, k, val, 5*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := size
			for b.Loop() {
				if err := s.Set(ctx, keys[i%len(keys)], val, 5*time.Minute); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if s.Len() != size {
				b.Fatalf("Len = %d, want %d", s.Len(), size)
			}
		})
	}
}

type cacheBenchPage struct {
	Title string
	Tags  []string
	Views int64
	Body  []byte
}

func BenchmarkCacheGet(b *testing.B) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "app:"})
	if err := c.Set(ctx, "bytes", make([]byte, 64)); err != nil {
		b.Fatal(err)
	}
	page := cacheBenchPage{Title: "Home", Tags: []string{"a", "b"}, Views: 42, Body: make([]byte, 64)}
	if err := c.Set(ctx, "struct", page); err != nil {
		b.Fatal(err)
	}
	b.Run("bytes/GetValue", func(b *testing.B) {
		// The zero-copy path fragment caching uses.
		b.ReportAllocs()
		for b.Loop() {
			v, err := c.GetValue(ctx, "bytes")
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := v.Bytes(); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("bytes/Get", func(b *testing.B) {
		b.ReportAllocs()
		var dst []byte
		for b.Loop() {
			if ok, err := c.Get(ctx, "bytes", &dst); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("struct/Get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var dst cacheBenchPage
			if ok, err := c.Get(ctx, "struct", &dst); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
