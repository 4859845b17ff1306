package backendtest

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

func (s *suite) testAdd(t *testing.T) {
	s.runRules(t, []rule{
		{"Add of a missing key stores it and reports true", func(t *testing.T, e *env) {
			added, err := e.c.Add(e.ctx, "k", "v")
			require.NoError(t, err)
			assert.True(t, added)
			requireValue(t, e, e.c, "k", "v")
		}},
		{"Add does not overwrite a live entry and reports false", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "old"))
			added, err := e.c.Add(e.ctx, "k", "new")
			require.NoError(t, err)
			assert.False(t, added)
			requireValue(t, e, e.c, "k", "old")
		}},
		{"Add does not overwrite an entry holding an empty string", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", ""))
			added, err := e.c.Add(e.ctx, "k", "new")
			require.NoError(t, err)
			assert.False(t, added)
			requireValue(t, e, e.c, "k", "")
		}},
		{"Add does not overwrite an entry holding nil", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", nil))
			added, err := e.c.Add(e.ctx, "k", "new")
			require.NoError(t, err)
			assert.False(t, added)
			requireValue(t, e, e.c, "k", nil)
		}},
		{"Add after Delete stores again", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "old"))
			_, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			added, err := e.c.Add(e.ctx, "k", "new")
			require.NoError(t, err)
			assert.True(t, added)
			requireValue(t, e, e.c, "k", "new")
		}},
	})
}

func (s *suite) testDelete(t *testing.T) {
	s.runRules(t, []rule{
		{"Delete of a live entry reports true and removes it", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "v"))
			deleted, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, deleted)
			requireMiss(t, e, e.c, "k")
		}},
		{"Delete of a missing key reports false", func(t *testing.T, e *env) {
			deleted, err := e.c.Delete(e.ctx, "missing")
			require.NoError(t, err)
			assert.False(t, deleted)
		}},
		{"a second Delete of a key reports false", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "v"))
			_, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			deleted, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			assert.False(t, deleted)
		}},
		{"Delete leaves other keys alone", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "v"))
			require.NoError(t, e.c.Set(e.ctx, "other", "o"))
			_, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			requireValue(t, e, e.c, "other", "o")
		}},
	})
}

func (s *suite) testHas(t *testing.T) {
	s.runRules(t, []rule{
		{"Has of a live entry is true", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", 1))
			has, err := e.c.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, has)
		}},
		{"Has of an entry holding an empty string is true", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", ""))
			has, err := e.c.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, has)
		}},
		{"Has of an entry holding nil is true", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", nil))
			has, err := e.c.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, has)
		}},
		{"Has of a missing key is false", func(t *testing.T, e *env) {
			has, err := e.c.Has(e.ctx, "missing")
			require.NoError(t, err)
			assert.False(t, has)
		}},
		{"Has of a deleted key is false", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", 1))
			_, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			has, err := e.c.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.False(t, has)
		}},
	})
}

func (s *suite) testGetMany(t *testing.T) {
	stored := map[string]any{"a": 1, "b": "two", "c": record{Name: "three"}}
	setABC := func(t *testing.T, e *env) {
		t.Helper()
		for k, v := range stored {
			require.NoError(t, e.c.Set(e.ctx, k, v))
		}
	}
	s.runRules(t, []rule{
		{"GetMany keeps key order and gives a zero Value for each miss", func(t *testing.T, e *env) {
			setABC(t, e)
			keys := []string{"x", "c", "a", "y", "b", "z"}
			vs, err := e.c.GetMany(e.ctx, keys...)
			require.NoError(t, err)
			require.Len(t, vs, len(keys))
			for i, k := range keys {
				want, ok := stored[k]
				if !ok {
					assert.False(t, vs[i].Found(), "GetMany()[%d] (%q) should miss", i, k)
					continue
				}
				dst := newDst(want)
				require.NoError(t, vs[i].Decode(dst), "GetMany()[%d] (%q)", i, k)
				assert.Equal(t, want, deref(dst), "GetMany()[%d] (%q)", i, k)
			}
		}},
		{"GetMany of a repeated key returns it at each position", func(t *testing.T, e *env) {
			setABC(t, e)
			vs, err := e.c.GetMany(e.ctx, "b", "b", "x", "b")
			require.NoError(t, err)
			require.Len(t, vs, 4)
			for _, i := range []int{0, 1, 3} {
				var got string
				require.NoError(t, vs[i].Decode(&got), "GetMany()[%d]", i)
				assert.Equal(t, "two", got)
			}
			assert.False(t, vs[2].Found())
		}},
		{"GetMany of no keys returns no values", func(t *testing.T, e *env) {
			setABC(t, e)
			vs, err := e.c.GetMany(e.ctx)
			require.NoError(t, err)
			assert.Empty(t, vs)
		}},
		{"GetDict holds exactly the keys that hit", func(t *testing.T, e *env) {
			setABC(t, e)
			m, err := e.c.GetDict(e.ctx, "a", "x", "b", "c", "y")
			require.NoError(t, err)
			require.Len(t, m, len(stored))
			for k, want := range stored {
				require.Contains(t, m, k)
				dst := newDst(want)
				require.NoError(t, m[k].Decode(dst), "GetDict()[%q]", k)
				assert.Equal(t, want, deref(dst), "GetDict()[%q]", k)
			}
		}},
	})
}

