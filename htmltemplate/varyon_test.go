package htmltemplate

import (
	"bytes"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

type varyOnData struct {
	A, B, C, D string
	Items      []string
}

// Blocks nested in a block's body key by their own vary_on values, taken
// in each of the ways a block's function gets them (on the execution's
// data, on the dot, as arguments), while their parent's values are still
// in use.
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
	testkit.AssertStored(t, fc.Store(), keys...)
	assert.Equal(t, len(keys), simple.Len(), "fragments stored")

	// Under the same keys the second execution hits every block, whatever
	// the bodies would print now.
	data.Items = []string{"9"}
	out, err = run(tpl, data)
	require.NoError(t, err)
	assert.Equal(t, want, out)
	assert.EqualValues(t, 2, fc.Stats().Hits)
}

// A template function may execute templates of the set on goroutines of
// its own while a block of the page is being rendered: the blocks key by
// their own values, and nothing races.
func TestVaryOnOfExecutionsOnOtherGoroutines(t *testing.T) {
	const workers, rounds = 4, 25
	fc, simple := newCache(fragment.Options{})
	var tpl *Template
	fan := func(a string) (template.HTML, error) {
		out, err := testkit.FanOut(workers, rounds, func(i int) (string, error) {
			var b bytes.Buffer
			err := tpl.ExecuteTemplateContext(t.Context(), &b, "w", map[string]string{"I": strconv.Itoa(i), "A": a})
			return b.String(), err
		})
		return template.HTML(out), err
	}
	tpl = parseT(t, fc, "page", `{{ define "w" }}{{ cache 300 "w" .I .A }}({{ .I }}{{ .A }}){{ endcache }}{{ end }}`+
		`{{ cache 300 "page" .A .B }}[{{ fan .A }}]{{ endcache }}`, template.FuncMap{"fan": fan})
	var b bytes.Buffer
	require.NoError(t, tpl.ExecuteContext(t.Context(), &b, &varyOnData{A: "A", B: "B"}))
	var want strings.Builder
	for i := range workers * rounds {
		fmt.Fprintf(&want, "(%dA)", i)
	}
	require.Equal(t, "["+want.String()+"]", b.String())
	for i := range workers * rounds {
		testkit.AssertStored(t, fc.Store(), fc.Key("w", strconv.Itoa(i), "A"))
	}
	assert.Equal(t, workers*rounds+1, simple.Len(), "fragments stored")
}
