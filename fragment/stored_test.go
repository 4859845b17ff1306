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

// A hit writes the backend's bytes without copying or allocating, with or
// without vary_on values and prefixes: the key is built and looked up in
// a buffer on the stack (keys up to keyBufLen bytes).
func TestRenderHitAllocatesNothing(t *testing.T) {
	const frag = "<ul><li>a</li></ul>"
	tests := []struct {
		name      string
		storeOpts backends.CacheOptions
		opts      Options
		call      Call
	}{
		{"named", backends.CacheOptions{}, Options{}, Call{Timeout: 60, Name: "n"}},
		{"vary_on string", backends.CacheOptions{}, Options{}, Call{Timeout: 60, Name: "n", VaryOn: []any{"alice"}}},
		{"vary_on values", backends.CacheOptions{}, Options{}, Call{Timeout: 60, Name: "n", VaryOn: []any{"alice", 42, true}}},
		{"unnamed, vary_on", backends.CacheOptions{}, Options{}, Call{Timeout: nil, VaryOn: []any{"alice"}}},
		{"store prefix", backends.CacheOptions{KeyPrefix: "app:"}, Options{}, Call{Timeout: 60, Name: "n", VaryOn: []any{"alice"}}},
		{"fragment prefix and version", backends.CacheOptions{KeyPrefix: "app:"}, Options{KeyPrefix: "f:", Version: "v2"},
			Call{Timeout: 60, Name: "n", VaryOn: []any{"alice"}}},
		{"unambiguous keys", backends.CacheOptions{}, Options{UnambiguousKeys: true}, Call{Timeout: 60, Name: "n_1", VaryOn: []any{"a%b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := New(backends.New(backends.NewSimple(0), tt.storeOpts), tt.opts)
			call := tt.call
			call.Site = testSite()
			body, calls := countingBody(frag)
			_, err := render(c, call, body)
			require.NoError(t, err)
			var w discardCounter
			allocs := testing.AllocsPerRun(100, func() {
				if err := c.Render(ctx, call, &w, body); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "Render")
			assert.Equal(t, 101*len(frag), int(w))
			allocs = testing.AllocsPerRun(100, func() {
				if _, err := c.Fragment(ctx, call, body); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "Fragment")
			assert.EqualValues(t, 1, calls.Load(), "every call after the first hit")
			assert.EqualValues(t, 202, c.Stats().Hits)
		})
	}
}

type discardCounter int

func (d *discardCounter) Write(p []byte) (int, error) {
	*d += discardCounter(len(p))
	return len(p), nil
}
