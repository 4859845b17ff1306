package memoize

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// TestStaleCopiesAreBoundedByBytes: results kept to return during an
// outage are bounded by their size, not only by their number (finding 5:
// 1000 results of 1 MiB each were 1 GiB).
func TestStaleCopiesAreBoundedByBytes(t *testing.T) {
	const (
		size  = 256 << 10
		calls = 100 // 25 MiB of results
		bound = 2 << 20
	)
	for _, tt := range []struct {
		name  string
		bytes int
		want  int64
	}{
		{"default", 0, DefaultStaleCopyBytes},
		{"StaleCopyBytes", bound, bound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
			m := Func(store, func(_ context.Context, i int) ([]byte, error) {
				return bytes.Repeat([]byte{byte(i)}, size), nil
			}, Options{Name: "big", Timeout: time.Minute, StaleWhileRevalidate: time.Minute, StaleCopyBytes: tt.bytes})
			grew := testkit.Retained(func() {
				for i := range calls {
					_, err := m.Call(t.Context(), i)
					require.NoError(t, err)
				}
				// Only what memoize keeps stays: the version key is
				// rewritten, the stored results go.
				require.NoError(t, store.Clear(t.Context()))
			})
			runtime.KeepAlive(m)
			t.Logf("retained %d KiB after %d results of %d KiB", grew>>10, calls, size>>10)
			// Encoded size is what is counted: allow the decoded form's
			// overhead and the heap's noise.
			assert.Less(t, grew, 2*tt.want+(1<<20))
		})
	}
}
