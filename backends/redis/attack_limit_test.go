package redis_test

import (
	"bytes"
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
)

// TestAttackRedisStoresWhatItCannotRead (attack finding 9, ported from branch attack): the Redis backends refuse replies
// over CACHE_OPTIONS max_value_size, but Set, SetMany and Add do not check
// that limit (memcached, uWSGI and FileSystem do). A value over it is
// stored and can never be read back: every Get fails with
// ErrReplyTooLarge and costs a connection, and since fragments,
// memoized functions and httpcache treat a failed Get as "run uncached"
// and do not store after it, nothing overwrites the entry until it
// expires. (max_value_size set below an httpcache MaxBodySize or a large
// fragment is enough.) A write over the limit should be refused, as on
// the other backends.
func TestAttackRedisStoresWhatItCannotRead(t *testing.T) {
	srv := testservers.Redis(t)
	host, port := splitHostPort(t, srv.Addr)
	const limit = 1024
	b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": port,
		"CACHE_OPTIONS": map[string]any{"max_value_size": limit}})
	ctx := context.Background()
	tooBig, atLimit := bytes.Repeat([]byte("v"), limit+1), bytes.Repeat([]byte("w"), limit)

	for _, write := range []struct {
		name string
		do   func(key string, v []byte) error
	}{
		{"Set", func(key string, v []byte) error { return b.Set(ctx, key, v, backends.NoExpiry) }},
		{"SetMany", func(key string, v []byte) error {
			return b.SetMany(ctx, map[string][]byte{key: v}, backends.NoExpiry)
		}},
		{"Add", func(key string, v []byte) error { _, err := b.Add(ctx, key, v, backends.NoExpiry); return err }},
	} {
		t.Run(write.name, func(t *testing.T) {
			key := "too-big-" + write.name
			err := write.do(key, tooBig)
			require.ErrorIs(t, err, backends.ErrValueTooLarge, "a %d-byte value (limit %d)", len(tooBig), limit)
			assert.Contains(t, err.Error(), "max_value_size", "the error names the option")
			found, err := b.Has(ctx, key)
			require.NoError(t, err)
			assert.False(t, found, "nothing stored")

			require.NoError(t, write.do(key, atLimit), "a value at the limit is stored")
			got, found, err := b.Get(ctx, key)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, atLimit, got)
		})
	}
}

// New applies Options.MaxValueSize to a client the application built; a
// negative one is a configuration error on every operation.
func TestNewRefusesValuesOverMaxValueSize(t *testing.T) {
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	ctx := context.Background()

	b := redis.New(client, redis.Options{MaxValueSize: 8})
	require.ErrorIs(t, b.Set(ctx, "k", []byte("123456789"), backends.NoExpiry), backends.ErrValueTooLarge)
	require.NoError(t, b.Set(ctx, "k", []byte("12345678"), backends.NoExpiry))

	bad := redis.New(client, redis.Options{MaxValueSize: -1})
	_, _, err := bad.Get(ctx, "k")
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "MaxValueSize")
}
