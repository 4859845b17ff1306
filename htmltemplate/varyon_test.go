package htmltemplate

import (
	"bytes"
	"context"
	"html/template"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

type varyOnData struct {
	A, B, C, D string
	Items      []string
}

// Blocks nested in a block's body key by their own vary_on values, taken
// in each of the ways a block's function gets them (on the execution's
// data, on the dot, as arguments): all of an execution's blocks keep them
// on one stack, which the nested ones outgrow here.
func TestVaryOnOfNestedBlocks(t *testing.T) {
	const src = `{{ $d := .D }}{{ cache 300 "outer" .A .B .C }}[` +
		`{{ range .Items }}{{ cache 300 "inner" . $.A $.B $.C $.D $.A $.B $.C $.D }}({{ . }}{{ $.A }}{{ $.B }}{{ $.C }}{{ $.D }}){{ endcache }}{{ end }}` +
		`]{{ endcache }}{{ cache 300 "after" $d }}({{ $.D }}){{ endcache }}`
	fc, simple := newCache(fragment.Options{})
	tpl := parseT(t, fc, "page", src, nil)
	data := &varyOnData{A: "A", B: "B", C: "C", D: "D", Items: []string{"1", "2"}}
	const want = "[(1ABCD)(2ABCD)](D)"
	out, err := run(tpl, data)
	require.NoError(t, err)
	require.Equal(t, want, out)

	keys := []string{
		fc.Key("outer", "A", "B", "C"),
		fc.Key("inner", "1", "A", "B", "C", "D", "A", "B", "C", "D"),
		fc.Key("inner", "2", "A", "B", "C", "D", "A", "B", "C", "D"),
		fc.Key("after", "D"),
	}
	for _, k := range keys {
		has, err := fc.Store().Has(t.Context(), k)
		require.NoError(t, err)
		assert.True(t, has, "no fragment under %q", k)
	}
	assert.Equal(t, len(keys), simple.Len(), "fragments stored")

	// Under the same keys the second execution hits every block, whatever
	// the bodies would print now.
	data.Items = []string{"9"}
	out, err = run(tpl, data)
	require.NoError(t, err)
	assert.Equal(t, want, out)
	assert.EqualValues(t, 2, fc.Stats().Hits)
}

// The blocks of a long page take their place on the stack of its
// execution in turn and leave it when done, rather than piling values up.
func TestVaryOnStackEmptiesAfterEachBlock(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	var tpl *Template
	var depth []int
	probe := func() string {
		vs := tpl.set.execs.current().vary
		depth = append(depth, vs.Len())
		return ""
	}
	tpl = parseT(t, fc, "page", `{{ range .Items }}{{ cache 300 "x" . $.A }}.{{ endcache }}{{ end }}{{ probe }}`,
		template.FuncMap{"probe": probe})
	for _, n := range []int{10, 1000, 1000} { // misses, then hits
		data := &varyOnData{A: "A", Items: strings.Split(strings.Repeat("a", n), "")}
		var b bytes.Buffer
		require.NoError(t, tpl.ExecuteContext(context.Background(), &b, data))
		require.Equal(t, strings.Repeat(".", n), b.String())
	}
	assert.Equal(t, []int{0, 0, 0}, depth, "values left on the stack")
}
