package htmltemplate

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"sync"
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

// A template function may execute templates of the set on goroutines of
// its own while a block of the page is being rendered: the blocks key by
// their own values, and nothing races.
func TestVaryOnOfExecutionsOnOtherGoroutines(t *testing.T) {
	const workers, rounds = 4, 25
	fc, simple := newCache(fragment.Options{})
	var tpl *Template
	fan := func(a string) (template.HTML, error) {
		out := make([]string, workers*rounds)
		errs := make([]error, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				for r := range rounds {
					i := w*rounds + r
					var b bytes.Buffer
					if errs[w] = tpl.ExecuteTemplateContext(t.Context(), &b, "w", map[string]string{"I": strconv.Itoa(i), "A": a}); errs[w] != nil {
						return
					}
					out[i] = b.String()
				}
			})
		}
		close(start)
		wg.Wait()
		return template.HTML(strings.Join(out, "")), errors.Join(errs...)
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
		has, err := fc.Store().Has(t.Context(), fc.Key("w", strconv.Itoa(i), "A"))
		require.NoError(t, err)
		assert.True(t, has, "widget %d not stored under its key", i)
	}
	assert.Equal(t, workers*rounds+1, simple.Len(), "fragments stored")
}
