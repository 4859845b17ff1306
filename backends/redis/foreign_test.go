package redis_test

import (
	"context"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// foreignTexts (as in backends' own tests) are values another program may write under a key: the
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

// Foreign values read back byte-identical through a real Redis server, the values written with a raw SET
// as redis-cli or a Python app would.
func TestForeignValuesFromRedisReadBackByteIdentical(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	c := backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{KeyPrefix: "flask_cache_"})
	ctx := context.Background()
	for i, raw := range foreignTexts {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			key := fmt.Sprint("k", i)
			require.NoError(t, client.Set(ctx, "flask_cache_"+key, raw, backends.NoExpiry).Err())
			assertReadsBackRaw(t, c, key, raw)
		})
	}
	t.Run("a pickle is ErrDecode", func(t *testing.T) {
		require.NoError(t, client.Set(ctx, "flask_cache_pickled", "!\x80\x04K\x2a.", backends.NoExpiry).Err())
		var s string
		_, err := c.Get(ctx, "pickled", &s)
		assert.ErrorIs(t, err, backends.ErrDecode)
	})
	t.Run("an integer written by INCR reads back as one", func(t *testing.T) {
		require.NoError(t, client.IncrBy(ctx, "flask_cache_counter", 41).Err())
		var n int64
		_, err := c.Get(ctx, "counter", &n)
		require.NoError(t, err)
		assert.Equal(t, int64(41), n)
	})
}
