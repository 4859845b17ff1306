package backends_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/memcached"
	fcredis "github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// SetItems stores items with their own timeouts, readable as Set stores
// them, on every kind of backend; Batches tells the networked ones.
func TestSetItems(t *testing.T) {
	mc := testservers.Memcached(t)
	memcached, err := memcached.New(memcached.Options{Servers: []string{mc.Addr}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = memcached.Close() })
	redisStore, _ := testkit.CountedRedis(t)
	for _, tt := range []struct {
		name    string
		store   *backends.Cache
		batches bool
	}{
		{"Simple", backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "p:"}), false},
		{"Redis", redisStore, true},
		{"Memcached", backends.New(memcached, backends.CacheOptions{KeyPrefix: "p:"}), true},
		{"Memcached behind a breaker", backends.New(backends.NewBreaker(memcached, backends.BreakerOptions{}), backends.CacheOptions{KeyPrefix: "q:"}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			assert.Equal(t, tt.batches, tt.store.Batches())
			items := []backends.Item{
				{Key: "a", Value: []byte("A")},
				{Key: "b", Value: "B", Timeout: time.Hour},
				{Key: "c", Value: 42, Timeout: backends.NoExpiry},
			}
			require.NoError(t, tt.store.SetItems(ctx, items))
			var s string
			var b []byte
			var n int
			found, err := tt.store.Get(ctx, "a", &b)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "A", string(b))
			found, err = tt.store.Get(ctx, "b", &s)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "B", s)
			found, err = tt.store.Get(ctx, "c", &n)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, 42, n)

			err = tt.store.SetItems(ctx, []backends.Item{{Key: "bad", Value: "x", Timeout: -time.Second}, {Key: "d", Value: "D"}})
			var ke *backends.KeyError
			require.ErrorAs(t, err, &ke)
			assert.Equal(t, "bad", ke.Key)
			require.ErrorIs(t, err, backends.ErrInvalidTimeout)
			has, err := tt.store.Has(ctx, "d")
			require.NoError(t, err)
			assert.True(t, has, "the other items are stored")
		})
	}
}

// On Redis, SetItems is one pipelined round trip and every key gets its
// own TTL.
func TestRedisSetItemsOneRoundTrip(t *testing.T) {
	store, rt := testkit.CountedRedis(t)
	ctx := context.Background()
	rt.Take()
	require.NoError(t, store.SetItems(ctx, []backends.Item{
		{Key: "short", Value: "s", Timeout: 10 * time.Second},
		{Key: "long", Value: "l", Timeout: time.Hour},
		{Key: "never", Value: "n", Timeout: backends.NoExpiry},
	}))
	n, sent := rt.Take()
	assert.Equal(t, 1, n, "%v", sent)
	client := store.Backend().(*fcredis.Backend).Client().(*redis.Client)
	short := client.PTTL(ctx, "short").Val()
	long := client.PTTL(ctx, "long").Val()
	assert.True(t, short > 0 && short <= 10*time.Second, "short: %v", short)
	assert.True(t, long > 10*time.Second && long <= time.Hour, "long: %v", long)
	assert.Equal(t, time.Duration(-1), client.PTTL(ctx, "never").Val(), "no TTL")
}

// A wrapper that does not pass SetEntries on turns batching off, even over
// a Batcher: SetItems could not reach the store in one call through it.
func TestBatchesThroughWrappers(t *testing.T) {
	store, _ := testkit.CountedRedis(t)
	inner := store.Backend()
	assert.True(t, backends.New(backends.NewBreaker(inner, backends.BreakerOptions{}), backends.CacheOptions{}).Batches())
	assert.False(t, backends.New(plainWrapper{inner}, backends.CacheOptions{}).Batches())
	assert.False(t, backends.New(backends.NewBreaker(backends.NewSimple(0), backends.BreakerOptions{}), backends.CacheOptions{}).Batches())
}

// plainWrapper wraps a Backend without passing SetEntries on.
type plainWrapper struct{ backends.Backend }

func (w plainWrapper) Unwrap() backends.Backend { return w.Backend }
