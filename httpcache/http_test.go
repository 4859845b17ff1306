package httpcache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// What HTTP caches do beyond Flask-Caching (RFC 9111, RFC 9110).

func TestVary(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		t.Run("keyed on the named request headers", func(t *testing.T) {
			c := New(open(t), Options{})
			var runs atomic.Int64
			h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				w.Header().Set("Vary", "Accept-Language, accept-encoding")
				fmt.Fprintf(w, "lang=%s enc=%s", r.Header.Get("Accept-Language"), r.Header.Get("Accept-Encoding"))
			}))
			steps := []struct {
				header []string
				want   string
				hit    string
			}{
				{[]string{"Accept-Language", "de"}, "lang=de enc=", "MISS"},
				{[]string{"Accept-Language", "fr"}, "lang=fr enc=", "MISS"},
				{[]string{"Accept-Language", "de"}, "lang=de enc=", "HIT"},
				{[]string{"Accept-Language", "de", "Accept-Encoding", "gzip"}, "lang=de enc=gzip", "MISS"},
				{[]string{"Accept-Language", "fr", "Cookie", "a=b"}, "lang=fr enc=", "HIT"},
				{nil, "lang= enc=", "MISS"},
				{[]string{"Accept-Language", ""}, "lang= enc=", "MISS"},
				{nil, "lang= enc=", "HIT"},
			}
			for i, s := range steps {
				rec := do(t, h, "GET", "/p", s.header...)
				assert.Equal(t, s.want, rec.Body.String(), "step %d", i)
				assert.Equal(t, s.hit, rec.Header().Get("X-Cache"), "step %d", i)
				assert.Equal(t, "Accept-Language, accept-encoding", rec.Header().Get("Vary"), "step %d", i)
			}
			assert.EqualValues(t, 5, runs.Load())
		})
		t.Run("Vary * is never stored", func(t *testing.T) {
			h, runs := page(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Vary", "*") })
			h = New(open(t), Options{}).Middleware(h)
			do(t, h, "GET", "/p")
			assert.Equal(t, "MISS", do(t, h, "GET", "/p").Header().Get("X-Cache"))
			assert.EqualValues(t, 2, runs.Load())
		})
		t.Run("a page that stops varying replaces its variants", func(t *testing.T) {
			c := New(open(t), Options{})
			varies := true
			var runs atomic.Int64
			h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := runs.Add(1)
				if varies {
					w.Header().Set("Vary", "Accept-Language")
				}
				fmt.Fprintf(w, "%s %d", r.Header.Get("Accept-Language"), n)
			}))
			assert.Equal(t, "de 1", do(t, h, "GET", "/p", "Accept-Language", "de").Body.String())
			varies = false
			_, err := c.Delete(t.Context(), "http://example.com/p")
			require.NoError(t, err)
			assert.Equal(t, "fr 2", do(t, h, "GET", "/p", "Accept-Language", "fr").Body.String())
			assert.Equal(t, "fr 2", do(t, h, "GET", "/p", "Accept-Language", "de").Body.String(), "one entry for all now")
			varies = true
			_, err = c.Delete(t.Context(), "http://example.com/p")
			require.NoError(t, err)
			assert.Equal(t, "fr 3", do(t, h, "GET", "/p", "Accept-Language", "fr").Body.String())
			assert.Equal(t, "de 4", do(t, h, "GET", "/p", "Accept-Language", "de").Body.String(),
				"the first marker's variant is never found again")
		})
	})
	t.Run("waiters with another variant run their own", func(t *testing.T) {
		c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
		release := make(chan struct{})
		var runs atomic.Int64
		h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if runs.Add(1) == 1 {
				<-release
			}
			w.Header().Set("Vary", "Accept-Language")
			io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
		}))
		results := make(chan string, 4)
		serve := func(lang string) {
			r := httptest.NewRequest("GET", "/p", nil)
			r.Header.Set("Accept-Language", lang)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			results <- lang + ":" + rec.Body.String()
		}
		go serve("de")
		testkit.Eventually(t, "the first runs", func() bool { return runs.Load() == 1 })
		for _, lang := range []string{"de", "fr", "fr"} {
			go serve(lang)
		}
		testkit.Eventually(t, "the others wait", func() bool { return waiting(c) == 3 })
		close(release)
		got := map[string]int{}
		for range 4 {
			got[<-results]++
		}
		assert.Equal(t, map[string]int{"de:lang=de": 2, "fr:lang=fr": 2}, got)
		assert.EqualValues(t, 2, runs.Load(), "one run per variant")
	})
}

