package backends_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
)

func TestForeignValuesReadBackByteIdentical(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, raw := range backendtest.ForeignTexts {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			require.NoError(t, s.Set(ctx, "k", []byte(raw), backends.NoExpiry))
			backendtest.AssertReadsBackRaw(t, c, "k", raw)
		})
	}
}

func TestForeignValueIsNotANumber(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	require.NoError(t, s.Set(ctx, "k", []byte("bacon"), backends.NoExpiry))
	var n int
	_, err := c.Get(ctx, "k", &n)
	assert.ErrorIs(t, err, backends.ErrDecode)
}

// A value starting with '!' is cachelib's pickle: not ours to read, and
// never to be taken for text.
func TestForeignPickleIsErrDecode(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, raw := range []string{"!", "!\x80\x04\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05bacon\x94.", "!bacon"} {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			require.NoError(t, s.Set(ctx, "k", []byte(raw), backends.NoExpiry))
			for _, dst := range []any{new(string), new([]byte), new(any), new(map[string]any)} {
				found, err := c.Get(ctx, "k", dst)
				assert.False(t, found)
				assert.ErrorIs(t, err, backends.ErrDecode, "into %T", dst)
				assert.ErrorContains(t, err, "pickle", "into %T", dst)
			}
			v, err := c.GetValue(ctx, "k")
			require.NoError(t, err)
			assert.True(t, v.Found())
			_, ok := v.Text()
			assert.False(t, ok, "Text")
			_, ok = v.Bytes()
			assert.False(t, ok, "Bytes")
		})
	}
}
