package httpcache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

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

// do serves one request through h and returns the recorded response.
func do(t *testing.T, h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// page is a handler that counts its runs, lets set adjust the response and
// writes "page <n>" for its n-th run.
func page(set func(w http.ResponseWriter, r *http.Request)) (http.Handler, *atomic.Int64) {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := n.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if set != nil {
			set(w, r)
		}
		_, _ = io.WriteString(w, fmt.Sprintf("page %d", run))
	}), &n
}

type newCache = testkit.NewCache

func forEachCache(t *testing.T, test func(t *testing.T, open newCache)) {
	testkit.ForEachCache(t, "httpcache", test)
}

var record = testkit.Record

// waiting returns how many requests wait for another's handler run.
func waiting(c *Cache) int { return c.fills.waiters() }

// poison stores under key an entry with the given status, as an attacker
// with write access to the backend, or a corrupted store, would.
func poison(t *testing.T, c *Cache, key string, status int) {
	t.Helper()
	b, err := encodeEntry(&entry{status: 200, header: http.Header{}, body: []byte("x")})
	require.NoError(t, err)
	binary.BigEndian.PutUint16(b[12:], uint16(status))
	require.NoError(t, c.set(t.Context(), key, b, 0))
}
