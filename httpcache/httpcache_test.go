package httpcache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

func TestGETResponsesAreCached(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{})
		h, runs := page(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Product", "lamp")
			w.Header().Add("Link", "</a.css>; rel=preload")
			w.Header().Add("Link", "</b.js>; rel=preload")
		})
		h = c.Middleware(h)

		first := do(t, h, "GET", "/products/7")
		assert.Equal(t, http.StatusOK, first.Code)
		assert.Equal(t, "page 1", first.Body.String())
		assert.Equal(t, "MISS", first.Header().Get("X-Cache"))

		for range 2 {
			hit := do(t, h, "GET", "/products/7")
			assert.Equal(t, http.StatusOK, hit.Code)
			assert.Equal(t, "page 1", hit.Body.String())
			assert.Equal(t, "HIT", hit.Header().Get("X-Cache"))
			assert.Equal(t, "lamp", hit.Header().Get("X-Product"))
			assert.Equal(t, first.Header().Values("Link"), hit.Header().Values("Link"))
			assert.Equal(t, first.Header().Get("Content-Type"), hit.Header().Get("Content-Type"))
			assert.Equal(t, strconv.Itoa(len("page 1")), hit.Header().Get("Content-Length"))
		}
		assert.EqualValues(t, 1, runs.Load())
		assert.Equal(t, Stats{Hits: 2, Misses: 1, Runs: 1}, c.Stats())

		other := do(t, h, "GET", "/products/8")
		assert.Equal(t, "page 2", other.Body.String(), "another path is another entry")
	})
}

func TestKey(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	key := func(t *testing.T, c *Cache, method, target string) string {
		t.Helper()
		k, err := c.Key(httptest.NewRequest(method, target, nil))
		require.NoError(t, err)
		return k
	}
	withPrefix := func(p string) *Cache {
		return New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{KeyPrefix: p})
	}
	ignoring := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{IgnoreQuery: true})

	t.Run("path forms", func(t *testing.T) {
		tests := []struct {
			name   string
			c      *Cache
			method string
			target string
			want   string
		}{
			{"default prefix", c, "GET", "/shop", "view/http://example.com/shop"},
			{"root", c, "GET", "/", "view/http://example.com/"},
			{"prefix without slash", withPrefix("page:"), "GET", "/shop", "page:http://example.com/shop"},
			{"escaped path kept escaped", c, "GET", "/a%2Fb", "view/http://example.com/a%2Fb"},
			{"HEAD shares GET's key", c, "HEAD", "/shop", "view/http://example.com/shop"},
			{"other methods are named", c, "POST", "/shop", "POST view/http://example.com/shop"},
			{"IgnoreQuery drops the query", ignoring, "GET", "/s?q=1", "view/http://example.com/s"},
			{"empty query adds nothing", c, "GET", "/s?", "view/http://example.com/s"},
			{"host lower-cased, default port dropped", c, "GET", "http://Shop.Example:80/s", "view/http://shop.example/s"},
			{"other port kept", c, "GET", "http://shop.example:8080/s", "view/http://shop.example:8080/s"},
			{"query sorted by name, values in order", c, "GET", "/s?b=2&a=3&b=1", "view/http://example.com/s?a=3&b=2&b=1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				assert.Equal(t, tt.want, key(t, tt.c, tt.method, tt.target))
			})
		}
	})

	t.Run("query arguments", func(t *testing.T) {
		tests := []struct {
			name string
			a, b string
			same bool
		}{
			{"order does not matter", "/s?b=2&a=1", "/s?a=1&b=2", true},
			{"repeated values in another order", "/s?a=1&a=2", "/s?a=2&a=1", false},
			{"encodings of one value", "/s?q=a+b", "/s?q=a%20b", true},
			{"repeats count", "/s?a=1&a=1", "/s?a=1", false},
			{"values count", "/s?q=a", "/s?q=b", false},
			{"names and values do not run together", "/s?ab=c", "/s?a=bc", false},
			{"empty value is a value", "/s?a=", "/s", false},
			{"path still counts", "/s?q=a", "/t?q=a", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				a, b := key(t, c, "GET", tt.a), key(t, c, "GET", tt.b)
				if tt.same {
					assert.Equal(t, a, b)
				} else {
					assert.NotEqual(t, a, b)
				}
			})
		}
		assert.Equal(t, "view/http://example.com/s?a=1&b=2", key(t, c, "GET", "/s?b=2&a=1"))
	})

	t.Run("malformed query is an error", func(t *testing.T) {
		_, err := c.Key(httptest.NewRequest("GET", "/s?a=%zz", nil))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "query of /s")
	})

	t.Run("custom key", func(t *testing.T) {
		custom := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{
			Key: func(r *http.Request) (string, error) { return "lang:" + r.Header.Get("Accept-Language"), nil },
		})
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Accept-Language", "de")
		k, err := custom.Key(r)
		require.NoError(t, err)
		assert.Equal(t, "lang:de", k)
		assert.Equal(t, "POST lang:", key(t, custom, "POST", "/x"), "the method is still put in front")
	})
}

