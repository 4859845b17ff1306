package backends_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// countingBackend counts the reads that reach the backend it wraps.
type countingBackend struct {
	backends.Backend
	reads atomic.Int64
}

func (c *countingBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c.reads.Add(1)
	return c.Backend.Get(ctx, key)
}

func (c *countingBackend) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	c.reads.Add(1)
	return c.Backend.GetMany(ctx, keys)
}

func newStaleNear(t *testing.T, inner backends.Backend, staleness time.Duration) (*backends.NearCache, *countingBackend) {
	cb := &countingBackend{Backend: inner}
	n := backends.NewNearCache(cb, backends.NearCacheOptions{Staleness: staleness})
	t.Cleanup(func() { _ = n.Close() })
	return n, cb
}

func TestNearCacheServesAndDropsOwnWrites(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write func(n *backends.NearCache) error
		want  string // "" is a miss
	}{
		{"Set", func(n *backends.NearCache) error { return n.Set(ctx, "k", []byte("new"), 0) }, "new"},
		{"SetMany", func(n *backends.NearCache) error {
			return n.SetMany(ctx, map[string][]byte{"k": []byte("many")}, 0)
		}, "many"},
		{"Add after Delete", func(n *backends.NearCache) error {
			if _, err := n.Delete(ctx, "k"); err != nil {
				return err
			}
			_, err := n.Add(ctx, "k", []byte("added"), 0)
			return err
		}, "added"},
		{"Delete", func(n *backends.NearCache) error { _, err := n.Delete(ctx, "k"); return err }, ""},
		{"DeleteMany", func(n *backends.NearCache) error { _, err := n.DeleteMany(ctx, []string{"k"}); return err }, ""},
		{"Inc", func(n *backends.NearCache) error { _, err := n.Inc(ctx, "k", 1, 0); return err }, "8"},
		{"Clear", func(n *backends.NearCache) error { return n.Clear(ctx, "") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, cb := newStaleNear(t, backends.NewSimple(0), time.Hour)
			require.NoError(t, n.Set(ctx, "k", []byte("7"), 0))
			for i := range 3 {
				v, ok, err := n.Get(ctx, "k")
				require.NoError(t, err)
				require.True(t, ok)
				require.Equal(t, "7", string(v))
				require.Equal(t, int64(1), cb.reads.Load(), "read %d: only the first reaches the backend", i)
			}
			require.NoError(t, tc.write(n))
			v, ok, err := n.Get(ctx, "k")
			require.NoError(t, err)
			if tc.want == "" {
				assert.False(t, ok)
			} else {
				assert.Equal(t, tc.want, string(v))
			}
		})
	}

	t.Run("GetMany", func(t *testing.T) {
		n, cb := newStaleNear(t, backends.NewSimple(0), time.Hour)
		keys := make([]string, 5)
		for i := range keys {
			keys[i] = "m" + strconv.Itoa(i)
			if i != 3 {
				require.NoError(t, n.Set(ctx, keys[i], []byte(keys[i]), 0))
			}
		}
		_, _, err := n.Get(ctx, keys[0])
		require.NoError(t, err)
		for round := range 2 {
			before := cb.reads.Load()
			vals, err := n.GetMany(ctx, keys)
			require.NoError(t, err)
			for i, v := range vals {
				if i == 3 {
					assert.Nil(t, v)
				} else {
					assert.Equal(t, keys[i], string(v))
				}
			}
			assert.Equal(t, int64(1), cb.reads.Load()-before, "round %d: one backend GetMany (the absent key is never kept)", round)
		}
		before := cb.reads.Load()
		_, err = n.GetMany(ctx, keys[:3])
		require.NoError(t, err)
		assert.Equal(t, before, cb.reads.Load(), "every key near: no backend read")
		st := n.Stats()
		assert.Equal(t, 4, st.Entries)
		assert.False(t, st.Tracking)
	})
}

// TestNearCacheStaleness: another process's write (here, straight into the
// shared backend) is seen once the copy's staleness bound has passed, not
// before.
func TestNearCacheStaleness(t *testing.T) {
	ctx := context.Background()
	shared := backends.NewSimple(0)
	require.NoError(t, shared.Set(ctx, "k", []byte("old"), 0))

	long, _ := newStaleNear(t, shared, time.Hour)
	short, _ := newStaleNear(t, shared, 50*time.Millisecond)
	for _, n := range []*backends.NearCache{long, short} {
		v, _, err := n.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, "old", string(v))
	}
	require.NoError(t, shared.Set(ctx, "k", []byte("new"), 0)) // another process
	v, _, err := long.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "old", string(v), "within its staleness bound the copy is served")
	require.Eventually(t, func() bool {
		v, _, err := short.Get(ctx, "k")
		return err == nil && string(v) == "new"
	}, 10*time.Second, 5*time.Millisecond)
}

// serverLike is an in-process backend that looks networked: it pings (with
// the error it is given) and stores entries in one call.
type serverLike struct {
	backends.Backend
	pingErr error
	batches atomic.Int64
}

func (s *serverLike) Ping(context.Context) error { return s.pingErr }

func (s *serverLike) SetEntries(ctx context.Context, entries []backends.Entry) error {
	s.batches.Add(1)
	for _, e := range entries {
		if err := s.Backend.Set(ctx, e.Key, e.Value, e.TTL); err != nil {
			return err
		}
	}
	return nil
}

// A near cache must not hide what its backend is: a readiness probe
// through it reaches the server, and a batching backend still batches
// (its writes dropping the near copies like any other write).
func TestNearCacheKeepsPingAndBatching(t *testing.T) {
	ctx := context.Background()
	down := errors.New("server down")
	inner := &serverLike{Backend: backends.NewSimple(0), pingErr: down}
	n := backends.NewNearCache(inner, backends.NearCacheOptions{Staleness: time.Minute})
	t.Cleanup(func() { _ = n.Close() })
	c := backends.New(n, backends.CacheOptions{})

	require.ErrorIs(t, c.Ping(ctx), down, "Ping reaches the backend")
	inner.pingErr = nil
	require.NoError(t, c.Ping(ctx))

	require.True(t, c.Batches(), "a near cache over a Batcher batches")
	require.NoError(t, c.Set(ctx, "k", "old"))
	var v string
	_, err := c.Get(ctx, "k", &v) // now near-cached
	require.NoError(t, err)
	require.NoError(t, c.SetItems(ctx, []backends.Item{{Key: "k", Value: "new"}}))
	assert.EqualValues(t, 1, inner.batches.Load(), "one SetEntries call")
	found, err := c.Get(ctx, "k", &v)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "new", v, "SetEntries dropped the near copy")

	plain, _ := newStaleNear(t, backends.NewSimple(0), time.Minute)
	assert.False(t, backends.New(plain, backends.CacheOptions{}).Batches(), "not over a backend that does not batch")
	assert.NoError(t, backends.New(plain, backends.CacheOptions{}).Ping(ctx), "nothing to ping in process")
}
