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
	"github.com/fragcache/fragcache/internal/testservers"
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

// SetEntries keeps Set's rules: a value over MaxValueSize is refused by
// key (the others are stored), and a near-cached key is forgotten so the
// writer reads its own write.
func TestSetEntriesAsSet(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := context.Background()

	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	b := redis.New(client, redis.Options{MaxValueSize: 8})
	err := b.SetEntries(ctx, []backends.Entry{{Key: "big", Value: []byte("123456789"), TTL: backends.NoExpiry}, {Key: "ok", Value: []byte("1"), TTL: backends.NoExpiry}})
	require.ErrorIs(t, err, backends.ErrValueTooLarge)
	var ke *backends.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "big", ke.Key)
	_, found, err := b.Get(ctx, "ok")
	require.NoError(t, err)
	assert.True(t, found)

	in := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	key := nearPrefix + "k"
	require.NoError(t, in.be.Set(ctx, key, []byte("old"), backends.NoExpiry))
	v, _, err := in.be.Get(ctx, key) // now held near
	require.NoError(t, err)
	require.Equal(t, "old", string(v))
	require.NoError(t, in.be.SetEntries(ctx, []backends.Entry{{Key: key, Value: []byte("new"), TTL: backends.NoExpiry}}))
	v, _, err = in.be.Get(ctx, key)
	require.NoError(t, err)
	assert.Equal(t, "new", string(v), "read your own write")
}
