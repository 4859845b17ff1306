package memcache

import (
	"context"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/fragcache/fragcache/internal/testservers"
)

// The client next to github.com/bradfitz/gomemcache (text protocol) on the
// same server in the same run: Get and Set of a small fragment and of a
// rendered page section, over benchKeys keys.
const benchKeys = 256

var benchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"10KB", 10 << 10}}

func benchKeyNames() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = "flask_cache_view//page/" + strconv.Itoa(i)
	}
	return keys
}

// benchClients returns the two clients' Get and Set over one server, with
// as many idle connections as benchmarks run goroutines.
func benchClients(b *testing.B) map[string]struct {
	get func(key string) ([]byte, error)
	set func(key string, value []byte) error
} {
	srv := testservers.Memcached(b)
	ctx := context.Background()
	ours, err := New(Options{Servers: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ours.Close() })
	gm := memcache.New(srv.Addr)
	gm.MaxIdleConns = DefaultMaxIdleConns
	gm.Timeout = DefaultTimeout
	b.Cleanup(func() { gm.Close() })
	return map[string]struct {
		get func(key string) ([]byte, error)
		set func(key string, value []byte) error
	}{
		"binary": {
			get: func(key string) ([]byte, error) { it, err := ours.Get(ctx, key); return it.Value, err },
			set: func(key string, value []byte) error { return ours.Set(ctx, Item{Key: key, Value: value}) },
		},
		"gomemcache": {
			get: func(key string) ([]byte, error) {
				it, err := gm.Get(key)
				if err != nil {
					return nil, err
				}
				return it.Value, nil
			},
			set: func(key string, value []byte) error { return gm.Set(&memcache.Item{Key: key, Value: value}) },
		},
	}
}

func BenchmarkGet(b *testing.B) {
	clients := benchClients(b)
	keys := benchKeyNames()
	for _, sz := range benchSizes {
		for _, name := range []string{"binary", "gomemcache"} {
			c := clients[name]
			b.Run(sz.name+"/"+name, func(b *testing.B) {
				for _, k := range keys {
					if err := c.set(k, make([]byte, sz.size)); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(sz.size))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if v, err := c.get(keys[i%len(keys)]); err != nil || len(v) != sz.size {
						b.Fatal(len(v), err)
					}
					i++
				}
			})
		}
	}
}

func BenchmarkSet(b *testing.B) {
	clients := benchClients(b)
	keys := benchKeyNames()
	for _, sz := range benchSizes {
		for _, name := range []string{"binary", "gomemcache"} {
			c := clients[name]
			b.Run(sz.name+"/"+name, func(b *testing.B) {
				value := make([]byte, sz.size)
				b.SetBytes(int64(sz.size))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := c.set(keys[i%len(keys)], value); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkGetParallel is Get from GOMAXPROCS goroutines at once, which
// is how a web server uses the client.
func BenchmarkGetParallel(b *testing.B) {
	clients := benchClients(b)
	keys := benchKeyNames()
	const size = 100
	for _, name := range []string{"binary", "gomemcache"} {
		c := clients[name]
		b.Run("100B/"+name, func(b *testing.B) {
			for _, k := range keys {
				if err := c.set(k, make([]byte, size)); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := c.get(keys[i%len(keys)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}