func TestQueryStringVariants(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		targets  []string
		wantRuns int64
	}{
		{"by default every query is its own entry", Options{}, []string{"/s?q=a", "/s?q=b", "/s?q=a"}, 2},
		{"argument order does not matter", Options{}, []string{"/s?q=a&p=1", "/s?p=1&q=a"}, 1},
		{"IgnoreQuery shares one entry", Options{IgnoreQuery: true}, []string{"/s?q=a", "/s?q=b", "/s"}, 1},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h, runs := page(nil)
				h = New(open(t), tt.opts).Middleware(h)
				for _, target := range tt.targets {
					assert.Equal(t, http.StatusOK, do(t, h, "GET", target).Code)
				}
				assert.Equal(t, tt.wantRuns, runs.Load())
			})
		}
	})
}

func TestMalformedQueryBypasses(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	h, runs := page(nil)
	h = c.Middleware(h)
	for range 2 {
		rec := do(t, h, "GET", "/s?a=%zz")
		assert.Empty(t, rec.Header().Get("X-Cache"))
	}
	assert.EqualValues(t, 2, runs.Load())
	assert.EqualValues(t, 2, c.Stats().Bypasses)
}

func TestMethods(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		t.Run("POST is never served the GET response", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{}).Middleware(h)
			assert.Equal(t, "page 1", do(t, h, "GET", "/form").Body.String())
			post := do(t, h, "POST", "/form")
			assert.Equal(t, "page 2", post.Body.String())
			assert.Empty(t, post.Header().Get("X-Cache"), "POST bypasses the cache")
			assert.Equal(t, "page 3", do(t, h, "POST", "/form").Body.String())
			assert.Equal(t, "page 1", do(t, h, "GET", "/form").Body.String(), "and does not fill it")
			assert.EqualValues(t, 3, runs.Load())
		})
		t.Run("HEAD is answered from GET's entry", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{}).Middleware(h)
			get := do(t, h, "GET", "/p")
			head := do(t, h, "HEAD", "/p")
			assert.Equal(t, "HIT", head.Header().Get("X-Cache"))
			assert.Empty(t, head.Body.String())
			assert.Equal(t, strconv.Itoa(get.Body.Len()), head.Header().Get("Content-Length"))
			assert.Equal(t, get.Header().Get("Content-Type"), head.Header().Get("Content-Type"))
			assert.EqualValues(t, 1, runs.Load())
		})
		t.Run("HEAD misses are not stored", func(t *testing.T) {
			var runs atomic.Int64
			h := New(open(t), Options{}).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				if r.Method == http.MethodHead {
					return // headers only, as many handlers do
				}
				_, _ = io.WriteString(w, "full page")
			}))
			assert.Equal(t, "MISS", do(t, h, "HEAD", "/p").Header().Get("X-Cache"))
			assert.Equal(t, "full page", do(t, h, "GET", "/p").Body.String())
			assert.Equal(t, "full page", do(t, h, "GET", "/p").Body.String())
			assert.EqualValues(t, 2, runs.Load())
		})
		t.Run("configured methods are cached apart", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{Methods: []string{"GET", "POST"}}).Middleware(h)
			assert.Equal(t, "page 1", do(t, h, "GET", "/q").Body.String())
			assert.Equal(t, "page 2", do(t, h, "POST", "/q").Body.String())
			assert.Equal(t, "page 2", do(t, h, "POST", "/q").Body.String())
			assert.Equal(t, "page 1", do(t, h, "GET", "/q").Body.String())
			assert.Empty(t, do(t, h, "HEAD", "/q").Header().Get("X-Cache"), "HEAD is not in Methods")
			assert.EqualValues(t, 3, runs.Load())
		})
	})
}

