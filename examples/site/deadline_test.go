package main

import (
	"bytes"
	"context"
	"html"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// hangingBackends are the networked backends, each with the settings that
// reach a server a test started, and that server.
func hangingBackends(t *testing.T) map[string]func(t *testing.T) (map[string]any, *testservers.Server) {
	return map[string]func(t *testing.T) (map[string]any, *testservers.Server){
		"RedisCache": func(t *testing.T) (map[string]any, *testservers.Server) {
			srv := testservers.Redis(t)
			return map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr}, srv
		},
		"MemcachedCache": func(t *testing.T) (map[string]any, *testservers.Server) {
			srv := testservers.Memcached(t)
			return map[string]any{"CACHE_TYPE": "MemcachedCache", "CACHE_MEMCACHED_SERVERS": []string{srv.Addr}}, srv
		},
		"UWSGICache": func(t *testing.T) (map[string]any, *testservers.Server) {
			srv := testservers.UWSGI(t)
			return map[string]any{"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": testservers.UWSGICacheName + "@" + srv.Addr}, srv
		},
	}
}

// A page rendered under a 500 ms deadline returns soon after the deadline
// on every engine and every networked backend while the backend hangs
// (SIGSTOP: connections are accepted, nothing answers), with every block
// rendered uncached. The breaker is off, so that every block's backend call
// waits on the hung server and only the deadline bounds it. The figures
// are in BENCHMARKS.md; the bound asserted here is generous, for a loaded
// machine.
func TestRenderDeadlineWhileBackendHangs(t *testing.T) {
	const deadline = 500 * time.Millisecond
	for name, start := range hangingBackends(t) {
		t.Run(name, func(t *testing.T) {
			settings, srv := start(t)
			settings["CACHE_OPTIONS"] = map[string]any{"breaker_failures": 0}
			cfg, err := backends.FromMap(settings)
			require.NoError(t, err)
			store, err := backends.Open(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = store.Close() })
			s, err := newServer(&Shop{}, store, name, slog.New(slog.DiscardHandler))
			require.NoError(t, err)

			render := func(e engine, ctx context.Context) (string, time.Duration, error) {
				r := httptest.NewRequest("GET", "/"+e.Name()+"/", nil).WithContext(ctx)
				var buf bytes.Buffer
				begin := time.Now()
				err := e.Render(ctx, &buf, viewHome, s.newPage(r, e, "All products"))
				return buf.String(), time.Since(begin), err
			}
			for _, e := range s.engines { // warm: every block stored
				_, _, err := render(e, context.Background())
				require.NoError(t, err)
			}
			hits := s.fc.Stats().Hits
			for _, e := range s.engines {
				_, _, err := render(e, context.Background())
				require.NoError(t, err)
			}
			require.Greater(t, s.fc.Stats().Hits, hits, "the warm pages are hits")

			srv.Pause()
			for _, e := range s.engines {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				page, took, err := render(e, ctx)
				cancel()
				t.Logf("%s / %s: page rendered in %v under a %v deadline while the backend hangs", name, e.Name(), took.Round(time.Millisecond), deadline)
				require.NoError(t, err, e.Name())
				for _, p := range products {
					assert.Contains(t, html.UnescapeString(page), p.Name, e.Name())
				}
				assert.Less(t, took, deadline+1500*time.Millisecond, "%s: the deadline bounds the page", e.Name())
			}
			srv.Resume()
		})
	}
}
