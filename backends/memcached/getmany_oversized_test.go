package memcached_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/memcached"
	"github.com/fragcache/fragcache/internal/testservers"
)

// TestGetManyWithAnOversizedValue: one value over max_value_size (written
// by a client with a larger limit) is a miss for its key, logged, and
// every other key of the GetMany is read.
func TestGetManyWithAnOversizedValue(t *testing.T) {
	srv := testservers.Memcached(t)
	ctx := context.Background()
	small, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}, MaxValueSize: 1000})
	require.NoError(t, err)
	defer small.Close()
	large, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}})
	require.NoError(t, err)
	defer large.Close()

	var logs bytes.Buffer
	c := backends.New(small, backends.CacheOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, c.Set(ctx, "a", "first"))
	require.NoError(t, c.Set(ctx, "c", "third"))
	require.NoError(t, large.Set(ctx, "big", bytes.Repeat([]byte("v"), 5000), backends.NoExpiry))

	vals, err := c.GetMany(ctx, "a", "big", "missing", "c")
	require.NoError(t, err, "one oversized value does not fail the others")
	require.Len(t, vals, 4)
	for i, want := range []string{"first", "", "", "third"} {
		if want == "" {
			assert.False(t, vals[i].Found(), "key %d is a miss", i)
			continue
		}
		var got string
		require.NoError(t, vals[i].Decode(&got))
		assert.Equal(t, want, got)
	}
	assert.Contains(t, logs.String(), `big`, "the oversized key is logged")

	_, _, err = small.Get(ctx, "big")
	require.ErrorIs(t, err, backends.ErrValueTooLarge, "Get of the key alone still says why")
}
