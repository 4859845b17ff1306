package redis_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Foreign values read back byte-identical through a real Redis server, the values written with a raw SET
// as redis-cli or a Python app would.
func TestForeignValuesFromRedisReadBackByteIdentical(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	c := backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{KeyPrefix: "flask_cache_"})
	ctx := context.Background()
	for i, raw := range backendtest.ForeignTexts {
		t.Run(fmt.Sprintf("%q", raw), func(t *testing.T) {
			key := fmt.Sprint("k", i)
			require.NoError(t, client.Set(ctx, "flask_cache_"+key, raw, backends.NoExpiry).Err())
			backendtest.AssertReadsBackRaw(t, c, key, raw)
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