func TestStatuses(t *testing.T) {
	tests := []struct {
		name       string
		statuses   []int
		status     int
		wantStored bool
	}{
		{"200 is stored", nil, 200, true},
		{"500 is not (Flask caches it)", nil, 500, false},
		{"404 is not", nil, 404, false},
		{"301 is not", nil, 301, false},
		{"203 is not by default", nil, 203, false},
		{"configured 404 is", []int{200, 404}, 404, true},
		{"configured list replaces 200", []int{404}, 200, false},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := New(open(t), Options{Statuses: tt.statuses})
				h, runs := page(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(tt.status) })
				h = c.Middleware(h)
				for range 2 {
					assert.Equal(t, tt.status, do(t, h, "GET", "/p").Code)
				}
				wantRuns := map[bool]int64{true: 1, false: 2}[tt.wantStored]
				assert.Equal(t, wantRuns, runs.Load())
				assert.Equal(t, map[bool]uint64{true: 0, false: 2}[tt.wantStored], c.Stats().NotStored)
			})
		}
	})
}

func TestResponsesForOneUserAreNeverStored(t *testing.T) {
	tests := []struct {
		name       string
		set        func(w http.ResponseWriter)
		wantStored bool
	}{
		{"plain response", func(http.ResponseWriter) {}, true},
		{"public with max-age", func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "public, max-age=60") }, true},
		{"sets a cookie", func(w http.ResponseWriter) {
			http.SetCookie(w, &http.Cookie{Name: "session", Value: "secret"})
		}, false},
		{"private", func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "private") }, false},
		{"private with field names", func(w http.ResponseWriter) { w.Header().Set("Cache-Control", `max-age=60, private="X-User"`) }, false},
		{"no-store among others", func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "public, No-Store") }, false},
		{"no-cache", func(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-cache") }, false},
		{"in a second Cache-Control line", func(w http.ResponseWriter) {
			w.Header().Add("Cache-Control", "max-age=60")
			w.Header().Add("Cache-Control", "private")
		}, false},
		{"Vary Cookie, keyed on the cookie", func(w http.ResponseWriter) { w.Header().Set("Vary", "Cookie") }, true},
		{"Vary *", func(w http.ResponseWriter) { w.Header().Set("Vary", "Accept-Encoding, *") }, false},
		{"an event stream", func(w http.ResponseWriter) { w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8") }, false},
		{"declared trailer", func(w http.ResponseWriter) { w.Header().Set("Trailer", "X-Sum") }, false},
		{"Content-Length that lies", func(w http.ResponseWriter) { w.Header().Set("Content-Length", "100") }, false},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := New(open(t), Options{})
				h, runs := page(func(w http.ResponseWriter, _ *http.Request) { tt.set(w) })
				h = c.Middleware(h)
				first := do(t, h, "GET", "/me")
				second := do(t, h, "GET", "/me")
				assert.Equal(t, "MISS", first.Header().Get("X-Cache"))
				if tt.wantStored {
					assert.Equal(t, "HIT", second.Header().Get("X-Cache"))
					assert.EqualValues(t, 1, runs.Load())
					return
				}
				assert.Equal(t, "MISS", second.Header().Get("X-Cache"))
				assert.Equal(t, "page 2", second.Body.String())
				assert.EqualValues(t, 2, runs.Load())
				assert.EqualValues(t, 2, c.Stats().NotStored)
			})
		}
	})
}

func TestTrailersSetAfterTheHeaderAreNotStored(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		_, _ = io.WriteString(w, "body")
		w.Header().Set(http.TrailerPrefix+"X-Sum", "abc")
	}))
	do(t, h, "GET", "/t")
	do(t, h, "GET", "/t")
	assert.EqualValues(t, 2, runs.Load())
}

