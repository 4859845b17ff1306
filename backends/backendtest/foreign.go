package backendtest

import (
	"context"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// ForeignTexts are values another program may write under a key (redis-cli,
// a Python app): the words whose first byte older envelopes took for their
// own markers ('b'acon, 's'pam, 's'ausage), text, binary and empty values.
// A backend's tests write them with the server's own client and check them
// with [AssertReadsBackRaw].
var ForeignTexts = []string{
	"bacon", "spam", "sausage", "eggs", "", "s", "b", "héllo, 世界", "12abc", "--1", "+5", "1.5",
	"99999999999999999999999", " 42", "\x00\xffbinary", "text with a \xf5 marker byte inside",
}

// WantForeignAny is what a foreign value decodes to in `any`: text as a
// string, other bytes as a []byte.
func WantForeignAny(s string) any {
	if utf8.ValidString(s) {
		return s
	}
	return []byte(s)
}

// AssertReadsBackRaw checks every way of reading a foreign value stored
// under key: into a string, a []byte and an any, and as a Value's Text and
// Bytes, each byte-identical to raw.
func AssertReadsBackRaw(t *testing.T, c *backends.Cache, key, raw string) {
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
	assert.Equal(t, WantForeignAny(raw), a, "into any")

	v, err := c.GetValue(ctx, key)
	require.NoError(t, err)
	text, ok := v.Text()
	assert.True(t, ok, "Text of a foreign value")
	assert.Equal(t, raw, string(text), "Text")
	text, ok = v.Bytes()
	assert.True(t, ok, "Bytes of a foreign value")
	assert.Equal(t, raw, string(text), "Bytes")
}
