package fragment

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/keys"
)

// keyCase is one block call, described so that two different calls have
// different descriptions.
type keyCase struct {
	named  bool
	name   string
	path   string
	line   int
	digest string
	vary   []string
}

func (k keyCase) call() Call {
	vary := make([]any, len(k.vary))
	for i, v := range k.vary {
		vary[i] = v
	}
	call := Call{Site: &Site{Path: k.path, Line: k.line, Digest: k.digest}, Timeout: 60, VaryOn: vary}
	if k.named {
		call.Name = k.name
		call.Site = &Site{Path: "t.html", Line: 1}
	}
	return call
}

func (k keyCase) String() string {
	if k.named {
		return fmt.Sprintf("name %q vary %q", k.name, k.vary)
	}
	return fmt.Sprintf("site %q:%d@%q vary %q", k.path, k.line, k.digest, k.vary)
}

// randomKeyCase draws parts from an alphabet full of the bytes that
// separate or escape parts.
func randomKeyCase(rng *rand.Rand) keyCase {
	const alphabet = "a_%5F2:@13A"
	str := func() string {
		b := make([]byte, rng.IntN(5))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	k := keyCase{named: rng.IntN(2) == 0}
	if k.named {
		k.name = str()
	} else {
		k.path, k.line = str(), rng.IntN(30)
		if rng.IntN(2) == 0 {
			k.digest = str()
		}
	}
	for range rng.IntN(3) {
		k.vary = append(k.vary, str())
	}
	return k
}

// TestUnambiguousKeysAreInjective: with UnambiguousKeys, no two different
// calls share a key (property test over calls made of separators and
// escapes); with Flask's keys, some do — which is why the mode exists.
func TestUnambiguousKeysAreInjective(t *testing.T) {
	for _, unambiguous := range []bool{true, false} {
		t.Run(fmt.Sprint("unambiguous=", unambiguous), func(t *testing.T) {
			c := New(backends.New(backends.NewNull(), backends.CacheOptions{}), Options{UnambiguousKeys: unambiguous, SourceDigest: true})
			rng := rand.New(rand.NewPCG(7, 13))
			seen := map[string]string{}
			collisions := 0
			for range 50000 {
				k := randomKeyCase(rng)
				key, err := c.blockKey(k.call())
				if err != nil {
					require.ErrorIs(t, err, ErrAmbiguousName)
					require.False(t, unambiguous, "only Flask's keys refuse paths ending in a digit")
					continue
				}
				if other, ok := seen[key]; ok && other != k.String() {
					collisions++
					if unambiguous {
						t.Fatalf("%s and %s share key %q", other, k, key)
					}
				}
				seen[key] = k.String()
			}
			if !unambiguous {
				assert.NotZero(t, collisions, "Flask's keys run parts together")
			}
		})
	}
}

// FuzzUnambiguousKey: two named calls share a key only if they are the
// same call. vary lists are given as strings split at NUL ("" for none).
func FuzzUnambiguousKey(f *testing.F) {
	f.Add("sidebar", "admin", "sidebar_admin", "")
	f.Add("a", "b_c", "a", "b\x00c")
	f.Add("%5F", "", "_", "")
	f.Add("a%", "5F", "a", "%5F")
	c := New(backends.New(backends.NewNull(), backends.CacheOptions{}), Options{UnambiguousKeys: true})
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\x00")
	}
	f.Fuzz(func(t *testing.T, name1, vary1, name2, vary2 string) {
		a := keyCase{named: true, name: name1, vary: split(vary1)}
		b := keyCase{named: true, name: name2, vary: split(vary2)}
		ka, err := c.blockKey(a.call())
		require.NoError(t, err)
		kb, err := c.blockKey(b.call())
		require.NoError(t, err)
		if ka == kb && a.String() != b.String() {
			t.Fatalf("%s and %s share key %q", a, b, ka)
		}
		assert.Equal(t, ka, c.Key(name1, a.vary...), "Key agrees with the key blocks store under")
	})
}

// TestUnambiguousKeysKeepBlocksApart: a vary_on value chosen to look like
// another block's name reaches that block's fragment with Flask's keys,
// not with UnambiguousKeys; Key and Delete reach what blocks store.
func TestUnambiguousKeysKeepBlocksApart(t *testing.T) {
	for _, unambiguous := range []bool{false, true} {
		t.Run(fmt.Sprint("unambiguous=", unambiguous), func(t *testing.T) {
			store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
			c := New(store, Options{UnambiguousKeys: unambiguous})
			admin, _ := countingBody("admin sidebar")
			_, err := render(c, Call{Site: testSite(), Timeout: 60, Name: "sidebar_admin"}, admin)
			require.NoError(t, err)
			attacker, _ := countingBody("the visitor's sidebar")
			out, err := render(c, Call{Site: testSite(), Timeout: 60, Name: "sidebar", VaryOn: []any{"admin"}}, attacker)
			require.NoError(t, err)
			if !unambiguous {
				assert.Equal(t, "admin sidebar", out, "Flask's key: vary_on \"admin\" reads block sidebar_admin")
				assert.Equal(t, keys.MakeTemplateFragmentKey("sidebar", "admin"), c.Key("sidebar", "admin"))
				return
			}
			assert.Equal(t, "the visitor's sidebar", out)
			ctx := t.Context()
			for _, k := range []struct {
				name string
				vary []string
			}{{"sidebar_admin", nil}, {"sidebar", []string{"admin"}}} {
				found, err := store.Has(ctx, c.Key(k.name, k.vary...))
				require.NoError(t, err)
				assert.True(t, found, "Key(%q, %q) is where the block stored", k.name, k.vary)
				deleted, err := c.Delete(ctx, k.name, k.vary...)
				require.NoError(t, err)
				assert.True(t, deleted)
			}
		})
	}
}

// TestUnambiguousUnnamedKeys: unnamed blocks are "%:path:line", so paths
// ending in a digit are told apart instead of refused.
func TestUnambiguousUnnamedKeys(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{UnambiguousKeys: true})
	for _, tt := range []struct {
		site *Site
		want string
	}{
		{&Site{Path: "wizard/step1", Line: 23}, "_template_fragment_cache_%:wizard/step1:23"},
		{&Site{Path: "wizard/step12", Line: 3}, "_template_fragment_cache_%:wizard/step12:3"},
		{&Site{Path: "my_page:v2.html", Line: 3}, "_template_fragment_cache_%:my%5Fpage%3Av2.html:3"},
	} {
		key, err := c.blockKey(Call{Site: tt.site, Timeout: 60})
		require.NoError(t, err)
		assert.Equal(t, tt.want, key)
	}
}
