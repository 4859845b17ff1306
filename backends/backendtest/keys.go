package backendtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// keyShapes are keys that break naive backends: protocol-hostile bytes,
// keys past memcached's 250-byte limit, and long keys that differ only at
// one end (a backend that truncates or hashes carelessly mixes them up).
var keyShapes = func() []struct{ name, key string } {
	long := strings.Repeat("k", 1500)
	return []struct{ name, key string }{
		{"a plain key", "plain"},
		{"the empty key", ""},
		{"a key with spaces", "a key with spaces"},
		{"a unicode key", "ключ-鍵-🔑"},
		{"a key of control characters", "\x00\x01\t\n\r\x1b\x7f"},
		{"a key of invalid UTF-8", "\xff\xfe\x80"},
		{"a key starting with !", "!bang"},
		{"a key of glob and regex characters", `*?[a-z]{1}\.+^$|()`},
		{"a 250-byte key", strings.Repeat("m", 250)},
		{"a 251-byte key", strings.Repeat("m", 251)},
		{"a 1500-byte key ending in a", long + "a"},
		{"a 1500-byte key ending in b", long + "b"},
		{"a 1500-byte key starting with b", "b" + long},
	}
}()

func (s *suite) testKeys(t *testing.T) {
	for _, prefix := range []string{"", "prefix:"} {
		t.Run(fmt.Sprintf("key prefix %q", prefix), func(t *testing.T) {
			// All shapes share one backend, so that keys that collide
			// overwrite each other's values and fail their rows.
			e := s.env(t)
			c := e.prefixed(prefix)
			value := func(name string) string { return "value of " + name }
			for _, ks := range keyShapes {
				require.NoError(t, c.Set(e.ctx, ks.key, value(ks.name)), "Set(%.60q)", ks.key)
			}
			for _, ks := range keyShapes {
				t.Run(ks.name+" keeps its own value through every operation", func(t *testing.T) {
					k := ks.key
					requireValue(t, e, c, k, value(ks.name))
					vs, err := c.GetMany(e.ctx, k)
					require.NoError(t, err)
					require.Len(t, vs, 1)
					assert.True(t, vs[0].Found(), "GetMany")
					has, err := c.Has(e.ctx, k)
					require.NoError(t, err)
					assert.True(t, has, "Has")
					added, err := c.Add(e.ctx, k, "other")
					require.NoError(t, err)
					assert.False(t, added, "Add over a live entry")

					deleted, err := c.Delete(e.ctx, k)
					require.NoError(t, err)
					assert.True(t, deleted, "Delete")
					requireMiss(t, e, c, k)

					n, err := c.Inc(e.ctx, k, 3)
					require.NoError(t, err)
					assert.Equal(t, int64(3), n, "Inc of the deleted key")
					require.NoError(t, c.SetMany(e.ctx, map[string]any{k: "again"}))
					requireValue(t, e, c, k, "again")
					count, err := c.DeleteMany(e.ctx, k)
					require.NoError(t, err)
					assert.Equal(t, 1, count, "DeleteMany")
					requireMiss(t, e, c, k)
				})
			}
		})
	}
}

// prefixes are three caches over one backend: two with different prefixes
// and one without any.
type prefixes struct {
	a, b, root *backends.Cache
}

func (e *env) prefixes() prefixes {
	return prefixes{a: e.prefixed("a:"), b: e.prefixed("b:"), root: e.c}
}

