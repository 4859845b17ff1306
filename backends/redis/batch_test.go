package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/redistest"
	"github.com/fragcache/fragcache/internal/testkit"
)

// SetItems on Redis is one pipelined round trip, and every key gets its
// own TTL.
func TestSetItems(t *testing.T) {
	store, rt := redistest.CountedRedis(t)
	assert.True(t, store.Batches())
	testkit.CheckSetItems(t, store)
	ctx := context.Background()
	rt.Take()
	require.NoError(t, store.SetItems(ctx, []backends.Item{
		{Key: "short", Value: "s", Timeout: 10 * time.Second},
		{Key: "long", Value: "l", Timeout: time.Hour},
		{Key: "never", Value: "n", Timeout: backends.NoExpiry},
	}))
	n, sent := rt.Take()
	assert.Equal(t, 1, n, "%v", sent)
	client := store.Backend().(*redis.Backend).Client().(*goredis.Client)
	short := client.PTTL(ctx, "short").Val()
	long := client.PTTL(ctx, "long").Val()
	assert.True(t, short > 0 && short <= 10*time.Second, "short: %v", short)
	assert.True(t, long > 10*time.Second && long <= time.Hour, "long: %v", long)
	assert.Equal(t, time.Duration(-1), client.PTTL(ctx, "never").Val(), "no TTL")
}
