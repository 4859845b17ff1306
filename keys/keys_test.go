package keys_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/keys"
)

// testdata/flask_fragment_keys.json holds [name, vary_on, key] triples that
// Flask-Caching's make_template_fragment_key returned under Python 3.11.
func TestMakeTemplateFragmentKeyMatchesFlask(t *testing.T) {
	raw, err := os.ReadFile("testdata/flask_fragment_keys.json")
	require.NoError(t, err)
	var cases [][3]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &cases))
	require.NotEmpty(t, cases)
	for _, c := range cases {
		var name, want string
		var varyOn []string
		require.NoError(t, json.Unmarshal(c[0], &name))
		require.NoError(t, json.Unmarshal(c[1], &varyOn))
		require.NoError(t, json.Unmarshal(c[2], &want))
		assert.Equal(t, want, keys.MakeTemplateFragmentKey(name, varyOn...), "name=%q vary_on=%q", name, varyOn)
	}
}

func TestFragmentNameRunsPathAndLineTogether(t *testing.T) {
	tests := []struct {
		path string
		line int
		want string
	}{
		{"index.html", 12, "index.html12"},
		{"shop/product.html", 1, "shop/product.html1"},
		{"", 3, "3"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, keys.FragmentName(tt.path, tt.line))
		// The default name feeds the same key maker as an explicit one.
		assert.Equal(t, keys.TemplateFragmentPrefix+tt.want, keys.MakeTemplateFragmentKey(keys.FragmentName(tt.path, tt.line)))
	}
}

func TestSafeKey(t *testing.T) {
	long := strings.Repeat("k", 300)
	tests := []struct {
		name      string
		key       string
		unchanged bool
	}{
		{"plain key passes", "flask_cache_user:42", true},
		{"250 bytes pass", strings.Repeat("a", 250), true},
		{"unicode passes", "ключ-日本", true},
		{"hash sign passes", "a#b", true},
		{"empty is mapped: memcached needs one byte", "", false},
		{"a key shaped like a mapped key is mapped", keys.SafeKey("a b"), false},
		{"251 bytes are mapped", strings.Repeat("a", 251), false},
		{"space is mapped", "a b", false},
		{"tab is mapped", "a\tb", false},
		{"newline is mapped", "a\nb", false},
		{"NUL is mapped", "a\x00b", false},
		{"DEL is mapped", "a\x7fb", false},
		{"long key is mapped", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keys.SafeKey(tt.key)
			assert.True(t, keys.IsSafeKey(got), "SafeKey must return a key memcached accepts: %q", got)
			if tt.unchanged {
				assert.Equal(t, tt.key, got)
				return
			}
			assert.NotEqual(t, tt.key, got)
			assert.LessOrEqual(t, len(got), keys.MaxSafeKeyLen)
			assert.Contains(t, got, "#")
			assert.Equal(t, got, keys.SafeKey(tt.key), "mapping must be deterministic")
		})
	}
}

func TestSafeKeyDistinguishesKeysThatShareAHead(t *testing.T) {
	head := strings.Repeat("x", 300)
	seen := map[string]string{}
	for _, k := range []string{head + "1", head + "2", "a b", "a_b", "a\tb", "a\nb"} {
		got := keys.SafeKey(k)
		if prev, dup := seen[got]; dup {
			t.Fatalf("SafeKey(%q) == SafeKey(%q) == %q", k, prev, got)
		}
		seen[got] = k
	}
}

