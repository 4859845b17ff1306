package backends_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// TestRawBytes: GetRaw and SetRaw store bytes as they are, under the key
// prefix, with Set's timeout rules.
func TestRawBytes(t *testing.T) {
	ctx := t.Context()
	simple := backends.NewSimple(0)
	c := backends.New(simple, backends.CacheOptions{KeyPrefix: "p/"})
	raw := []byte("\xf5not an envelope\x00")

	require.NoError(t, c.SetRaw(ctx, "k", raw))
	stored, found, err := simple.Get(ctx, "p/k")
	require.NoError(t, err)
	require.True(t, found, "stored under the prefix")
	assert.Equal(t, raw, stored, "without an envelope")

	got, found, err := c.GetRaw(ctx, "k")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, raw, got)

	_, found, err = c.GetRaw(ctx, "absent")
	require.NoError(t, err)
	assert.False(t, found)

	require.ErrorIs(t, c.SetRaw(ctx, "k", raw, -2*time.Second), backends.ErrInvalidTimeout)
	require.ErrorIs(t, c.SetRaw(ctx, "k", raw, time.Second, time.Second), backends.ErrInvalidTimeout)

	require.NoError(t, c.SetRaw(ctx, "short", raw, time.Millisecond))
	require.Eventually(t, func() bool {
		_, found, err := c.GetRaw(ctx, "short")
		return err == nil && !found
	}, 10*time.Second, time.Millisecond, "the timeout reached the backend")
}

// TestRawBytesGoThroughTheBreaker: the raw path is guarded by the
// backend's circuit breaker like every other method (finding 3: httpcache
// reached the backend past the breaker).
func TestRawBytesGoThroughTheBreaker(t *testing.T) {
	f := &flaky{Backend: backends.NewSimple(0)}
	f.fail(context.DeadlineExceeded)
	br := backends.NewBreaker(f, backends.BreakerOptions{Failures: 2, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	c := backends.New(br, backends.CacheOptions{})
	for range 2 {
		_, _, err := c.GetRaw(t.Context(), "k")
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.Equal(t, backends.BreakerOpen, br.State(), "GetRaw's failures count")
	calls := f.calls.Load()
	_, _, err := c.GetRaw(t.Context(), "k")
	require.ErrorIs(t, err, backends.ErrBreakerOpen)
	require.ErrorIs(t, c.SetRaw(t.Context(), "k", []byte("v")), backends.ErrBreakerOpen)
	assert.Equal(t, calls, f.calls.Load(), "skipped calls do not reach the backend")
	assert.EqualValues(t, 2, br.Stats().Skipped)
}

// TestBytesEnvelope: a value built in place behind BytesEnvelope and
// stored with SetRaw is stored byte for byte as Set stores the same
// []byte, so every reader sees a []byte.
func TestBytesEnvelope(t *testing.T) {
	ctx := t.Context()
	for _, want := range [][]byte{{}, []byte("x"), []byte("<p>fragment</p>"), {0xF8, 0xF6, 0}} {
		simple := backends.NewSimple(0)
		c := backends.New(simple, backends.CacheOptions{KeyPrefix: "p/"})

		require.NoError(t, c.SetRaw(ctx, "raw", append([]byte(backends.BytesEnvelope), want...)))
		require.NoError(t, c.Set(ctx, "set", want))

		viaRaw, _, err := simple.Get(ctx, "p/raw")
		require.NoError(t, err)
		viaSet, _, err := simple.Get(ctx, "p/set")
		require.NoError(t, err)
		assert.Equal(t, viaSet, viaRaw, "stored bytes")

		v, err := c.GetValue(ctx, "raw")
		require.NoError(t, err)
		text, ok := v.Text()
		require.True(t, ok)
		assert.Equal(t, want, text)
		var got []byte
		found, err := c.Get(ctx, "raw", &got)
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, want, got)
	}
}