func TestConditionalRequests(t *testing.T) {
	lastModified := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		opts    Options
		set     func(h http.Header)
		header  []string
		want304 bool
	}{
		{"If-None-Match names the ETag", Options{}, func(h http.Header) { h.Set("ETag", `"v1"`) },
			[]string{"If-None-Match", `"v0", "v1"`}, true},
		{"weak comparison", Options{}, func(h http.Header) { h.Set("ETag", `W/"v1"`) },
			[]string{"If-None-Match", `"v1"`}, true},
		{"star", Options{}, func(h http.Header) { h.Set("ETag", `"v1"`) },
			[]string{"If-None-Match", "*"}, true},
		{"another ETag", Options{}, func(h http.Header) { h.Set("ETag", `"v1"`) },
			[]string{"If-None-Match", `"v2"`}, false},
		{"no ETag stored", Options{}, func(http.Header) {},
			[]string{"If-None-Match", `"v1"`}, false},
		{"etag in lower case written into the map", Options{}, func(h http.Header) { h["etag"] = []string{`"v1"`} },
			[]string{"If-None-Match", `"v1"`}, true},
		{"If-Modified-Since at Last-Modified", Options{}, func(h http.Header) { h.Set("Last-Modified", lastModified.Format(http.TimeFormat)) },
			[]string{"If-Modified-Since", lastModified.Format(http.TimeFormat)}, true},
		{"If-Modified-Since before Last-Modified", Options{}, func(h http.Header) { h.Set("Last-Modified", lastModified.Format(http.TimeFormat)) },
			[]string{"If-Modified-Since", lastModified.Add(-time.Hour).Format(http.TimeFormat)}, false},
		{"If-None-Match wins over If-Modified-Since", Options{}, func(h http.Header) {
			h.Set("ETag", `"v1"`)
			h.Set("Last-Modified", lastModified.Format(http.TimeFormat))
		}, []string{"If-None-Match", `"v2"`, "If-Modified-Since", lastModified.Format(http.TimeFormat)}, false},
		{"AddETag gives a strong ETag", Options{AddETag: true}, func(http.Header) {},
			[]string{"If-None-Match", bodyETag([]byte("page 1"))}, true},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var seen atomic.Value
				h, runs := page(func(w http.ResponseWriter, r *http.Request) {
					seen.Store(r.Header.Get("If-None-Match") + r.Header.Get("If-Modified-Since"))
					tt.set(w.Header())
				})
				h = New(open(t), tt.opts).Middleware(h)

				// The first request is conditional too: its handler makes the
				// whole response, which is stored, and the cache answers it.
				first := do(t, h, "GET", "/c", tt.header...)
				assert.Empty(t, seen.Load(), "the handler does not see the conditions")
				for i, rec := range []*httptest.ResponseRecorder{first, do(t, h, "GET", "/c", tt.header...)} {
					if tt.want304 {
						assert.Equal(t, http.StatusNotModified, rec.Code, "request %d", i)
						assert.Empty(t, rec.Body.String())
						assert.Empty(t, rec.Header().Get("Content-Type"))
						assert.Empty(t, rec.Header().Get("Content-Length"))
					} else {
						assert.Equal(t, http.StatusOK, rec.Code, "request %d", i)
						assert.Equal(t, "page 1", rec.Body.String())
					}
				}
				plain := do(t, h, "GET", "/c")
				assert.Equal(t, http.StatusOK, plain.Code)
				assert.Equal(t, "page 1", plain.Body.String())
				assert.Equal(t, "HIT", plain.Header().Get("X-Cache"))
				if tt.opts.AddETag {
					assert.Equal(t, bodyETag([]byte("page 1")), plain.Header().Get("Etag"))
					assert.Equal(t, bodyETag([]byte("page 1")), first.Header().Get("Etag"), "the first client gets it too")
				}
				assert.EqualValues(t, 1, runs.Load())
			})
		}
	})
	t.Run("AddETag keeps the handler's", func(t *testing.T) {
		h, _ := page(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("ETag", `"mine"`) })
		h = New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{AddETag: true}).Middleware(h)
		do(t, h, "GET", "/c")
		assert.Equal(t, `"mine"`, do(t, h, "GET", "/c").Header().Get("Etag"))
	})
	t.Run("a response not stored is answered too", func(t *testing.T) {
		h, runs := page(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("ETag", `"v1"`)
			w.Header().Set("Cache-Control", "private")
		})
		h = New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{}).Middleware(h)
		for range 2 {
			assert.Equal(t, http.StatusNotModified, do(t, h, "GET", "/c", "If-None-Match", `"v1"`).Code)
		}
		assert.EqualValues(t, 2, runs.Load())
	})
}