// TestSafeKeyIsInjective: no valid key passes through unchanged if it
// could be the mapped form of another key, so two different keys never
// share a server key (CACHE_KEY_PREFIX="" lets a vary_on value choose the
// whole key).
func TestSafeKeyIsInjective(t *testing.T) {
	mapped := keys.SafeKey("a b")
	tests := []struct {
		name string
		a, b string
	}{
		{"a key and its mapped form", "a b", mapped},
		{"the empty key and its mapped form", "", keys.SafeKey("")},
		{"a long key and its mapped form", strings.Repeat("k", 300), keys.SafeKey(strings.Repeat("k", 300))},
		{"a mapped form and its own mapped form", mapped, keys.SafeKey(mapped)},
		{"a mapped form with another head", "a b", "x" + mapped[strings.IndexByte(mapped, '#'):]},
		{"a hash with no head", "a b", mapped[strings.IndexByte(mapped, '#'):]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotEqual(t, tt.a, tt.b)
			assert.NotEqual(t, keys.SafeKey(tt.a), keys.SafeKey(tt.b))
		})
	}
}

// safeKeyInputs returns n keys drawn to hit SafeKey's edges: empty, around
// 250 bytes, with spaces, control bytes, '#', base64url runs, non-ASCII, and
// keys built from other keys' mapped forms (whole, re-headed, headless).
func safeKeyInputs(r *rand.Rand, n int) []string {
	const alphabet = "ab_-#AZ09 \t\n\x00\x7fé"
	var out []string
	for len(out) < n {
		var k []byte
		switch r.IntN(4) {
		case 0: // short, from a small alphabet, so different keys share heads
			for range r.IntN(8) {
				k = append(k, alphabet[r.IntN(len(alphabet))])
			}
		case 1: // around the length limit
			k = []byte(strings.Repeat("k", keys.MaxSafeKeyLen-2+r.IntN(5)))
			if r.IntN(2) == 0 {
				k[r.IntN(len(k))] = alphabet[r.IntN(len(alphabet))]
			}
		default: // derived from an earlier key's mapped form
			if len(out) == 0 {
				continue
			}
			m := keys.SafeKey(out[r.IntN(len(out))] + " ") // always mapped
			hash := m[strings.LastIndexByte(m, '#'):]
			switch r.IntN(4) {
			case 0:
				k = []byte(m)
			case 1:
				k = []byte(hash)
			case 2:
				k = []byte(string(alphabet[r.IntN(len(alphabet))]) + hash)
			default:
				k = []byte(m[:len(m)-1] + string(alphabet[r.IntN(len(alphabet))]))
			}
		}
		out = append(out, string(k))
	}
	return out
}

// TestSafeKeyProperties: over many generated keys, every result is a key
// memcached accepts, and different keys have different results.
func TestSafeKeyProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]string{} // result → key
	for _, k := range safeKeyInputs(r, 20000) {
		got := keys.SafeKey(k)
		require.True(t, keys.IsSafeKey(got), "SafeKey(%q) = %q", k, got)
		require.Equal(t, got, keys.SafeKey(k), "deterministic")
		if prev, ok := seen[got]; ok && prev != k {
			t.Fatalf("SafeKey(%q) == SafeKey(%q) == %q", k, prev, got)
		}
		seen[got] = k
	}
	require.Greater(t, len(seen), 5000, "the generator must produce distinct keys")
}

// FuzzSafeKey: results are keys memcached accepts, and two different keys
// never share one, including keys built from another key's result.
func FuzzSafeKey(f *testing.F) {
	f.Add("a b", "")
	f.Add(strings.Repeat("k", 300), "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		ma, mb := keys.SafeKey(a), keys.SafeKey(b)
		for _, m := range []string{ma, mb} {
			if !keys.IsSafeKey(m) {
				t.Fatalf("not a memcached key: %q", m)
			}
		}
		m := keys.SafeKey(a + " ") // always mapped
		hash := m[strings.LastIndexByte(m, '#'):]
		inputs := []string{a, b, ma, mb, m, keys.SafeKey(ma), b + hash, hash, a + " "}
		seen := map[string]string{}
		for _, k := range inputs {
			got := keys.SafeKey(k)
			if prev, ok := seen[got]; ok && prev != k {
				t.Fatalf("SafeKey(%q) == SafeKey(%q) == %q", k, prev, got)
			}
			seen[got] = k
		}
	})
}