func (s *suite) testSetMany(t *testing.T) {
	s.runRules(t, []rule{
		{"SetMany stores every item", func(t *testing.T, e *env) {
			items := map[string]any{"int": 1, "string": "s", "bytes": []byte("b"), "struct": record{Name: "r"}, "nil": nil}
			require.NoError(t, e.c.SetMany(e.ctx, items))
			for k, v := range items {
				requireValue(t, e, e.c, k, v)
			}
		}},
		{"SetMany overwrites existing entries and leaves others", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "a", "old"))
			require.NoError(t, e.c.Set(e.ctx, "other", "o"))
			require.NoError(t, e.c.SetMany(e.ctx, map[string]any{"a": "new", "b": "new"}))
			requireValue(t, e, e.c, "a", "new")
			requireValue(t, e, e.c, "b", "new")
			requireValue(t, e, e.c, "other", "o")
		}},
		{"SetMany of no items succeeds", func(t *testing.T, e *env) {
			require.NoError(t, e.c.SetMany(e.ctx, map[string]any{}))
			require.NoError(t, e.c.SetMany(e.ctx, nil))
		}},
		{"SetMany stores the encodable items and names each one that failed without its prefix", func(t *testing.T, e *env) {
			c := e.prefixed("p:")
			err := c.SetMany(e.ctx, map[string]any{"good": 1, "bad": make(chan int)})
			var ke *backends.KeyError
			require.True(t, errors.As(err, &ke), "SetMany error %v is not a *KeyError", err)
			assert.Equal(t, "bad", ke.Key)
			requireValue(t, e, c, "good", 1)
			requireMiss(t, e, c, "bad")
		}},
	})
}

func (s *suite) testDeleteMany(t *testing.T) {
	setAll := func(t *testing.T, e *env, keys ...string) {
		t.Helper()
		for _, k := range keys {
			require.NoError(t, e.c.Set(e.ctx, k, k))
		}
	}
	s.runRules(t, []rule{
		{"DeleteMany continues past missing keys and counts the entries it removed", func(t *testing.T, e *env) {
			setAll(t, e, "a", "b", "c", "bystander")
			n, err := e.c.DeleteMany(e.ctx, "a", "missing", "b", "missing too", "c")
			require.NoError(t, err)
			assert.Equal(t, 3, n)
			for _, k := range []string{"a", "b", "c"} {
				requireMiss(t, e, e.c, k)
			}
			requireValue(t, e, e.c, "bystander", "bystander")
		}},
		{"DeleteMany starting with a missing key still deletes the rest", func(t *testing.T, e *env) {
			setAll(t, e, "a", "b")
			n, err := e.c.DeleteMany(e.ctx, "missing", "a", "b")
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			requireMiss(t, e, e.c, "a")
			requireMiss(t, e, e.c, "b")
		}},
		{"DeleteMany of only missing keys returns 0", func(t *testing.T, e *env) {
			n, err := e.c.DeleteMany(e.ctx, "x", "y")
			require.NoError(t, err)
			assert.Equal(t, 0, n)
		}},
		{"DeleteMany counts a repeated key once", func(t *testing.T, e *env) {
			setAll(t, e, "a")
			n, err := e.c.DeleteMany(e.ctx, "a", "a")
			require.NoError(t, err)
			assert.Equal(t, 1, n)
			requireMiss(t, e, e.c, "a")
		}},
		{"DeleteMany of no keys returns 0", func(t *testing.T, e *env) {
			setAll(t, e, "a")
			n, err := e.c.DeleteMany(e.ctx)
			require.NoError(t, err)
			assert.Equal(t, 0, n)
			requireValue(t, e, e.c, "a", "a")
		}},
	})
}
