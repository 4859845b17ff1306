package fragment

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A render is stored exactly as backends.Cache.Set stores the fragment
// (or, with a header, the headed fragment), whatever the way fill builds
// it: other processes and app code read it with Get.
func TestMissStoresWhatSetStores(t *testing.T) {
	for _, opts := range []Options{{}, {StaleWhileRevalidate: time.Minute}} {
		for _, frag := range []string{"<p>x</p>", "", "\xf8 starts with the header mark", "\xf6"} {
			ctx := context.Background()
			c, store := newTestCache(opts)
			call := Call{Site: testSite(), Timeout: 60, Name: "n"}
			out, err := c.Fragment(ctx, call, func(w io.Writer) error { _, err := io.WriteString(w, frag); return err })
			require.NoError(t, err)
			assert.Equal(t, frag, string(out))
			assert.Equal(t, len(out), cap(out), "an append to the fragment reallocates")

			stored, found, err := store.GetRaw(ctx, c.Key("n"))
			require.NoError(t, err)
			require.True(t, found)
			v, err := store.GetValue(ctx, c.Key("n"))
			require.NoError(t, err)
			text, ok := v.Text()
			require.True(t, ok, "stored as a []byte")
			got, m, ok := decodeValue(text)
			require.True(t, ok)
			assert.Equal(t, frag, string(got))
			assert.Equal(t, opts.StaleWhileRevalidate > 0, m.stale > 0, "goes stale only with a grace period")

			require.NoError(t, store.Set(ctx, "want", encodeValue([]byte(frag), c.headed, m)))
			want, _, err := store.GetRaw(ctx, "want")
			require.NoError(t, err)
			assert.Equal(t, want, stored, "%q with %+v: the bytes Set stores", frag, opts)
		}
	}
}

// A miss of a fragment that expired costs one allocation on a SimpleCache:
// the stored value, which is also what the block prints.
func TestMissOfAnExpiredFragmentAllocatesOnlyTheValue(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{})
	call := Call{Site: testSite(), Timeout: 60, Name: "n"}
	body, calls := countingBody("<ul><li>a</li></ul>")
	_, err := render(c, call, body)
	require.NoError(t, err)
	key := c.Key("n")
	stale := []byte("\xf6<ul><li>old</li></ul>")
	var w discardCounter
	allocs := testing.AllocsPerRun(100, func() {
		// Expired at once: the render overwrites the entry in place.
		if err := store.Backend().Set(ctx, key, stale, time.Nanosecond); err != nil {
			t.Fatal(err)
		}
		if err := c.Render(ctx, call, &w, body); err != nil {
			t.Fatal(err)
		}
	})
	assert.LessOrEqual(t, allocs, 1.0)
	assert.Greater(t, calls.Load(), int64(50), "the renders were misses")
}