func TestAuthorizedRequests(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		t.Run("bypass by default", func(t *testing.T) {
			c := New(open(t), Options{})
			h, runs := page(nil)
			h = c.Middleware(h)
			assert.Equal(t, "page 1", do(t, h, "GET", "/account").Body.String())
			authed := do(t, h, "GET", "/account", "Authorization", "Bearer alice")
			assert.Equal(t, "page 2", authed.Body.String(), "not served the anonymous page")
			assert.Empty(t, authed.Header().Get("X-Cache"))
			assert.Equal(t, "page 3", do(t, h, "GET", "/account", "Authorization", "Bearer bob").Body.String(), "nor alice's")
			assert.EqualValues(t, 2, c.Stats().Bypasses)
			assert.EqualValues(t, 3, runs.Load())
		})
		t.Run("CacheAuthorized", func(t *testing.T) {
			h, runs := page(nil)
			h = New(open(t), Options{CacheAuthorized: true}).Middleware(h)
			do(t, h, "GET", "/docs", "Authorization", "Basic x")
			assert.Equal(t, "HIT", do(t, h, "GET", "/docs", "Authorization", "Basic y").Header().Get("X-Cache"))
			assert.EqualValues(t, 1, runs.Load())
		})
	})
}

func TestUnlessAndForcedUpdate(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		t.Run("Unless bypasses", func(t *testing.T) {
			c := New(open(t), Options{Unless: func(r *http.Request) bool { return r.URL.Query().Get("preview") == "1" }})
			h, runs := page(nil)
			h = c.Middleware(h)
			do(t, h, "GET", "/p")
			preview := do(t, h, "GET", "/p?preview=1")
			assert.Equal(t, "page 2", preview.Body.String())
			assert.Empty(t, preview.Header().Get("X-Cache"))
			assert.Equal(t, "page 3", do(t, h, "GET", "/p?preview=1").Body.String(), "nothing stored for it either")
			assert.Equal(t, "page 1", do(t, h, "GET", "/p").Body.String())
			assert.EqualValues(t, 3, runs.Load())
		})
		t.Run("ForcedUpdate replaces the entry", func(t *testing.T) {
			c := New(open(t), Options{
				IgnoreQuery:  true,
				ForcedUpdate: func(r *http.Request) bool { return r.URL.Query().Has("refresh") },
			})
			h, _ := page(nil)
			h = c.Middleware(h)
			steps := []struct{ target, want, hit string }{
				{"/p", "page 1", "MISS"},
				{"/p", "page 1", "HIT"},
				{"/p?refresh", "page 2", "MISS"},
				{"/p", "page 2", "HIT"},
			}
			for i, s := range steps {
				rec := do(t, h, "GET", s.target)
				assert.Equal(t, s.want, rec.Body.String(), "step %d", i)
				assert.Equal(t, s.hit, rec.Header().Get("X-Cache"), "step %d", i)
			}
		})
	})
}

func TestResponseFilter(t *testing.T) {
	var seen *Response
	tests := []struct {
		name       string
		filter     func(*http.Request, *Response) bool
		wantStored bool
	}{
		{"accepts", func(_ *http.Request, resp *Response) bool { seen = resp; return true }, true},
		{"refuses", func(*http.Request, *Response) bool { return false }, false},
		{"by body", func(_ *http.Request, resp *Response) bool { return !bytes.Contains(resp.Body, []byte("page")) }, false},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h, runs := page(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-A", "1") })
				h = New(open(t), Options{ResponseFilter: tt.filter}).Middleware(h)
				do(t, h, "GET", "/f")
				do(t, h, "GET", "/f")
				assert.Equal(t, map[bool]int64{true: 1, false: 2}[tt.wantStored], runs.Load())
			})
		}
	})
	require.NotNil(t, seen)
	assert.Equal(t, http.StatusOK, seen.Status)
	assert.Equal(t, "1", seen.Header.Get("X-A"))
	assert.Equal(t, "page 1", string(seen.Body))

	t.Run("cannot override the rules", func(t *testing.T) {
		h, runs := page(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Cache-Control", "private") })
		h = New(backends.New(backends.NewSimple(0), backends.CacheOptions{}),
			Options{ResponseFilter: func(*http.Request, *Response) bool { return true }}).Middleware(h)
		do(t, h, "GET", "/f")
		do(t, h, "GET", "/f")
		assert.EqualValues(t, 2, runs.Load())
	})
}

