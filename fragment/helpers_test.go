package fragment

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// deadline bounds every wait in these tests: a render that deadlocks fails
// the test instead of hanging it.
const deadline = 10 * time.Second

// testSite is the block position most tests render at.
func testSite() *Site { return &Site{Path: "shop/index.html", Line: 12, Col: 3} }

// newTestCache returns a fragment Cache over a fresh SimpleCache.
func newTestCache(opts Options) (*Cache, *backends.Cache) {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	return New(store, opts), store
}

// countingBody returns a body that writes out, and the number of times it
// ran.
func countingBody(out string) (func(io.Writer) error, *atomic.Int64) {
	var n atomic.Int64
	return func(w io.Writer) error {
		n.Add(1)
		_, err := io.WriteString(w, out)
		return err
	}, &n
}

// render runs one block and returns what it wrote.
func render(c *Cache, call Call, body func(io.Writer) error) (string, error) {
	var buf bytes.Buffer
	err := c.Render(context.Background(), call, &buf, body)
	return buf.String(), err
}

// within runs f in a goroutine and fails the test if f has not returned
// after deadline, which is how a deadlock shows.
func within(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatal("render did not return: deadlock")
	}
}

// brokenBackend is a store that cannot be reached: every call fails with
// errBroken.
type brokenBackend = testkit.Failing

var errBroken = testkit.ErrDown

// spyBackend records the TTL of every Set and can be told to fail Sets;
// everything else goes to the backend it wraps.
type spyBackend struct {
	backends.Backend
	setErr error

	mu   sync.Mutex
	ttls map[string]time.Duration
}

func newSpy() *spyBackend {
	return &spyBackend{Backend: backends.NewSimple(0), ttls: map[string]time.Duration{}}
}

func (s *spyBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.setErr != nil {
		return s.setErr
	}
	s.mu.Lock()
	s.ttls[key] = ttl
	s.mu.Unlock()
	return s.Backend.Set(ctx, key, value, ttl)
}

// ttl returns the TTL key was last set with.
func (s *spyBackend) ttl(t *testing.T, key string) time.Duration {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ttl, ok := s.ttls[key]
	require.True(t, ok, "%q was never set", key)
	return ttl
}

// blockKey is the key a call's block stores under.
func (c *Cache) blockKey(call Call) (string, error) {
	b, err := c.appendKey(nil, call)
	if err != nil {
		return "", err
	}
	return c.keyString(b, call), nil
}
