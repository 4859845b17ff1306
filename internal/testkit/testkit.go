// Package testkit holds what the tests of several fragcache packages share:
// a table of real caches to run a test over (SimpleCache and a real Redis
// from internal/testservers), a backend that records the TTL of every write,
// one that cannot be reached, one that records the context of each call
// (CtxSpy), a bounded poll, a fan-out of renders over goroutines (FanOut)
// and a check that keys are stored (AssertStored), heap measures (Retained,
// Allocated, and the decode bound DecodeBudget), and a decoder for JSON log
// output. It is imported by tests only.
package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// Deadline bounds every wait of Eventually: a test that deadlocks fails
// instead of hanging.
const Deadline = 10 * time.Second

// Eventually polls cond until it holds, failing the test after Deadline.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	stop := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(stop) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// NewCache returns a fresh, empty cache for one subtest.
type NewCache = func(t *testing.T) *backends.Cache

// ForEachCache runs test once over SimpleCache and once over a real Redis
// (one server per call; every cache it hands out has its own key prefix,
// starting with name, so subtests never see each other's entries). It
// opens Redis by name, so the calling test package imports backends/redis.
func ForEachCache(t *testing.T, name string, test func(t *testing.T, open NewCache)) {
	t.Run("simple", func(t *testing.T) {
		test(t, func(*testing.T) *backends.Cache {
			return backends.New(backends.NewSimple(0), backends.CacheOptions{})
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := testservers.Redis(t)
		var n atomic.Int64
		test(t, func(t *testing.T) *backends.Cache {
			c, err := backends.Open(backends.Config{
				Type:      "RedisCache",
				Settings:  map[string]any{"CACHE_REDIS_URL": "redis://" + srv.Addr},
				KeyPrefix: fmt.Sprintf("%s-test-%d:", name, n.Add(1)),
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			return c
		})
	})
}

// Recorder wraps a backend and records the TTL of every write by key, so
// tests can check timeouts without sleeping.
type Recorder struct {
	backends.Backend
	mu     sync.Mutex
	ttls   map[string]time.Duration
	writes int // Set, Add and Delete calls
}

// Record returns a cache like c whose writes go through a Recorder.
func Record(c *backends.Cache) (*backends.Cache, *Recorder) {
	r := &Recorder{Backend: c.Backend(), ttls: map[string]time.Duration{}}
	return backends.New(r, backends.CacheOptions{KeyPrefix: c.KeyPrefix(), DefaultTimeout: c.DefaultTimeout()}), r
}

// Set records ttl and stores.
func (r *Recorder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.note(key, ttl)
	return r.Backend.Set(ctx, key, value, ttl)
}

// Add records ttl and adds.
func (r *Recorder) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.note(key, ttl)
	return r.Backend.Add(ctx, key, value, ttl)
}

// Delete counts the write and deletes.
func (r *Recorder) Delete(ctx context.Context, key string) (bool, error) {
	r.mu.Lock()
	r.writes++
	r.mu.Unlock()
	return r.Backend.Delete(ctx, key)
}

func (r *Recorder) note(key string, ttl time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ttls[key] = ttl
	r.writes++
}

// TTL returns the TTL of the last write to key (with the cache prefix).
func (r *Recorder) TTL(t testing.TB, key string) time.Duration {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.ttls[key]
	require.True(t, ok, "no write to %q; writes: %v", key, r.ttls)
	return d
}

// Written returns every key written, with its TTL.
func (r *Recorder) Written() map[string]time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.ttls)
}

// Writes returns how many Set, Add and Delete calls reached the backend.
func (r *Recorder) Writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// LogLines decodes the JSON log records written to buf.
func LogLines(t testing.TB, buf *bytes.Buffer) []map[string]any {
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
