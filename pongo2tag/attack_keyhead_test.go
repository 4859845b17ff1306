package pongo2tag

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// keyHeadName is a named string type a template's data may name a block
// with.
type keyHeadName string

// TestAttackOneTemplateThroughSeveralCaches: pongo2 binds a cache per
// render, so one parsed template (one fragment.Site per block) is rendered
// through Caches that key differently, alternately and at once. Every
// block stores under, and is served from, its own Cache's key for its own
// name and vary_on value (fragment.Cache.Key), whatever the site kept from
// another Cache's render.
func TestAttackOneTemplateThroughSeveralCaches(t *testing.T) {
	set := newSet(t)
	tpl := fromString(t, set, `{% cache 60, "side_bar" %}[s {{ who }}]{% endcache %}`+
		`{% cache 60, name, v %}[n {{ name }} {{ v }}]{% endcache %}`)
	optionSets := []fragment.Options{{}, {KeyPrefix: "p_", Version: "3"}, {UnambiguousKeys: true}}
	type cache struct {
		fc    *fragment.Cache
		store *backends.Simple
	}
	caches := make([]cache, len(optionSets))
	for i, o := range optionSets {
		fc, store := newCache(o)
		caches[i] = cache{fc, store}
	}
	names := []any{"a_b", keyHeadName("a_b"), "a", "", "side_bar"}
	varies := []string{"b", "_b", "x"}
	run := func(seed int) error {
		for i := range 120 {
			k := i + seed
			c := caches[k%len(caches)]
			name, v := names[(k/3)%len(names)], varies[(k/7)%len(varies)]
			var out strings.Builder
			if err := Execute(context.Background(), c.fc, tpl, pongo2.Context{"who": "w", "name": name, "v": v}, &out); err != nil {
				return err
			}
			// Each fragment's text names what rendered it first: a block
			// served another key's fragment shows another name or value.
			want := "[s w][n " + fmtName(name) + " " + v + "]"
			if out.String() != want {
				t.Errorf("cache %d (%+v), name %T %q, v %q: page %q, want %q", k%len(caches), optionSets[k%len(caches)], name, name, v, out.String(), want)
			}
			for _, key := range []string{c.fc.Key("side_bar"), c.fc.Key(fmtName(name), v)} {
				if ok, err := c.fc.Store().Has(context.Background(), key); err != nil || !ok {
					t.Errorf("cache %d: %q not stored (%v)", k%len(caches), key, err)
				}
			}
		}
		return nil
	}
	require.NoError(t, run(0))
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for g := range errs {
		wg.Go(func() { errs[g] = run(g + 1) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for i, c := range caches {
		// side_bar, and each name's text form with each vary_on value
		// (none of which run together into another's key, even Flask's).
		assert.Equal(t, 1+distinctNamed(names)*len(varies), c.store.Len(), "cache %d holds one fragment per key", i)
	}
}

// fmtName is the text form of a name of the test.
func fmtName(v any) string {
	switch n := v.(type) {
	case keyHeadName:
		return string(n)
	case string:
		return n
	}
	panic(v)
}

// distinctNamed counts the text forms of names.
func distinctNamed(names []any) int {
	seen := map[string]bool{}
	for _, n := range names {
		seen[fmtName(n)] = true
	}
	return len(seen)
}
