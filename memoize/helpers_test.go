package memoize

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// deadline bounds every wait in these tests: a call that deadlocks fails
// the test instead of hanging it.
const deadline = 10 * time.Second

// newCache returns a fresh, empty cache for one subtest.
type newCache func(t *testing.T) *backends.Cache

// forEachCache runs test once over SimpleCache and once over a real Redis
// (one server per top-level test; every cache it hands out has its own key
// prefix, so subtests never see each other's entries).
func forEachCache(t *testing.T, test func(t *testing.T, open newCache)) {
	t.Run("simple", func(t *testing.T) {
		test(t, func(*testing.T) *backends.Cache {
			return backends.New(backends.NewSimple(0), backends.Options{})
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := testservers.Redis(t)
		var n atomic.Int64
		test(t, func(t *testing.T) *backends.Cache {
			c, err := backends.Open(backends.Config{
				Type:      "RedisCache",
				RedisURL:  "redis://" + srv.Addr,
				KeyPrefix: fmt.Sprintf("memoize-test-%d:", n.Add(1)),
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			return c
		})
	})
}

// recorder wraps a backend and records the TTL of every write by key, so
// tests can check timeouts without sleeping.
type recorder struct {
	backends.Backend
	mu     sync.Mutex
	ttls   map[string]time.Duration
	writes int // Set, Add and Delete calls
}

func record(c *backends.Cache) (*backends.Cache, *recorder) {
	r := &recorder{Backend: c.Backend(), ttls: map[string]time.Duration{}}
	return backends.New(r, backends.Options{KeyPrefix: c.KeyPrefix(), DefaultTimeout: c.DefaultTimeout()}), r
}

func (r *recorder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.ttls[key] = ttl
	r.writes++
	r.mu.Unlock()
	return r.Backend.Set(ctx, key, value, ttl)
}

func (r *recorder) Delete(ctx context.Context, key string) (bool, error) {
	r.mu.Lock()
	r.writes++
	r.mu.Unlock()
	return r.Backend.Delete(ctx, key)
}

// writeCount returns how many Set, Add and Delete calls reached the backend.
func (r *recorder) writeCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

func (r *recorder) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.mu.Lock()
	r.ttls[key] = ttl
	r.writes++
	r.mu.Unlock()
	return r.Backend.Add(ctx, key, value, ttl)
}

// ttl returns the TTL of the last write to key (with the cache prefix).
func (r *recorder) ttl(t *testing.T, key string) time.Duration {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.ttls[key]
	require.True(t, ok, "no write to %q; writes: %v", key, r.ttls)
	return d
}

// written returns every key written, with its TTL.
func (r *recorder) written() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Duration, len(r.ttls))
	for k, v := range r.ttls {
		out[k] = v
	}
	return out
}

var errBroken = errors.New("backend is down")

// broken fails every operation.
type broken struct{ backends.Backend }

func (broken) Get(context.Context, string) ([]byte, bool, error)   { return nil, false, errBroken }
func (broken) GetMany(context.Context, []string) ([][]byte, error) { return nil, errBroken }
func (broken) Set(context.Context, string, []byte, time.Duration) error {
	return errBroken
}
func (broken) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errBroken
}
func (broken) Delete(context.Context, string) (bool, error) { return false, errBroken }

// failSets fails writes of entries (not of version keys) only.
type failSets struct{ backends.Backend }

func (failSets) Set(context.Context, string, []byte, time.Duration) error { return errBroken }

// counted returns a function of one int that counts its runs and returns
// "r<arg>".
func counted() (func(context.Context, int) (string, error), *atomic.Int64) {
	var n atomic.Int64
	return func(_ context.Context, a int) (string, error) {
		n.Add(1)
		return fmt.Sprintf("r%d", a), nil
	}, &n
}

// logLines decodes the JSON log records written to buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
		lines = append(lines, rec)
	}
	return lines
}

// eventually polls cond until it holds, failing the test after deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	stop := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(stop) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
