package keys_test

import (
	"encoding/json"
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
		{"empty passes", "", true},
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
			assert.Equal(t, tt.unchanged, keys.IsSafeKey(tt.key))
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
