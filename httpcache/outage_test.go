package httpcache

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// TestOutageKeepsHerdProtection: while the backend fails, concurrent
// misses of one URL still run the handler once (finding 7), and every
// request gets its response; nothing is stored. Variants of a Vary
// response are told apart as when the backend answers.
func TestOutageKeepsHerdProtection(t *testing.T) {
	const n = 8
	for _, vary := range []bool{false, true} {
		t.Run(fmt.Sprint("vary=", vary), func(t *testing.T) {
			var running, runs atomic.Int64
			release := make(chan struct{})
			c := New(backends.New(broken{}, backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
			h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				running.Add(1)
				<-release
				if vary {
					w.Header().Set("Vary", "Accept-Language")
				}
				_, _ = fmt.Fprintf(w, "page for %q", r.Header.Get("Accept-Language"))
			}))
			var wg sync.WaitGroup
			for i := range n {
				lang := "en"
				if vary && i%2 == 1 {
					lang = "fr"
				}
				wg.Go(func() {
					rec := do(t, h, http.MethodGet, "http://shop.example/expensive", "Accept-Language", lang)
					assert.Equal(t, http.StatusOK, rec.Code)
					assert.Equal(t, fmt.Sprintf("page for %q", lang), rec.Body.String(), "each request gets its own variant")
				})
			}
			testkit.Eventually(t, "the requests are under way", func() bool {
				r := running.Load()
				return r == n || r == 1 && waiting(c) == n-1
			})
			close(release)
			wg.Wait()
			if vary {
				// The "fr" waiters cannot take the "en" response: they run
				// the handler again, once more at most per wave.
				assert.Less(t, runs.Load(), int64(n), "%d concurrent requests during an outage ran the handler %d times", n, runs.Load())
			} else {
				assert.EqualValues(t, 1, runs.Load(), "%d concurrent requests during an outage ran the handler %d times", n, runs.Load())
			}
		})
	}
}
