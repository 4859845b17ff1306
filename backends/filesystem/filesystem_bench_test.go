package filesystem_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/filesystem"
)

// fsBenchKeys is the working set of the FileSystem benchmarks: enough files
// to spread over the directory, few enough to stay in the page cache.
const fsBenchKeys = 256

// fsBenchSizes are the value sizes the FileSystem benchmarks run with: a
// small fragment and a rendered page section.
var fsBenchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"10KB", 10 << 10}}

func newBenchFileSystem(b *testing.B, threshold int) *filesystem.Backend {
	b.Helper()
	c, err := filesystem.New(b.TempDir(), filesystem.Options{Threshold: threshold})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func fsBenchKeyNames(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "flask_cache_view//page/" + strconv.Itoa(i)
	}
	return keys
}

func BenchmarkFileSystemGet(b *testing.B) {
	ctx := context.Background()
	for _, sz := range fsBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			c := newBenchFileSystem(b, 0)
			keys := fsBenchKeyNames(fsBenchKeys)
			for _, k := range keys {
				if err := c.Set(ctx, k, make([]byte, sz.size), backends.NoExpiry); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok, err := c.Get(ctx, keys[i%len(keys)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i++
			}
		})
	}
}

// BenchmarkFileSystemSet overwrites existing keys, the steady state of a
// fragment cache.
func BenchmarkFileSystemSet(b *testing.B) {
	ctx := context.Background()
	for _, sz := range fsBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			c := newBenchFileSystem(b, 0)
			keys := fsBenchKeyNames(fsBenchKeys)
			value := make([]byte, sz.size)
			b.SetBytes(int64(sz.size))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := c.Set(ctx, keys[i%len(keys)], value, backends.NoExpiry); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkFileSystemSetFull inserts new keys into a cache at its default
// threshold, so every insert must make room: it measures the amortised cost
// of pruning.
func BenchmarkFileSystemSetFull(b *testing.B) {
	ctx := context.Background()
	c := newBenchFileSystem(b, backends.DefaultThreshold)
	value := make([]byte, 100)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Set(ctx, strconv.Itoa(i), value, backends.NoExpiry); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkFileSystemInc(b *testing.B) {
	ctx := context.Background()
	c := newBenchFileSystem(b, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Inc(ctx, "counter", 1, backends.NoExpiry); err != nil {
			b.Fatal(err)
		}
	}
}
