package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// CheckSetItems checks backends.Cache.SetItems on store: items with their
// own timeouts are stored and read back as Set stores them, and an item
// with a bad timeout is reported by key without losing the others.
func CheckSetItems(t *testing.T, store *backends.Cache) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, store.SetItems(ctx, []backends.Item{
		{Key: "a", Value: []byte("A")},
		{Key: "b", Value: "B", Timeout: time.Hour},
		{Key: "c", Value: 42, Timeout: backends.NoExpiry},
	}))
	var s string
	var b []byte
	var n int
	found, err := store.Get(ctx, "a", &b)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "A", string(b))
	found, err = store.Get(ctx, "b", &s)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "B", s)
	found, err = store.Get(ctx, "c", &n)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, 42, n)

	err = store.SetItems(ctx, []backends.Item{{Key: "bad", Value: "x", Timeout: -time.Second}, {Key: "d", Value: "D"}})
	var ke *backends.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "bad", ke.Key)
	require.ErrorIs(t, err, backends.ErrInvalidTimeout)
	has, err := store.Has(ctx, "d")
	require.NoError(t, err)
	assert.True(t, has, "the other items are stored")
}
