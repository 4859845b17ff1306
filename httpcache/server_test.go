package httpcache

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// These tests need a real net/http server: httptest.ResponseRecorder does
// not model informational responses, streaming or hijacking.

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h) // 127.0.0.1, closed with the test
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestEarlyHintsAreNotTheResponse(t *testing.T) {
	var runs atomic.Int64
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = io.WriteString(w, "after hints")
	})))
	for _, want := range []string{"MISS", "HIT"} {
		resp, body := fetch(t, "GET", srv.URL+"/e")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "after hints", body)
		assert.Equal(t, want, resp.Header.Get("X-Cache"))
		assert.Equal(t, "</a.css>; rel=preload", resp.Header.Get("Link"))
	}
	assert.EqualValues(t, 1, runs.Load())
}

func TestMissStreamsAndHitIsWhole(t *testing.T) {
	var runs atomic.Int64
	release := make(chan struct{})
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if runs.Add(1) > 1 {
			t.Error("handler ran for a hit")
		}
		_, _ = io.WriteString(w, "head\n")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "tail\n")
	})))

	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/s", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "head\n", line, "the first part arrives before the handler finishes")
	close(release)
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "tail\n", string(rest))

	hit, body := fetch(t, "GET", srv.URL+"/s")
	assert.Equal(t, "HIT", hit.Header.Get("X-Cache"))
	assert.Equal(t, "head\ntail\n", body)
	assert.Equal(t, int64(len(body)), hit.ContentLength)
}

func TestHijackedResponseIsNotStored(t *testing.T) {
	var runs atomic.Int64
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nraw ok")
		_ = buf.Flush()
	})))
	for range 2 {
		resp, body := fetch(t, "GET", srv.URL+"/h")
		assert.Equal(t, "raw ok", body)
		assert.Empty(t, resp.Header.Get("X-Cache"))
	}
	assert.EqualValues(t, 2, runs.Load())
}

func TestHEADOverARealServer(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	body := strings.Repeat("<p>hello</p>", 100)
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	})))
	fetch(t, "GET", srv.URL+"/p")
	resp, got := fetch(t, "HEAD", srv.URL+"/p")
	assert.Empty(t, got)
	assert.Equal(t, "HIT", resp.Header.Get("X-Cache"))
	assert.Equal(t, int64(len(body)), resp.ContentLength)
	assert.Equal(t, http.DetectContentType([]byte(body)), resp.Header.Get("Content-Type"), "sniffed as net/http would for GET")
}

// TestWriteTimeoutBoundsSlowClients: with Options.WriteTimeout, a client
// that never reads a response the cache writes from memory (a hit, or the
// buffered response of the request that ran the handler) holds it, and the
// goroutine writing it, no longer than the timeout.
func TestWriteTimeoutBoundsSlowClients(t *testing.T) {
	const size = 16 << 20 // larger than loopback's socket buffers
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, hit := range []bool{true, false} {
		t.Run(fmt.Sprint("hit=", hit), func(t *testing.T) {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{
				MaxBodySize:  2 * size,
				WriteTimeout: 200 * time.Millisecond,
			})
			var returned atomic.Int64
			cached := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(body)
			}))
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer returned.Add(1)
				cached.ServeHTTP(w, r)
			}))
			addr := strings.TrimPrefix(srv.URL, "http://")
			if hit {
				// Stored through a writer without deadlines, so that how fast
				// a loaded machine reads 16 MiB does not matter.
				rec := do(t, cached, http.MethodGet, "http://"+addr+"/big")
				require.Equal(t, "MISS", rec.Header().Get("X-Cache"))
				require.Equal(t, size, rec.Body.Len())
			}
			rawGet(t, addr, "/big")
			testkit.Eventually(t, "the write to the client that never reads gives up", func() bool { return returned.Load() == 1 })
			if hit {
				assert.EqualValues(t, 1, c.Stats().Hits, "served from the cache")
			} else {
				assert.EqualValues(t, 1, c.Stats().Runs, "served from the leader's buffer")
			}
		})
	}
}
