package httpcache

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// The tests in this file are the attacks of issue 13, "httpcache, safe in
// front of the public": each failed on the code before the fix.

// serveReq serves req through h, recovering a panic so that a test can
// count them instead of dying on the first.
func serveReq(h http.Handler, req *http.Request) (rec *httptest.ResponseRecorder, panicked any) {
	rec = httptest.NewRecorder()
	defer func() { panicked = recover() }()
	h.ServeHTTP(rec, req)
	return rec, nil
}

// linkPage writes a link to the site it believes it is on, from the Host a
// request names, or from X-Forwarded-Host and X-Forwarded-Proto when
// present, as many frameworks do.
func linkPage() (http.Handler, *atomic.Int64) {
	var runs atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		scheme, host := "http", r.Host
		if r.TLS != nil {
			scheme = "https"
		}
		if h := r.Header.Get("X-Forwarded-Host"); h != "" {
			host = h
		}
		if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
			scheme = p
		}
		fmt.Fprintf(w, `<a href="%s://%s/">home</a>`, scheme, host)
	}), &runs
}

func TestAttackHostPoisoning(t *testing.T) {
	link := func(scheme, host string) string { return fmt.Sprintf(`<a href="%s://%s/">home</a>`, scheme, host) }
	type step struct {
		target string
		header []string
		tls    bool
		want   string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"another Host is another page", []step{
			{"http://evil.example/about", nil, false, link("http", "evil.example")},
			{"http://shop.example/about", nil, false, link("http", "shop.example")},
			{"http://evil.example/about", nil, false, link("http", "evil.example")},
		}},
		{"an untrusted X-Forwarded-Host poisons nobody", []step{
			{"http://shop.example/about", []string{"X-Forwarded-Host", "evil.example"}, false, link("http", "evil.example")},
			{"http://shop.example/about", nil, false, link("http", "shop.example")},
		}},
		{"an untrusted X-Forwarded-Proto poisons nobody", []step{
			{"http://shop.example/about", []string{"X-Forwarded-Proto", "gopher"}, false, link("gopher", "shop.example")},
			{"http://shop.example/about", nil, false, link("http", "shop.example")},
		}},
		{"https and http are apart", []step{
			{"http://shop.example/about", nil, false, link("http", "shop.example")},
			{"https://shop.example/about", nil, true, link("https", "shop.example")},
		}},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h, _ := linkPage()
				h = New(open(t), Options{}).Middleware(h)
				for i, s := range tt.steps {
					req := httptest.NewRequestWithContext(t.Context(), "GET", s.target, nil)
					for j := 0; j+1 < len(s.header); j += 2 {
						req.Header.Set(s.header[j], s.header[j+1])
					}
					if s.tls {
						req.TLS = &tls.ConnectionState{}
					}
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					assert.Equal(t, s.want, rec.Body.String(), "step %d", i)
				}
			})
		}
	})
}

func TestAttackServeMuxHostPatterns(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("admin.example/about", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "admin about") })
	mux.HandleFunc("shop.example/about", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "shop about") })
	h := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{}).Middleware(mux)
	assert.Equal(t, "admin about", do(t, h, "GET", "http://admin.example/about").Body.String())
	assert.Equal(t, "shop about", do(t, h, "GET", "http://shop.example/about").Body.String())
	assert.Equal(t, "admin about", do(t, h, "GET", "http://admin.example/about").Body.String())
}

func TestAttackRepeatedQueryParameters(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		var runs atomic.Int64
		h := New(open(t), Options{}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			runs.Add(1)
			io.WriteString(w, "item "+r.URL.Query().Get("id")) // the first value, as handlers read it
		}))
		assert.Equal(t, "item 1", do(t, h, "GET", "/item?id=1&id=2").Body.String())
		assert.Equal(t, "item 2", do(t, h, "GET", "/item?id=2&id=1").Body.String())
		assert.Equal(t, "item 1", do(t, h, "GET", "/item?id=1&id=2").Body.String())
		assert.Equal(t, "HIT", do(t, h, "GET", "/item?id=1&id=2").Header().Get("X-Cache"))
		assert.EqualValues(t, 2, runs.Load())
	})
}

func TestAttackHeaderRulesIgnoreCase(t *testing.T) {
	tests := []struct {
		name string
		set  func(h http.Header)
	}{
		{"set-cookie written into the map", func(h http.Header) { h["set-cookie"] = []string{"session=secret"} }},
		{"SET-COOKIE written into the map", func(h http.Header) { h["SET-COOKIE"] = []string{"session=secret"} }},
		{"cache-control: private", func(h http.Header) { h["cache-control"] = []string{"private"} }},
		{"cache-control: No-Store", func(h http.Header) { h["cache-control"] = []string{"No-Store"} }},
		{"trailer in lower case", func(h http.Header) { h["trailer"] = []string{"X-Sum"} }},
		{"content-length that lies, in lower case", func(h http.Header) { h["content-length"] = []string{"100"} }},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := New(open(t), Options{})
				h, runs := page(func(w http.ResponseWriter, _ *http.Request) { tt.set(w.Header()) })
				h = c.Middleware(h)
				do(t, h, "GET", "/me")
				second := do(t, h, "GET", "/me")
				assert.Equal(t, "page 2", second.Body.String())
				assert.EqualValues(t, 2, runs.Load())
			})
		}
	})
}