func TestAgeOnHits(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		tests := []struct {
			name      string
			stored    string // the handler's own Age header
			createdAt time.Duration
			want      string
		}{
			{"fresh", "", 0, "0"},
			{"stored 90 s ago", "", -90 * time.Second, "90"},
			{"the handler's Age adds up", "30", -90 * time.Second, "120"},
			{"created in the future", "", time.Hour, "0"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := New(open(t), Options{})
				h, runs := page(nil)
				h = c.Middleware(h)
				e := &entry{created: time.Now().Add(tt.createdAt), status: 200, header: http.Header{}, body: []byte("old page")}
				if tt.stored != "" {
					e.header.Set("Age", tt.stored)
				}
				key, err := c.Key(httptest.NewRequest("GET", "/a", nil))
				require.NoError(t, err)
				require.NoError(t, c.set(t.Context(), key, mustEncode(t, e), 0))
				rec := do(t, h, "GET", "/a")
				assert.Equal(t, "old page", rec.Body.String())
				assert.Equal(t, tt.want, rec.Header().Get("Age"))
				assert.Zero(t, runs.Load())
			})
		}
		t.Run("not on the response the handler made", func(t *testing.T) {
			h, _ := page(nil)
			h = New(open(t), Options{}).Middleware(h)
			assert.Empty(t, do(t, h, "GET", "/a").Header().Values("Age"))
			assert.Equal(t, "0", do(t, h, "GET", "/a").Header().Get("Age"))
		})
	})
}

func TestRequestCacheControl(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		t.Run("no-store: a miss is not stored", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{}).Middleware(h)
			assert.Equal(t, "page 1", do(t, h, "GET", "/p", "Cache-Control", "max-age=0, No-Store").Body.String())
			assert.Equal(t, "page 2", do(t, h, "GET", "/p").Body.String(), "nothing was stored")
			hit := do(t, h, "GET", "/p", "Cache-Control", "no-store")
			assert.Equal(t, "page 2", hit.Body.String(), "a stored response still serves it")
			assert.Equal(t, "HIT", hit.Header().Get("X-Cache"))
			assert.EqualValues(t, 2, runs.Load())
		})
		t.Run("no-cache and max-age=0 do not skip the cache", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{}).Middleware(h)
			do(t, h, "GET", "/p")
			for _, header := range [][]string{{"Cache-Control", "no-cache"}, {"Cache-Control", "max-age=0"}, {"Pragma", "no-cache"}} {
				assert.Equal(t, "HIT", do(t, h, "GET", "/p", header...).Header().Get("X-Cache"), "%v", header)
			}
			assert.EqualValues(t, 1, runs.Load())
		})
	})
}

