package pongo2tag

import (
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type identUser struct{ Name string }

// TestBareIdentifierArgs checks that an argument that is one identifier,
// which eval looks up without pongo2's resolver, evaluates to what pongo2
// gives for every kind of context value, from the private context first.
func TestBareIdentifierArgs(t *testing.T) {
	n := parseNode(t, `300, v, v, w`, ``)
	require.Equal(t, "v", n.args[1].ident)
	require.Equal(t, "w", n.args[3].ident)
	assert.Empty(t, parseNode(t, `300, v|lower`, ``).args[1].ident, "a filtered variable goes through pongo2")
	assert.Empty(t, parseNode(t, `300, v.Name`, ``).args[1].ident, "a field path goes through pongo2")

	u := &identUser{"ann"}
	var nilUser *identUser
	values := []struct {
		name string
		v    any
	}{
		{"string", "ann"},
		{"int", 7},
		{"float", 1.5},
		{"bool", true},
		{"bytes", []byte("b")},
		{"nil", nil},
		{"pointer", u},
		{"nil pointer", nilUser},
		{"struct", identUser{"bob"}},
		{"slice", []int{1, 2}},
		{"map", map[string]int{"a": 1}},
		{"pongo2 value", pongo2.AsValue("wrapped")},
		{"pongo2 safe value", pongo2.AsSafeValue(42)},
		{"func", func() string { return "called" }},
		{"func value", func() *pongo2.Value { return pongo2.AsValue(3) }},
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []string{"public", "private", "shadowed"} {
				ctx := &pongo2.ExecutionContext{Public: pongo2.Context{}, Private: pongo2.Context{}}
				switch where {
				case "public":
					ctx.Public["v"] = tc.v
				case "private":
					ctx.Private["v"] = tc.v
				case "shadowed":
					ctx.Private["v"] = tc.v
					ctx.Public["v"] = "public"
				}
				want, perr := n.args[1].expr.Evaluate(ctx)
				require.Nil(t, perr)
				got, perr := n.args[1].eval(ctx)
				require.Nil(t, perr)
				assert.Equal(t, want.Interface(), got, where)
				missing, perr := n.args[3].eval(ctx)
				require.Nil(t, perr)
				assert.Nil(t, missing, "an unset variable is nil")
			}
		})
	}
}