func TestHitHeader(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		header     string
		wantValues []string // miss, hit
	}{
		{"default", Options{}, "X-Cache", []string{"MISS", "HIT"}},
		{"custom name", Options{HitHeader: "X-Page-Cache"}, "X-Page-Cache", []string{"MISS", "HIT"}},
		{"disabled", Options{NoHitHeader: true}, "X-Cache", []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := page(nil)
			h = New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), tt.opts).Middleware(h)
			for i, want := range tt.wantValues {
				assert.Equal(t, want, do(t, h, "GET", "/h").Header().Get(tt.header), "request %d", i)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	const def = 300 * time.Second
	tests := []struct {
		name    string
		timeout time.Duration
		set     *time.Duration // SetTimeout's argument, if the handler calls it
		wantSet bool
		want    time.Duration
	}{
		{"cache default", 0, nil, false, def},
		{"Options.Timeout", 7 * time.Second, nil, false, 7 * time.Second},
		{"NoExpiry", backends.NoExpiry, nil, false, backends.NoExpiry},
		{"handler chooses", 7 * time.Second, new(time.Minute), true, time.Minute},
		{"handler chooses never", 7 * time.Second, new(backends.NoExpiry), true, backends.NoExpiry},
		{"handler restores the option", 7 * time.Second, new(time.Duration(0)), true, 7 * time.Second},
		{"invalid handler timeout is ignored", 7 * time.Second, new(-5 * time.Second), false, 7 * time.Second},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				base := open(t)
				store, rec := record(backends.New(base.Backend(), backends.CacheOptions{KeyPrefix: base.KeyPrefix(), DefaultTimeout: def}))
				c := New(store, Options{Timeout: tt.timeout})
				h, _ := page(func(w http.ResponseWriter, _ *http.Request) {
					if tt.set != nil {
						assert.Equal(t, tt.wantSet, SetTimeout(w, *tt.set))
					}
				})
				do(t, c.Middleware(h), "GET", "/t")
				assert.Equal(t, tt.want, rec.TTL(t, base.KeyPrefix()+"view/http://example.com/t"))
			})
		}
	})
}

// unwrapping is middleware that wraps the ResponseWriter the way
// http.ResponseController expects.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// opaque wraps it without Unwrap.
type opaque struct{ http.ResponseWriter }

func TestSetTimeoutThroughOtherMiddleware(t *testing.T) {
	tests := []struct {
		name string
		wrap func(http.ResponseWriter) http.ResponseWriter
		want bool
	}{
		{"direct", func(w http.ResponseWriter) http.ResponseWriter { return w }, true},
		{"through Unwrap", func(w http.ResponseWriter) http.ResponseWriter { return unwrapping{unwrapping{w}} }, true},
		{"through a wrapper without Unwrap", func(w http.ResponseWriter) http.ResponseWriter { return opaque{w} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, rec := record(backends.New(backends.NewSimple(0), backends.CacheOptions{}))
			var got bool
			inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				got = SetTimeout(w, time.Hour)
				_, _ = io.WriteString(w, "x")
			})
			mw := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner.ServeHTTP(tt.wrap(w), r) })
			do(t, New(store, Options{}).Middleware(mw), "GET", "/w")
			assert.Equal(t, tt.want, got)
			assert.Equal(t, map[bool]time.Duration{true: time.Hour, false: backends.DefaultTimeout}[tt.want], rec.TTL(t, "view/http://example.com/w"))
		})
	}
	assert.False(t, SetTimeout(httptest.NewRecorder(), time.Hour), "a request the cache does not record")
}