func TestUnshareableResponsesAreNotWaitedFor(t *testing.T) {
	// After a response was refused, requests for its key run the handler
	// side by side: here two requests hold their handlers until both run.
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	var runs atomic.Int64
	both := make(chan struct{})
	storable := false
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n := runs.Add(1); n == 3 {
			close(both)
		} else if n == 2 {
			<-both
		}
		if !storable {
			w.Header().Set("Cache-Control", "no-cache")
		}
		io.WriteString(w, "poll result")
	}))
	do(t, h, "GET", "/poll") // refused: the key is remembered
	done := make(chan struct{}, 2)
	for range 2 {
		go func() { do(t, h, "GET", "/poll"); done <- struct{}{} }()
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(testkit.Deadline):
			t.Fatal("the second request waited for the first")
		}
	}
	assert.Zero(t, c.Stats().Waits)

	storable = true
	do(t, h, "GET", "/poll")
	assert.Equal(t, "HIT", do(t, h, "GET", "/poll").Header().Get("X-Cache"), "a stored response ends it")
}

func TestWaiterTakesOverWhenTheLeadersClientLeaves(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	release := make(chan struct{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if runs.Add(1) == 1 {
			<-release
		}
		io.WriteString(w, "run "+strconv.FormatInt(runs.Load(), 10))
	}))
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan struct{})
	go func() {
		defer close(leader)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/p", nil))
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return runs.Load() == 1 })
	waiters := make(chan string, 2)
	for range 2 {
		go func() { waiters <- do(t, h, "GET", "/p").Body.String() }()
	}
	testkit.Eventually(t, "the others wait", func() bool { return waiting(c) == 2 })
	cancel()
	close(release)
	<-leader
	assert.Equal(t, "run 2", <-waiters)
	assert.Equal(t, "run 2", <-waiters, "one took over, the other waited for it")
	assert.EqualValues(t, 2, runs.Load())
}

func TestHandlerServingItsOwnURLDoesNotDeadlock(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	var h http.Handler
	depth := 0
	h = c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if depth++; depth == 1 {
			inner := httptest.NewRecorder()
			h.ServeHTTP(inner, r) // an include of itself
			io.WriteString(w, "outer("+inner.Body.String()+")")
			return
		}
		io.WriteString(w, "inner")
	}))
	done := make(chan string, 1)
	go func() { done <- do(t, h, "GET", "/self").Body.String() }()
	select {
	case got := <-done:
		assert.Equal(t, "outer(inner)", got)
	case <-time.After(testkit.Deadline):
		t.Fatal("deadlock")
	}
}

func TestOversizeResponseStreamsWithoutWaiters(t *testing.T) {
	// A response that outgrows MaxBodySize goes to its client as written,
	// and the requests that waited for it run the handler themselves
	// rather than wait for a client that may never read.
	const size = 7 << 20
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{MaxBodySize: 1 << 20})
	var runs atomic.Int64
	gate := make(chan struct{})
	srv := serve(t, c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if runs.Add(1) == 1 {
			<-gate
		}
		chunk := make([]byte, 64<<10)
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})))
	rawGet(t, srv.Listener.Addr().String(), "/big")
	testkit.Eventually(t, "the handler runs for the client that never reads", func() bool { return runs.Load() == 1 })
	got := make(chan int, 3)
	for range 3 {
		go func() {
			resp, body := fetch(t, "GET", srv.URL+"/big")
			assert.Equal(t, "MISS", resp.Header.Get("X-Cache"))
			got <- len(body)
		}()
	}
	testkit.Eventually(t, "the others wait", func() bool { return waiting(c) == 3 })
	close(gate)
	for range 3 {
		select {
		case n := <-got:
			assert.Equal(t, size, n)
		case <-time.After(testkit.Deadline):
			t.Fatal("a client was not served")
		}
	}
}
