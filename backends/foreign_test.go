package backends_test

import (
	"context"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// foreignTexts are values another program may write under a key: the
// words whose first byte older envelopes took for their own markers
// ('b'acon, 's'pam, 's'ausage), text, binary and empty values.
var foreignTexts = []string{
	"bacon", "spam", "sausage", "eggs", "", "s", "b", "héllo, 世界", "12abc", "--1", "+5", "1.5",
	"99999999999999999999999", " 42", "\x00\xffbinary", "text with a \xf5 marker byte inside",
}

// wantForeignAny is what a foreign value decodes to in `any`: text as a
// string, other bytes as a []byte.
func wantForeignAny(s string) any {
	if utf8.ValidString(s) {
		return s
	}
	return []byte(s)
}

// assertReadsBackRaw checks every way of reading a foreign value.
func assertReadsBackRaw(t *testing.T, c *backends.Cache, key, raw string) {
	t.Helper()
	ctx := context.Background()
	var s string
	found, err := c.Get(ctx, key, &s)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, raw, s, "into string")

	var b []byte
	_, err = c.Get(ctx, key, &b)
	require.NoError(t, err)
	assert.Equal(t, []byte(raw), b, "into []byte")

	var a any
	_, err = c.Get(ctx, key, &a)
	require.NoError(t, err)
	assert.Equal(t, wantForeignAny(raw), a, "into any")

	v, err := c.GetValue(ctx, key)
	require.NoError(t, err)
	text, ok := v.Text()
	assert.True(t, ok, "Text of a foreign value")
	assert.Equal(t, raw, string(text), "Text")
	text, ok = v.Bytes()
	assert.True(t, ok, "Bytes of a foreign value")
	assert.Equal(t, raw, string(text), "Bytes")
}

func TestForeignValuesReadBackByteIdentical(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, raw := range foreignTexts {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			require.NoError(t, s.Set(ctx, "k", []byte(raw), backends.NoExpiry))
			assertReadsBackRaw(t, c, "k", raw)
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