func TestStoredHeaders(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hd := w.Header()
		hd.Set("Connection", "X-Conn-Only")
		hd.Set("X-Conn-Only", "1")
		hd.Set("Keep-Alive", "timeout=5")
		hd.Set("Upgrade", "h2c")
		hd.Set("Proxy-Authenticate", "Basic")
		hd.Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
		hd.Set("Content-Length", "5")
		hd.Set("X-Cache", "HIT") // the handler's own value is not stored
		hd.Set("X-Kept", "yes")
		_, _ = io.WriteString(w, "hello")
		hd.Set("X-After-Body", "too late") // not sent, so not stored
	}))
	miss := do(t, h, "GET", "/h")
	assert.Empty(t, miss.Header().Values("X-After-Body"), "not sent to the first client either, as net/http would not")
	hit := do(t, h, "GET", "/h")
	assert.Equal(t, "hello", hit.Body.String())
	for _, name := range []string{"Connection", "X-Conn-Only", "Keep-Alive", "Upgrade", "Proxy-Authenticate", "Date", "X-After-Body"} {
		assert.Empty(t, hit.Header().Values(name), name)
	}
	assert.Equal(t, "yes", hit.Header().Get("X-Kept"))
	assert.Equal(t, "5", hit.Header().Get("Content-Length"))
	assert.Equal(t, []string{"HIT"}, hit.Header().Values("X-Cache"))
}

func TestHeaderChangedAfterTheStatusOfAFlushedResponse(t *testing.T) {
	h := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{}).Middleware(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-After", "1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "streamed")
		}))
	for _, want := range []string{"MISS", "HIT"} {
		rec := do(t, h, "GET", "/f")
		assert.Equal(t, want, rec.Header().Get("X-Cache"))
		assert.Equal(t, "1", rec.Header().Get("X-Before"))
		assert.Empty(t, rec.Header().Values("X-After"))
		assert.Equal(t, "streamed", rec.Body.String())
	}
}

func TestEmptyResponses(t *testing.T) {
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter)
		body    string
	}{
		{"handler writes nothing", func(http.ResponseWriter) {}, ""},
		{"explicit 200 without body", func(w http.ResponseWriter) { w.WriteHeader(200) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			h := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{}).Middleware(
				http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { runs.Add(1); tt.handler(w) }))
			do(t, h, "GET", "/e")
			hit := do(t, h, "GET", "/e")
			assert.Equal(t, http.StatusOK, hit.Code)
			assert.Equal(t, tt.body, hit.Body.String())
			assert.Equal(t, "HIT", hit.Header().Get("X-Cache"))
			assert.EqualValues(t, 1, runs.Load())
		})
	}
}

func TestMaxBodySize(t *testing.T) {
	tests := []struct {
		name       string
		max        int64
		size       int
		wantStored bool
	}{
		{"within the default", 0, 1 << 10, true},
		{"over the default", 0, DefaultMaxBodySize + 1, false},
		{"exactly the limit", 100, 100, true},
		{"one over", 100, 101, false},
		{"no limit", -1, DefaultMaxBodySize + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Repeat("x", tt.size)
			var runs atomic.Int64
			h := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{MaxBodySize: tt.max}).Middleware(
				http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					runs.Add(1)
					for chunk := range 4 { // in pieces, so the limit is crossed mid-body
						_, _ = io.WriteString(w, body[chunk*len(body)/4:(chunk+1)*len(body)/4])
					}
				}))
			for range 2 {
				assert.Equal(t, len(body), do(t, h, "GET", "/big").Body.Len(), "always served whole")
			}
			assert.Equal(t, map[bool]int64{true: 1, false: 2}[tt.wantStored], runs.Load())
		})
	}
}

func TestDelete(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{})
		h, runs := page(nil)
		h = c.Middleware(h)
		ctx := t.Context()
		do(t, h, "GET", "/p?b=2&a=1")
		do(t, h, "GET", "/p")

		deleted, err := c.Delete(ctx, "http://example.com/p?b=2&a=1")
		require.NoError(t, err)
		assert.True(t, deleted)
		deleted, err = c.Delete(ctx, "http://example.com/p?b=2&a=1")
		require.NoError(t, err)
		assert.False(t, deleted)

		assert.Equal(t, "HIT", do(t, h, "GET", "/p").Header().Get("X-Cache"), "other entries stay")
		assert.Equal(t, "MISS", do(t, h, "GET", "/p?a=1&b=2").Header().Get("X-Cache"))
		assert.EqualValues(t, 3, runs.Load())

		_, err = c.Delete(ctx, "http://example.com/p?a=%zz")
		require.Error(t, err)
		_, err = c.Delete(ctx, "::not a url")
		require.Error(t, err)
		_, err = c.Delete(ctx, "/p")
		require.ErrorIs(t, err, errNoHost, "the host is part of the key")
		deleted, err = c.Delete(ctx, "https://example.com/p")
		require.NoError(t, err)
		assert.False(t, deleted, "https is another entry")
	})
}

