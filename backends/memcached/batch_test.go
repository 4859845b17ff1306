package memcached_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/memcached"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// Memcached is a Batcher: SetItems stores items with their own timeouts
// through the pipelined SetMulti, behind a breaker too.
func TestSetItems(t *testing.T) {
	srv := testservers.Memcached(t)
	m, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	// Spread values chunked small, so that a value is several items.
	spread, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}, Spread: true, ChunkSize: 64, MaxValueSize: 1 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { _ = spread.Close() })
	for name, store := range map[string]*backends.Cache{
		"bare":             backends.New(m, backends.CacheOptions{KeyPrefix: "p:"}),
		"behind a breaker": backends.New(backends.NewBreaker(m, backends.BreakerOptions{}), backends.CacheOptions{KeyPrefix: "q:"}),
		"spread":           backends.New(spread, backends.CacheOptions{KeyPrefix: "s:"}),
	} {
		t.Run(name, func(t *testing.T) {
			assert.True(t, store.Batches())
			testkit.CheckSetItems(t, store)
		})
	}
}