func (s *suite) testKeyPrefix(t *testing.T) {
	s.runRules(t, []rule{
		{"Set and Get under one prefix do not see the other prefix's value", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			require.NoError(t, p.b.Set(e.ctx, "k", "B"))
			requireValue(t, e, p.a, "k", "A")
			requireValue(t, e, p.b, "k", "B")
			requireMiss(t, e, p.root, "k")
		}},
		{"the prefix is prepended to the key verbatim", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			requireValue(t, e, p.root, "a:k", "A")
			_, found, err := e.b.Get(e.ctx, "a:k")
			require.NoError(t, err)
			assert.True(t, found, `Backend.Get("a:k")`)
		}},
		{"Add under one prefix ignores the other prefix's entry", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			added, err := p.b.Add(e.ctx, "k", "B")
			require.NoError(t, err)
			assert.True(t, added)
			requireValue(t, e, p.a, "k", "A")
			requireValue(t, e, p.b, "k", "B")
		}},
		{"Has under one prefix does not see the other prefix's entry", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			has, err := p.b.Has(e.ctx, "k")
			require.NoError(t, err)
			assert.False(t, has)
		}},
		{"Delete under one prefix leaves the other prefix's entry", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			require.NoError(t, p.b.Set(e.ctx, "k", "B"))
			deleted, err := p.a.Delete(e.ctx, "k")
			require.NoError(t, err)
			assert.True(t, deleted)
			requireMiss(t, e, p.a, "k")
			requireValue(t, e, p.b, "k", "B")
			deleted, err = p.root.Delete(e.ctx, "k")
			require.NoError(t, err)
			assert.False(t, deleted, "Delete without a prefix of a key that exists only under prefixes")
		}},
		{"DeleteMany under one prefix counts and removes only its own entries", func(t *testing.T, e *env) {
			p := e.prefixes()
			for _, k := range []string{"k1", "k2"} {
				require.NoError(t, p.a.Set(e.ctx, k, "A"))
				require.NoError(t, p.b.Set(e.ctx, k, "B"))
			}
			n, err := p.a.DeleteMany(e.ctx, "k1", "k2", "k3")
			require.NoError(t, err)
			assert.Equal(t, 2, n)
			requireValue(t, e, p.b, "k1", "B")
			requireValue(t, e, p.b, "k2", "B")
		}},
		{"GetMany and GetDict under one prefix miss the other prefix's entries", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			vs, err := p.b.GetMany(e.ctx, "k")
			require.NoError(t, err)
			require.Len(t, vs, 1)
			assert.False(t, vs[0].Found())
			m, err := p.b.GetDict(e.ctx, "k")
			require.NoError(t, err)
			assert.Empty(t, m)
		}},
		{"SetMany under one prefix does not write the other prefix's keys", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.SetMany(e.ctx, map[string]any{"k1": 1, "k2": 2}))
			requireMiss(t, e, p.b, "k1")
			requireMiss(t, e, p.b, "k2")
			requireValue(t, e, p.a, "k2", 2)
		}},
		{"Inc and Dec under one prefix do not touch the other prefix's counter", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "n", 10))
			n, err := p.b.Inc(e.ctx, "n", 1)
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			n, err = p.root.Dec(e.ctx, "n", 1)
			require.NoError(t, err)
			assert.Equal(t, int64(-1), n)
			requireValue(t, e, p.a, "n", 10)
		}},
		{"Clear under one prefix leaves the other prefix's and unprefixed keys", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			require.NoError(t, p.b.Set(e.ctx, "k", "B"))
			// Unprefixed bystanders: one equal to the prefix without its
			// colon, one holding the prefix in the middle.
			bystanders := []string{"k", "a", "b:a:k", "xa:k"}
			for _, k := range bystanders {
				require.NoError(t, p.root.Set(e.ctx, k, k))
			}
			require.NoError(t, p.a.Clear(e.ctx))
			requireMiss(t, e, p.a, "k")
			requireMiss(t, e, p.root, "a:k")
			requireValue(t, e, p.b, "k", "B")
			for _, k := range bystanders {
				requireValue(t, e, p.root, k, k)
			}
		}},
		{"Clear with an empty prefix removes every key", func(t *testing.T, e *env) {
			p := e.prefixes()
			require.NoError(t, p.a.Set(e.ctx, "k", "A"))
			require.NoError(t, p.b.Set(e.ctx, "k", "B"))
			require.NoError(t, p.root.Set(e.ctx, "k", "R"))
			require.NoError(t, p.root.Clear(e.ctx))
			requireMiss(t, e, p.a, "k")
			requireMiss(t, e, p.b, "k")
			requireMiss(t, e, p.root, "k")
		}},
		{"Clear of an empty cache succeeds", func(t *testing.T, e *env) {
			require.NoError(t, e.prefixed("a:").Clear(e.ctx))
			require.NoError(t, e.c.Clear(e.ctx))
		}},
		{"Clear takes glob characters in the prefix literally", func(t *testing.T, e *env) {
			// The bystanders match the prefix read as a glob pattern (as
			// Redis KEYS or SCAN MATCH would) or share its first bytes, but
			// none starts with it.
			checkLiteralClear(t, e, "g[ab]*?:", "gax:k", "gb-yz:k", "g[ab]x:k")
		}},
		{"Clear takes regular expression characters in the prefix literally", func(t *testing.T, e *env) {
			checkLiteralClear(t, e, "r.+(x|y):", "rabcx:k", "r.+y:k", "rzzy:k")
		}},
	})
}

// checkLiteralClear clears a cache with prefix and checks that only its own
// key went: none of the unprefixed bystanders did.
func checkLiteralClear(t *testing.T, e *env, prefix string, bystanders ...string) {
	t.Helper()
	c := e.prefixed(prefix)
	require.NoError(t, c.Set(e.ctx, "k", "mine"))
	for _, k := range bystanders {
		require.NoError(t, e.c.Set(e.ctx, k, k))
	}
	require.NoError(t, c.Clear(e.ctx))
	requireMiss(t, e, c, "k")
	for _, k := range bystanders {
		requireValue(t, e, e.c, k, k)
	}
}
