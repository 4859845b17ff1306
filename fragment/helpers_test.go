package fragment

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// deadline bounds every wait in these tests: a render that deadlocks fails
// the test instead of hanging it.
const deadline = 10 * time.Second

// testSite is the block position most tests render at.
func testSite() *Site { return &Site{Path: "shop/index.html", Line: 12, Col: 3} }

// newTestCache returns a fragment Cache over a fresh SimpleCache.
func newTestCache(opts Options) (*Cache, *backends.Cache) {
	store := backends.New(backends.NewSimple(0), backends.Options{})
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

// errBroken is what brokenBackend returns from every call.
var errBroken = errors.New("backend down")

// brokenBackend is a store that is unreachable: every call fails.
type brokenBackend struct{}

func (brokenBackend) Get(context.Context, string) ([]byte, bool, error) { return nil, false, errBroken }
func (brokenBackend) GetMany(context.Context, []string) ([][]byte, error) {
	return nil, errBroken
}
func (brokenBackend) Set(context.Context, string, []byte, time.Duration) error { return errBroken }
func (brokenBackend) SetMany(context.Context, map[string][]byte, time.Duration) error {
	return errBroken
}
func (brokenBackend) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errBroken
}
func (brokenBackend) Delete(context.Context, string) (bool, error)      { return false, errBroken }
func (brokenBackend) DeleteMany(context.Context, []string) (int, error) { return 0, errBroken }
func (brokenBackend) Has(context.Context, string) (bool, error)         { return false, errBroken }
func (brokenBackend) Inc(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errBroken
}
func (brokenBackend) Clear(context.Context, string) error { return errBroken }
func (brokenBackend) Close() error                        { return errBroken }

var _ backends.Backend = brokenBackend{}

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
