package backends_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// Null fails the conformance suite by design (it stores nothing), so its
// Flask-Caching semantics are pinned here instead.
func TestNull(t *testing.T) {
	ctx := t.Context()
	keys := []string{"a", "b", "c"}
	cases := []struct {
		name string
		op   func(b backends.Backend) (got, want any, err error)
	}{
		{"Set succeeds and Get still misses", func(b backends.Backend) (any, any, error) {
			if err := b.Set(ctx, "k", []byte("v"), backends.NoExpiry); err != nil {
				return nil, nil, err
			}
			v, found, err := b.Get(ctx, "k")
			return []any{v, found}, []any{[]byte(nil), false}, err
		}},
		{"GetMany misses every key", func(b backends.Backend) (any, any, error) {
			vs, err := b.GetMany(ctx, keys)
			return vs, make([][]byte, len(keys)), err
		}},
		{"SetMany succeeds", func(b backends.Backend) (any, any, error) {
			return nil, nil, b.SetMany(ctx, map[string][]byte{"k": []byte("v")}, time.Minute)
		}},
		{"Add reports true, even twice", func(b backends.Backend) (any, any, error) {
			first, err := b.Add(ctx, "k", []byte("v"), backends.NoExpiry)
			if err != nil {
				return nil, nil, err
			}
			second, err := b.Add(ctx, "k", []byte("v"), backends.NoExpiry)
			return []bool{first, second}, []bool{true, true}, err
		}},
		{"Delete of a key never set reports true", func(b backends.Backend) (any, any, error) {
			deleted, err := b.Delete(ctx, "never set")
			return deleted, true, err
		}},
		{"DeleteMany counts every key", func(b backends.Backend) (any, any, error) {
			n, err := b.DeleteMany(ctx, keys)
			return n, len(keys), err
		}},
		{"Has is false after Set", func(b backends.Backend) (any, any, error) {
			if err := b.Set(ctx, "k", []byte("v"), backends.NoExpiry); err != nil {
				return nil, nil, err
			}
			has, err := b.Has(ctx, "k")
			return has, false, err
		}},
		{"Inc returns delta every time", func(b backends.Backend) (any, any, error) {
			first, err := b.Inc(ctx, "n", 5, backends.NoExpiry)
			if err != nil {
				return nil, nil, err
			}
			second, err := b.Inc(ctx, "n", 5, backends.NoExpiry)
			return []int64{first, second}, []int64{5, 5}, err
		}},
		{"Cache.Dec returns minus delta", func(b backends.Backend) (any, any, error) {
			n, err := backends.New(b, backends.CacheOptions{}).Dec(ctx, "n", 3)
			return n, int64(-3), err
		}},
		{"Clear succeeds", func(b backends.Backend) (any, any, error) {
			return nil, nil, b.Clear(ctx, "")
		}},
		{"Close succeeds", func(b backends.Backend) (any, any, error) {
			return nil, nil, b.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, want, err := tc.op(backends.NewNull())
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}
