package uwsgi_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/uwsgi"
	"github.com/fragcache/fragcache/internal/pagebench"
	"github.com/fragcache/fragcache/internal/testservers"
)

// benchUWSGI starts a server with uWSGI's default item size and returns a
// backend for it.
func benchUWSGI(b *testing.B, opts uwsgi.Options) *uwsgi.Backend {
	b.Helper()
	srv := testservers.UWSGI(b)
	opts.Addr, opts.Cache = srv.Addr, testservers.UWSGICacheName
	u, err := uwsgi.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// BenchmarkUWSGI measures single operations against a real uWSGI server on
// loopback: each opens and closes a TCP connection. "namespaced" keys are in
// a declared namespace whose token the backend has cached (the default);
// "token_every_op" reads the token on every operation.
func BenchmarkUWSGI(b *testing.B) {
	ctx := context.Background()
	sizes := []int{100, 4 << 10}
	variants := []struct {
		name string
		opts uwsgi.Options
		key  string
	}{
		{"plain", uwsgi.Options{}, "key"},
		{"namespaced", uwsgi.Options{Namespaces: []string{"ns:"}}, "ns:key"},
		{"token_every_op", uwsgi.Options{Namespaces: []string{"ns:"}, NamespaceRefresh: -1}, "ns:key"},
	}
	for _, v := range variants {
		u := benchUWSGI(b, v.opts)
		for _, size := range sizes {
			value := bytes.Repeat([]byte("v"), size)
			b.Run(fmt.Sprintf("Get/%s/%dB", v.name, size), func(b *testing.B) {
				if err := u.Set(ctx, v.key, value, backends.NoExpiry); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, found, err := u.Get(ctx, v.key); err != nil || !found {
						b.Fatal(found, err)
					}
				}
			})
			b.Run(fmt.Sprintf("Set/%s/%dB", v.name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := u.Set(ctx, v.key, value, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("GetParallel/plain/100B", func(b *testing.B) {
		u := benchUWSGI(b, uwsgi.Options{})
		if err := u.Set(ctx, "key", make([]byte, 100), backends.NoExpiry); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, found, err := u.Get(ctx, "key"); err != nil || !found {
					b.Error(found, err)
					return
				}
			}
		})
	})
	b.Run("GetMany/plain/10x100B", func(b *testing.B) {
		u := benchUWSGI(b, uwsgi.Options{})
		keys := make([]string, 10)
		for i := range keys {
			keys[i] = "key" + strconv.Itoa(i)
			if err := u.Set(ctx, keys[i], make([]byte, 100), backends.NoExpiry); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := u.GetMany(ctx, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The fragment page workload of the engine packages' BenchmarkPage/AllHit:
// a page of 10 cache blocks, each a loop over 50 items printing the item's
// name and the user's name, every block a hit, here served by uWSGI.
// BenchmarkUWSGIPage renders the fragment page workload with every block a
// hit in uWSGI, in each template engine; the page's blocks are fetched one
// after another, so a page costs about ten round trips.
func BenchmarkUWSGIPage(b *testing.B) {
	// One uWSGI worker answers one request at a time: serial only.
	pagebench.Run(b, "UWSGI", benchUWSGI(b, uwsgi.Options{}), false)
}