func TestAttackPoisonedEntry(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		var logs bytes.Buffer
		c := New(open(t), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		h, runs := page(nil)
		h = c.Middleware(h)
		req := httptest.NewRequestWithContext(t.Context(), "GET", "/p", nil)
		key, err := c.Key(req)
		require.NoError(t, err)
		poison(t, c, key, 42)

		panics, served := 0, 0
		for range 100 {
			rec, p := serveReq(h, httptest.NewRequestWithContext(t.Context(), "GET", "/p", nil))
			if p != nil {
				panics++
				continue
			}
			if rec.Code == http.StatusOK && strings.HasPrefix(rec.Body.String(), "page ") {
				served++
			}
		}
		assert.Zero(t, panics, "requests that panicked")
		assert.Equal(t, 100, served)
		assert.EqualValues(t, 1, runs.Load(), "the bad entry was a miss, then replaced")
		assert.Contains(t, logs.String(), "not a valid stored response")
	})
}

// rawGet sends a GET for path over a connection that never reads the
// response, with a small receive buffer, as a slow or hostile client does.
func rawGet(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr)
	require.NoError(t, err)
	return conn
}

func TestAttackClientThatNeverReadsStallsNobody(t *testing.T) {
	const size = 7 << 20 // larger than loopback's socket buffers, within DefaultMaxBodySize
	const others = 5
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	var runs atomic.Int64
	gate := make(chan struct{})
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if runs.Add(1) == 1 {
			<-gate // hold the first run until the others wait for it
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for chunk := range slices.Chunk(body, 64<<10) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})))
	addr := strings.TrimPrefix(srv.URL, "http://")
	rawGet(t, addr, "/big")
	testkit.Eventually(t, "the handler runs for the client that never reads", func() bool { return runs.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var served atomic.Int64
	var wg sync.WaitGroup
	for range others {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/big", nil)
			if !assert.NoError(t, err) {
				return
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err == nil && bytes.Equal(got, body) {
				served.Add(1)
			}
		})
	}
	testkit.Eventually(t, "the others wait for the first run", func() bool { return waiting(c) == others })
	close(gate)
	wg.Wait()
	assert.EqualValues(t, others, served.Load(), "clients served while one never reads")
	assert.EqualValues(t, 1, runs.Load())
}

func TestAttackStreamingClientsAreNotSerialised(t *testing.T) {
	tests := []struct {
		name   string
		header func(h http.Header)
	}{
		{"server-sent events", func(h http.Header) { h.Set("Content-Type", "text/event-stream") }},
		{"flushed text with no-cache", func(h http.Header) {
			h.Set("Content-Type", "text/plain")
			h.Set("Cache-Control", "no-cache")
		}},
		{"flushed text the rules allow", func(h http.Header) { h.Set("Content-Type", "text/plain") }},
	}
	const clients = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
			release := make(chan struct{})
			var running atomic.Int64
			srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				running.Add(1)
				tt.header(w.Header())
				io.WriteString(w, "data: first\n\n")
				w.(http.Flusher).Flush()
				select { // stream until every client has had its first event
				case <-release:
				case <-r.Context().Done():
				}
				io.WriteString(w, "data: last\n\n")
			})))
			start := time.Now()
			ttfb := make(chan time.Duration, clients)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/events", nil)
					if !assert.NoError(t, err) {
						return
					}
					resp, err := http.DefaultClient.Do(req)
					if !assert.NoError(t, err) {
						return
					}
					defer resp.Body.Close()
					line, err := bufio.NewReader(resp.Body).ReadString('\n')
					if assert.NoError(t, err) && assert.Equal(t, "data: first\n", line) {
						ttfb <- time.Since(start)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
				})
			}
			// Every client gets its first event while every stream is still
			// open: none waits for another's stream to end.
			var firsts []time.Duration
			deadline := time.After(testkit.Deadline)
			for len(firsts) < clients {
				select {
				case d := <-ttfb:
					firsts = append(firsts, d)
				case <-deadline:
					close(release)
					wg.Wait()
					t.Fatalf("only %d of %d clients had a first event while the streams ran (%v)", len(firsts), clients, firsts)
				}
			}
			close(release)
			wg.Wait()
			assert.EqualValues(t, clients, running.Load())
			t.Logf("time to first byte: %v", firsts)
		})
	}
}
