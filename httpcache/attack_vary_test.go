package httpcache

import (
	"log/slog"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// TestAttackVaryFromOuterMiddleware: middleware outside the cache often
// sets Vary before calling the next handler (rs/cors adds "Vary: Origin" to
// every actual request, before the handler runs). The response's Vary then
// makes the cache store a variant and a vary marker, but storedHeader leaves
// Vary out of the stored entry (it was already there before the handler
// ran), so every read finds "Vary [] under a marker for [origin]": a bad
// entry, counted, logged, deleted. Such a page is never served from the
// cache, and every request writes it again.
func TestAttackVaryFromOuterMiddleware(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := New(open(t), Options{Logger: slog.New(slog.DiscardHandler)})
		inner, runs := page(nil)
		cached := c.Middleware(inner)
		cors := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Vary", "Origin") // as rs/cors does before calling the handler
			cached.ServeHTTP(w, r)
		})

		first := do(t, cors, http.MethodGet, "/p", "Origin", "https://a.example")
		assert.Equal(t, "MISS", first.Header().Get("X-Cache"))
		second := do(t, cors, http.MethodGet, "/p", "Origin", "https://a.example")
		assert.Equal(t, "HIT", second.Header().Get("X-Cache"), "the same request again should be a hit")
		assert.Equal(t, first.Body.String(), second.Body.String())
		assert.EqualValues(t, 1, runs.Load(), "the handler should run once")
		assert.Zero(t, c.Stats().BadEntries, "fragcache's own entry should never read as a bad entry")
	})
}

// TestVaryWhoeverSetsIt: the Vary a response is stored under is the one its
// client is sent, whoever set it (middleware outside the cache, the
// handler, both) and however it is written; a stored entry then always
// reads back as the response it was, never as a bad entry.
func TestVaryWhoeverSetsIt(t *testing.T) {
	tests := []struct {
		name     string
		outer    func(h http.Header) // before the cache
		inner    func(h http.Header) // in the handler
		wantVary []string            // what hits are sent
	}{
		{"outer middleware", func(h http.Header) { h.Add("Vary", "Origin") }, nil, []string{"Origin"}},
		{"outer middleware, lower-case name", func(h http.Header) { h["vary"] = []string{"Origin"} }, nil, []string{"Origin"}},
		{"outer and handler", func(h http.Header) { h.Add("Vary", "Origin") },
			func(h http.Header) { h.Add("Vary", "Accept-Encoding") }, []string{"Origin", "Accept-Encoding"}},
		{"handler, empty", nil, func(h http.Header) { h.Set("Vary", "") }, []string{""}},
		{"handler, commas only", nil, func(h http.Header) { h.Set("Vary", " , ") }, []string{" , "}},
		{"outer middleware, empty", func(h http.Header) { h.Set("Vary", "") }, nil, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
			inner, runs := page(func(w http.ResponseWriter, _ *http.Request) {
				if tt.inner != nil {
					tt.inner(w.Header())
				}
			})
			cached := c.Middleware(inner)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.outer != nil {
					tt.outer(w.Header())
				}
				cached.ServeHTTP(w, r)
			})
			first := do(t, h, http.MethodGet, "/p", "Origin", "https://a.example", "Accept-Encoding", "gzip")
			require.Equal(t, "MISS", first.Header().Get("X-Cache"))
			for range 3 {
				hit := do(t, h, http.MethodGet, "/p", "Origin", "https://a.example", "Accept-Encoding", "gzip")
				assert.Equal(t, "HIT", hit.Header().Get("X-Cache"))
				assert.Equal(t, first.Body.String(), hit.Body.String())
				assert.Equal(t, tt.wantVary, fieldValues(hit.Header(), "Vary"), "the Vary the client is sent, once")
			}
			other := do(t, h, http.MethodGet, "/p", "Origin", "https://b.example", "Accept-Encoding", "gzip")
			names, _ := varyNames(tt.wantVary)
			if slices.Contains(names, "origin") {
				assert.Equal(t, "MISS", other.Header().Get("X-Cache"), "another Origin is another variant")
			} else {
				assert.Equal(t, "HIT", other.Header().Get("X-Cache"))
			}
			assert.Zero(t, c.Stats().BadEntries, "an entry of our own read as a bad entry")
			assert.EqualValues(t, 1+boolInt(slices.Contains(names, "origin")), runs.Load())
		})
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
