package pongo2tag

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// Blocks nested in a block's body key by their own vary_on values, however
// many each has, while their parent's values are still in use (a block
// takes its values' slice from a pool, and puts it back only after
// fragment.Render returns).
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
			testkit.AssertStored(t, fc.Store(), keys...)
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

// A template function may render other templates on goroutines of its own
// while the page waits, passing the page's binding on as the package doc
// says (`_fc`), or the page's whole context (a function taking
// *pongo2.ExecutionContext). The blocks those renders reach key by their
// own vary_on values, and nothing races, though they all share the page's
// binding: nothing a block keeps while it runs may live in it.
func TestVaryOnOfRendersOnOtherGoroutines(t *testing.T) {
	const workers, rounds = 4, 25
	set := newSet(t)
	widget := fromString(t, set, `{% cache 300, "w", i, user %}<{{ i }}{{ user }}>{% endcache %}`)
	// fanOut renders the widget for i in [0, workers×rounds) on workers
	// goroutines at once, each with data made by ctxFor.
	fanOut := func(ctxFor func(i int) pongo2.Context) (*pongo2.Value, error) {
		out, err := testkit.FanOut(workers, rounds, func(i int) (string, error) { return widget.Execute(ctxFor(i)) })
		return pongo2.AsSafeValue(out), err
	}
	for _, tc := range []struct {
		name string
		call string // how the page calls the function
		fn   any
	}{
		{"binding passed on", "fan(_fc, user)", func(fc any, user string) (*pongo2.Value, error) {
			return fanOut(func(i int) pongo2.Context { return pongo2.Context{ContextKey: fc, "i": i, "user": user} })
		}},
		{"page context", "fanCtx()", func(ctx *pongo2.ExecutionContext) (*pongo2.Value, error) {
			return fanOut(func(i int) pongo2.Context {
				data := maps.Clone(ctx.Public)
				data["i"] = i
				return data
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			name := strings.Fields(strings.NewReplacer("(", " ").Replace(tc.call))[0]
			page := fromString(t, set, `{% cache 300, "page", user %}[{{ `+tc.call+` }}]{% endcache %}`)
			var b bytes.Buffer
			err := Execute(t.Context(), fc, page, pongo2.Context{"user": "ann", name: tc.fn}, &b)
			require.NoError(t, err)
			var want strings.Builder
			for i := range workers * rounds {
				fmt.Fprintf(&want, "<%dann>", i)
			}
			require.Equal(t, "["+want.String()+"]", b.String())
			for i := range workers * rounds {
				testkit.AssertStored(t, fc.Store(), fc.Key("w", strconv.Itoa(i), "ann"))
			}
			assert.Equal(t, workers*rounds+1, simple.Len(), "fragments stored")
		})
	}
}

// pongo2 recovers no panic, but a template function may: one that renders
// a template whose block panics, in its body or while evaluating its
// vary_on values, and carries on leaves the page's block keyed by its own
// values, even when it runs in the middle of that block's vary_on values.
func TestVaryOnAfterRecoveredPanic(t *testing.T) {
	for _, tc := range []struct{ name, risky string }{
		{"in the body", `{% cache 300, "risky", v, v %}{{ boom() }}{% endcache %}`},
		{"in a vary_on value", `{% cache 300, "risky", v, v, boom() %}-{% endcache %}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			risky := fromString(t, set, tc.risky)
			try := func(fc any) (out string) {
				defer func() {
					if recover() != nil {
						out = "t"
					}
				}()
				_, _ = risky.Execute(pongo2.Context{ContextKey: fc, "v": "junk", "boom": func() string { panic("boom") }})
				return "no panic"
			}
			fc, simple := newCache(fragment.Options{})
			page := fromString(t, set, `{% cache 300, "x", a, try(_fc), b %}x{% endcache %}`)
			var b bytes.Buffer
			require.NoError(t, Execute(t.Context(), fc, page, pongo2.Context{"a": "A", "b": "B", "try": try}, &b))
			require.Equal(t, "x", b.String())
			testkit.AssertStored(t, fc.Store(), fc.Key("x", "A", "t", "B")) // the page's block, under its own values
			assert.Equal(t, 1, simple.Len(), "fragments stored")
		})
	}
}
