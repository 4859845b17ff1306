package pongo2tag

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

// Blocks nested in a block's body key by their own vary_on values, however
// many each has: on Execute's binding the values of nested blocks sit
// above their parent's on one stack, which they outgrow here.
func TestVaryOnOfNestedBlocks(t *testing.T) {
	const src = `{% cache 300, "outer", a, b, c %}[` +
		`{% for it in items %}{% cache 300, "inner", it, a, b, c, d %}<{{ it }}{{ a }}{{ b }}{{ c }}{{ d }}>{% endcache %}{% endfor %}` +
		`]{% endcache %}{% cache 300, "after", d %}({{ d }}){% endcache %}`
	for _, tc := range []struct {
		name   string
		render func(fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context) (string, error)
	}{
		{"Execute", func(fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context) (string, error) {
			var b bytes.Buffer
			err := Execute(context.Background(), fc, tpl, data, &b)
			return b.String(), err
		}},
		{"With", func(fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context) (string, error) {
			return render(tpl, fc, data)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			tpl := fromString(t, newSet(t), src)
			data := pongo2.Context{"items": []string{"1", "2"}, "a": "A", "b": "B", "c": "C", "d": "D"}
			const want = "[<1ABCD><2ABCD>](D)"
			out, err := tc.render(fc, tpl, data)
			require.NoError(t, err)
			require.Equal(t, want, out)

			keys := []string{
				fc.Key("outer", "A", "B", "C"),
				fc.Key("inner", "1", "A", "B", "C", "D"),
				fc.Key("inner", "2", "A", "B", "C", "D"),
				fc.Key("after", "D"),
			}
			for _, k := range keys {
				has, err := fc.Store().Has(t.Context(), k)
				require.NoError(t, err)
				assert.True(t, has, "no fragment under %q", k)
			}
			assert.Equal(t, len(keys), simple.Len(), "fragments stored")

			// Under the same keys the second render hits every block,
			// whatever the bodies would print now.
			data["items"] = []string{"9"}
			out, err = tc.render(fc, tpl, data)
			require.NoError(t, err)
			assert.Equal(t, want, out)
			assert.EqualValues(t, 2, fc.Stats().Hits)
		})
	}
}

// The blocks of a long page take their place on the stack of Execute's
// binding in turn and leave it when done, rather than piling values up.
func TestVaryOnStackEmptiesAfterEachBlock(t *testing.T) {
	fc := simpleFC()
	tpl := fromString(t, newSet(t), `{% for it in items %}{% cache 300, "x", it, user %}.{% endcache %}{% endfor %}`)
	items := strings.Split(strings.Repeat("a", 100), "")
	page := newPageBinding(context.Background(), fc) // what Execute binds
	var b bytes.Buffer
	for range 2 { // misses, then hits
		b.Reset()
		require.NoError(t, tpl.ExecuteWriterUnbuffered(pongo2.Context{"items": items, "user": "ann", ContextKey: page}, &b))
		require.Equal(t, strings.Repeat(".", 100), b.String())
		require.NotNil(t, page.vary)
		assert.Zero(t, page.vary.Len(), "values left on the stack")
	}
}