func TestConcurrentMissesRunTheHandlerOnce(t *testing.T) {
	// Entry writes fail, so only deduplication keeps the waiters from
	// running the handler themselves.
	const requests = 8
	c := New(backends.New(failSets{backends.NewSimple(0)}, backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	release := make(chan struct{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		<-release
		w.Header().Set("X-Made", "once")
		_, _ = io.WriteString(w, "shared page")
	}))
	recs := make(chan *httptest.ResponseRecorder, requests)
	for range requests {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
			recs <- rec
		}()
	}
	testkit.Eventually(t, "every request but one waits", func() bool { return waiting(c) == requests-1 })
	close(release)
	hits := 0
	for range requests {
		rec := <-recs
		assert.Equal(t, "shared page", rec.Body.String())
		assert.Equal(t, "once", rec.Header().Get("X-Made"))
		if rec.Header().Get("X-Cache") == "HIT" {
			hits++
		}
	}
	assert.Equal(t, requests-1, hits, "waiters did not run the handler")
	assert.EqualValues(t, 1, runs.Load())
	assert.EqualValues(t, requests-1, c.Stats().Waits)
}

func TestWaitersNeverGetAResponseForOneUser(t *testing.T) {
	// One key for every user (the query is ignored), as a careless
	// configuration would give; the responses set a cookie, so each waiter
	// must run the handler for itself.
	const requests = 6
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{IgnoreQuery: true})
	release := make(chan struct{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if runs.Add(1) == 1 {
			<-release
		}
		user := r.URL.Query().Get("user")
		http.SetCookie(w, &http.Cookie{Name: "session", Value: user})
		_, _ = io.WriteString(w, "hello "+user)
	}))
	type result struct {
		user string
		rec  *httptest.ResponseRecorder
	}
	results := make(chan result, requests)
	serve := func(user string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/welcome?user="+user, nil))
		results <- result{user, rec}
	}
	go serve("first")
	testkit.Eventually(t, "the first request runs", func() bool { return runs.Load() == 1 })
	for i := range requests - 1 {
		go serve(fmt.Sprint("u", i))
	}
	testkit.Eventually(t, "the others wait", func() bool { return waiting(c) == requests-1 })
	close(release)
	for range requests {
		r := <-results
		assert.Equal(t, "hello "+r.user, r.rec.Body.String())
		cookies := r.rec.Result().Cookies()
		require.Len(t, cookies, 1)
		assert.Equal(t, r.user, cookies[0].Value)
		assert.Equal(t, "MISS", r.rec.Header().Get("X-Cache"))
	}
	assert.EqualValues(t, requests, runs.Load())
}

func TestPanickingLeaderReleasesWaiters(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	release := make(chan struct{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if runs.Add(1) == 1 {
			<-release
			panic("boom")
		}
		_, _ = io.WriteString(w, "recovered")
	}))
	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/p", nil))
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return runs.Load() == 1 })
	waiter := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/p", nil))
		waiter <- rec
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return waiting(c) == 1 })
	close(release)
	assert.Equal(t, "boom", <-leader, "the panic goes on up to net/http")
	assert.Equal(t, "recovered", (<-waiter).Body.String(), "the waiter ran the handler itself")
}

func TestWaiterLeavesWhenItsRequestEnds(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	release := make(chan struct{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		runs.Add(1)
		<-release
		_, _ = io.WriteString(w, "late")
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/p", nil))
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return runs.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/p", nil))
		waiter <- rec
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return waiting(c) == 1 })
	cancel()
	assert.Empty(t, (<-waiter).Body.String())
	close(release)
	<-done
	assert.EqualValues(t, 1, runs.Load())
}

