//go:build !race

// The race detector multiplies every allocation's cost, so these
// measurements run without it.

package httpcache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/backends"
)

// heapUse is what the memory figures are made of: the heap's live and not
// yet swept objects, and the bytes allocated since the process started.
type heapUse struct{ objects, allocs uint64 }

func readHeap() heapUse {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return heapUse{s[0].Value.Uint64(), s[1].Value.Uint64()}
}

// dropping is a remote store as the process's heap sees it: what is set
// leaves the process.
type dropping struct{ backends.Backend }

func (dropping) Set(context.Context, string, []byte, time.Duration) error { return nil }

// coldResponses serves n concurrent cold requests, each for its own URL
// and a body of size bytes written in 32 KiB pieces, and returns the heap's
// peak above where it started and the bytes allocated meanwhile, both as a
// multiple of the bodies' total size.
func coldResponses(store *backends.Cache, n, size int, contentLength bool) (peak, allocated float64) {
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	start := make(chan struct{})
	var written sync.WaitGroup // every body is held at once: the worst case
	written.Add(n)
	h := New(store, Options{}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-start // every handler runs at once
		if contentLength {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		for off := 0; off < size; off += 32 << 10 {
			_, _ = w.Write(body[off:min(off+32<<10, size)])
		}
		written.Done()
		written.Wait()
	}))
	reqs := make([]*http.Request, n)
	writers := make([]*discard, n)
	for i := range n {
		reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/cold/%d", i), nil)
		writers[i] = &discard{h: http.Header{}}
	}

	runtime.GC()
	base := readHeap()
	var top atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if u := readHeap().objects; u > top.Load() {
				top.Store(u)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { h.ServeHTTP(writers[i], reqs[i]) })
	}
	close(start)
	wg.Wait()
	end := readHeap()
	close(stop)
	<-sampled
	peakBytes := max(top.Load(), end.objects)
	total := float64(n) * float64(size)
	return float64(peakBytes-min(peakBytes, base.objects)) / total, float64(end.allocs-base.allocs) / total
}

// TestMemoryOfConcurrentColdResponses checks the bound of issue 13: 32
// concurrent cold 8 MiB responses take at most 1.5 times their bodies'
// size. It is asserted on the bytes allocated, which bound the heap's peak
// from above and do not depend on when the collector runs; the sampled
// peak is logged.
func TestMemoryOfConcurrentColdResponses(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 400 MiB")
	}
	const n, size = 32, 8 << 20
	for _, tt := range []struct {
		name          string
		store         func() *backends.Cache
		contentLength bool
	}{
		{"remote store", func() *backends.Cache {
			return backends.New(dropping{backends.NewSimple(0)}, backends.CacheOptions{})
		}, false},
		{"in-process store", func() *backends.Cache {
			return backends.New(backends.NewSimple(0), backends.CacheOptions{})
		}, false},
		{"remote store, Content-Length known", func() *backends.Cache {
			return backends.New(dropping{backends.NewSimple(0)}, backends.CacheOptions{})
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			peak, allocated := coldResponses(tt.store(), n, size, tt.contentLength)
			t.Logf("%d × %d MiB: heap peak %.2f×, allocated %.2f× the bodies", n, size>>20, peak, allocated)
			assert.LessOrEqual(t, allocated, 1.5, "bytes allocated per body byte")
		})
	}
}

// BenchmarkColdResponses reports the figures of
// TestMemoryOfConcurrentColdResponses for a remote store (the heap holds
// no stored entries): peak/body is the sampled heap peak, alloc/body the
// bytes allocated, both per byte of the 32 bodies of 8 MiB.
func BenchmarkColdResponses(b *testing.B) {
	for _, contentLength := range []bool{false, true} {
		b.Run(fmt.Sprintf("content-length=%v", contentLength), func(b *testing.B) {
			var peak, allocated float64
			for b.Loop() {
				p, a := coldResponses(backends.New(dropping{backends.NewSimple(0)}, backends.CacheOptions{}), 32, 8<<20, contentLength)
				peak, allocated = max(peak, p), max(allocated, a)
			}
			b.ReportMetric(peak, "peak/body")
			b.ReportMetric(allocated, "alloc/body")
		})
	}
}
