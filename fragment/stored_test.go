package fragment

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// Text another program stored under a fragment's key (a warm-up script, a
// raw SET) is served as it is: the envelope never takes text for a marker.
func TestRenderServesForeignTextByteIdentical(t *testing.T) {
	for _, raw := range []string{"bacon", "spam", "sausage", "1.5", "", "<b>\xff</b>"} {
		t.Run(raw, func(t *testing.T) {
			ctx := context.Background()
			c, store := newTestCache(Options{})
			require.NoError(t, store.Backend().Set(ctx, c.Key("n"), []byte(raw), backends.NoExpiry))
			body, calls := countingBody("rendered")

			out, err := render(c, Call{Site: testSite(), Name: "n"}, body)
			require.NoError(t, err)
			assert.Equal(t, raw, out)
			assert.Zero(t, calls.Load(), "a hit does not run the body")
			assert.Equal(t, Stats{Hits: 1}, c.Stats())
		})
	}
}

// A pickle Flask-Caching stored under the key is not a fragment: the block
// renders, overwrites it, and says so in the log.
func TestRenderTreatsAPickleAsALoggedMiss(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	c := New(store, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	key := c.Key("n")
	require.NoError(t, store.Backend().Set(ctx, key, []byte("!\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07<p>x</p>\x94."), backends.NoExpiry))
	body, calls := countingBody("<p>rendered</p>")

	out, err := render(c, Call{Site: testSite(), Name: "n"}, body)
	require.NoError(t, err)
	assert.Equal(t, "<p>rendered</p>", out)
	assert.EqualValues(t, 1, calls.Load())
	assert.Equal(t, Stats{Misses: 1, Renders: 1}, c.Stats())
	assert.Contains(t, logs.String(), "pickle")
	assert.Contains(t, logs.String(), testSite().String())

	var stored string
	_, err = store.Get(ctx, key, &stored)
	require.NoError(t, err)
	assert.Equal(t, out, stored, "the render overwrote the pickle")
}

// A hit writes the backend's bytes without copying or allocating.
func TestRenderHitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestCache(Options{})
	call := Call{Site: testSite(), Timeout: 60, Name: "n"}
	body, _ := countingBody("<ul><li>a</li></ul>")
	_, err := render(c, call, body)
	require.NoError(t, err)
	var w discardCounter
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Render(ctx, call, &w, body); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, 101*len("<ul><li>a</li></ul>"), int(w))
}

type discardCounter int

func (d *discardCounter) Write(p []byte) (int, error) {
	*d += discardCounter(len(p))
	return len(p), nil
}
