package memcached_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/memcached"
	"github.com/fragcache/fragcache/internal/testservers"
)

// TestMemcachedConnectionCap runs 1000 concurrent cold operations (a miss,
// then a write, as a cold render does) against one real memcached through a
// proxy that counts connections: every one succeeds and no more than
// max_conns are ever open. (Before the cap, such a burst opened hundreds of
// connections, and past memcached's own limit its ASCII refusal broke the
// binary protocol.) The idle limit equals the cap, so no connection is
// closed and redialled during the run and the proxy's count is exact.
func TestMemcachedConnectionCap(t *testing.T) {
	srv := testservers.Memcached(t)
	proxy := testservers.CountingProxy(t, "tcp", srv.Addr)
	const maxConns = 16
	c := openCache(t, map[string]any{
		"CACHE_TYPE":              "MemcachedCache",
		"CACHE_MEMCACHED_SERVERS": []string{proxy.Addr()},
		"CACHE_OPTIONS":           map[string]any{"max_conns": maxConns, "max_idle_conns": maxConns, "timeout": 60, "dial_timeout": 60},
	})
	ctx := context.Background()
	var g errgroup.Group
	for i := range 1000 {
		g.Go(func() error {
			key := "cold-" + strconv.Itoa(i)
			var v string
			if _, err := c.Get(ctx, key, &v); err != nil {
				return err
			}
			return c.Set(ctx, key, key)
		})
	}
	require.NoError(t, g.Wait())
	assert.LessOrEqual(t, proxy.Max(), maxConns)
	assert.Positive(t, proxy.Max())
	var v string
	found, err := c.Get(ctx, "cold-999", &v)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "cold-999", v)
}

func TestMemcachedMaxValueSize(t *testing.T) {
	srv := testservers.Memcached(t)
	ctx := context.Background()
	m, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}, MaxValueSize: 1000, DialTimeout: 30 * time.Second, Timeout: 30 * time.Second})
	require.NoError(t, err)
	defer m.Close()
	require.NoError(t, m.Set(ctx, "fits", bytes.Repeat([]byte("x"), 999), backends.NoExpiry), "999 bytes and the backend's 1-byte marker")
	err = m.Set(ctx, "big", bytes.Repeat([]byte("x"), 1000), backends.NoExpiry)
	require.ErrorIs(t, err, backends.ErrValueTooLarge)
	assert.ErrorContains(t, err, "max_value_size")

	_, err = memcached.New(memcached.Options{Spread: true, MaxValueSize: 1000, ChunkSize: 1000})
	require.ErrorIs(t, err, backends.ErrConfig, "a chunk must fit under the value limit")
	assert.ErrorContains(t, err, "max_value_size")

	for _, bad := range []memcached.Options{{MaxValueSize: -1}, {MaxConns: -1}} {
		_, err = memcached.New(bad)
		require.ErrorIs(t, err, backends.ErrConfig)
	}
	for _, opts := range []map[string]any{{"max_conns": 0}, {"max_conns": 1.5}, {"max_value_size": "big"}} {
		_, err := backends.Open(backends.Config{Type: "MemcachedCache", Settings: map[string]any{"CACHE_MEMCACHED_SERVERS": []string{srv.Addr}}, Options: opts})
		require.ErrorIs(t, err, backends.ErrConfig, "%v", opts)
	}
}
