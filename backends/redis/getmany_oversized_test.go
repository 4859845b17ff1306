package redis_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
	goredis "github.com/redis/go-redis/v9"
)

// TestGetManyWithAnOversizedValue: one value over max_value_size (written
// by another client) is a miss for its key, logged, and every other key
// of the GetMany is read ("one key's trouble never loses another key").
func TestGetManyWithAnOversizedValue(t *testing.T) {
	srv := testservers.Redis(t)
	host, port := splitHostPort(t, srv.Addr)
	const limit = 64 << 10
	ctx := context.Background()
	var logs bytes.Buffer
	cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": port,
		"CACHE_KEY_PREFIX": "p/", "CACHE_OPTIONS": map[string]any{"max_value_size": limit}})
	require.NoError(t, err)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	require.NoError(t, c.Set(ctx, "a", "first"))
	require.NoError(t, c.Set(ctx, "c", "third"))
	// Written past the limit by another client (Redis itself takes 512 MB).
	big := writer(t, srv.Addr)
	require.NoError(t, big.Set(ctx, "p/big", strings.Repeat("v", limit+1), 0).Err())

	vals, err := c.GetMany(ctx, "a", "big", "missing", "c")
	require.NoError(t, err, "one oversized value does not fail the others")
	require.Len(t, vals, 4)
	for i, want := range []string{"first", "", "", "third"} {
		var got string
		if want == "" {
			assert.False(t, vals[i].Found(), "key %d is a miss", i)
			continue
		}
		require.NoError(t, vals[i].Decode(&got))
		assert.Equal(t, want, got)
	}
	assert.Contains(t, logs.String(), `big`, "the oversized key is logged")
	assert.Contains(t, logs.String(), "max_value_size")

	dict, err := c.GetDict(ctx, "a", "big")
	require.NoError(t, err)
	assert.Len(t, dict, 1)
}

// writer is a plain go-redis client, without fragcache's reply bound.
func writer(t *testing.T, addr string) *goredis.Client {
	client := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	return client
}
