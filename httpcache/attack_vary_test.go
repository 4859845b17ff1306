package httpcache

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
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