func TestCancelledRequestIsNotStored(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	var runs atomic.Int64
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		_, _ = io.WriteString(w, "partial")
		if cancel, ok := r.Context().Value(ctxCancel{}).(context.CancelFunc); ok {
			cancel() // the client goes away mid-response
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	ctx = context.WithValue(ctx, ctxCancel{}, cancel)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/p", nil))
	assert.Equal(t, "MISS", do(t, h, "GET", "/p").Header().Get("X-Cache"))
	assert.EqualValues(t, 2, runs.Load())
}

type ctxCancel struct{}

// failingWriter is a client connection that breaks on the first write.
type failingWriter struct{ *httptest.ResponseRecorder }

func (failingWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestFailedClientWrite(t *testing.T) {
	t.Run("a response held back whole is stored", func(t *testing.T) {
		// The handler wrote into the cache's buffer, not to the client, so
		// the client's failure cannot have cut it short.
		c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
		h, runs := page(nil)
		h = c.Middleware(h)
		h.ServeHTTP(failingWriter{httptest.NewRecorder()}, httptest.NewRequest("GET", "/p", nil))
		assert.Equal(t, "HIT", do(t, h, "GET", "/p").Header().Get("X-Cache"))
		assert.EqualValues(t, 1, runs.Load())
	})
	t.Run("a flushed response is not", func(t *testing.T) {
		c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
		h, runs := page(func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() })
		h = c.Middleware(h)
		h.ServeHTTP(failingWriter{httptest.NewRecorder()}, httptest.NewRequest("GET", "/p", nil))
		assert.Equal(t, "MISS", do(t, h, "GET", "/p").Header().Get("X-Cache"))
		assert.EqualValues(t, 2, runs.Load())
	})
}

func TestBackendFailuresServeUncached(t *testing.T) {
	tests := []struct {
		name     string
		backend  backends.Backend
		wantRuns int64
		want     Stats
	}{
		{"down", broken{}, 3, Stats{BackendErrors: 3}},
		{"writes fail", failSets{backends.NewSimple(0)}, 3, Stats{Misses: 3, Runs: 3, BackendErrors: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := New(backends.New(tt.backend, backends.CacheOptions{}), Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			h, runs := page(nil)
			h = c.Middleware(h)
			for i := range 3 {
				rec := do(t, h, "GET", "/p")
				assert.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, fmt.Sprint("page ", i+1), rec.Body.String())
				assert.Equal(t, "MISS", rec.Header().Get("X-Cache"))
			}
			assert.Equal(t, tt.wantRuns, runs.Load())
			assert.Equal(t, tt.want, c.Stats())
			lines := testkit.LogLines(t, &logs)
			require.Len(t, lines, 1, "reports are rate-limited")
			assert.Equal(t, "WARN", lines[0]["level"])
			assert.Contains(t, lines[0]["err"], errBroken.Error())
		})
	}
}

func TestStoredValueThatIsNotAResponseIsAMiss(t *testing.T) {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	c := New(store, Options{Logger: slog.New(slog.DiscardHandler)})
	h, runs := page(nil)
	h = c.Middleware(h)
	require.NoError(t, store.Set(t.Context(), "view/p", "not a response"))
	assert.Equal(t, "page 1", do(t, h, "GET", "/p").Body.String())
	assert.Equal(t, "HIT", do(t, h, "GET", "/p").Header().Get("X-Cache"), "overwritten with the response")
	assert.EqualValues(t, 1, runs.Load())
}

func TestNewPanicsOnProgrammingErrors(t *testing.T) {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	assert.PanicsWithValue(t, "httpcache: nil *backends.Cache", func() { New(nil, Options{}) })
	assert.PanicsWithValue(t, "httpcache: negative Timeout -1s (use backends.NoExpiry for responses that never expire)",
		func() { New(store, Options{Timeout: -time.Second}) })
	assert.NotPanics(t, func() { New(store, Options{Timeout: backends.NoExpiry}) })
	assert.Same(t, store, New(store, Options{}).Store())
}

func TestHeadersFromOuterMiddlewareAreNotStored(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	var requestID atomic.Int64
	inner := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY") // changed by the handler: stored
		_, _ = io.WriteString(w, "page")
	}))
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", fmt.Sprint(requestID.Add(1)))
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
		inner.ServeHTTP(w, r)
	})
	do(t, outer, "GET", "/p")
	hit := do(t, outer, "GET", "/p")
	assert.Equal(t, "HIT", hit.Header().Get("X-Cache"))
	assert.Equal(t, "2", hit.Header().Get("X-Request-Id"), "the hit keeps its own request's ID")
	assert.Equal(t, "DENY", hit.Header().Get("X-Frame-Options"))
}
