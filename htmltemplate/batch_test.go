package htmltemplate

import (
	"bytes"
	"errors"
	"html/template"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/redistest"
)

// batchSrc has blocks in a range (whose bodies read the range's dot and
// variables through their arguments and $), in a {{with}}, in a defined
// template called twice, and nested two deep.
const batchSrc = `{{ define "m" }}{{ cache 300 "m" . }}<m>{{ . }}</m>{{ endcache }}{{ end }}` +
	`<ul>{{ range $i, $it := .Items }}{{ cache 300 "row" $it $i }}<li>{{ . }} {{ $.User }}</li>{{ endcache }}{{ end }}</ul>` +
	`{{ cache 300 "outer" }}<div>{{ cache 300 "inner" .User }}{{ .User }}{{ endcache }}` +
	`{{ with .User }}{{ cache 300 "w" . }}{{ upper . }}{{ endcache }}{{ end }}</div>{{ endcache }}` +
	`{{ template "m" "q" }}{{ template "m" "r" }}`

// On Redis, Execute batches: the page equals the uncached page, cold and
// warm; a warm page costs one round trip, a cold one 2 + 1 (two levels of
// blocks, one pipelined store), counted by a go-redis hook.
func TestExecuteBatchedRoundTrips(t *testing.T) {
	store, rt := redistest.CountedRedis(t)
	fc := fragment.New(store, fragment.Options{})
	require.True(t, fc.Batches())
	funcs := template.FuncMap{"upper": strings.ToUpper}
	tpl := parseT(t, fc, "page.html", batchSrc, funcs)
	data := map[string]any{"Items": []string{"a", "b", "c", "d", "e", "f", "g", "h"}, "User": "ann"}

	var wantBuf bytes.Buffer
	require.NoError(t, uncached(t, "page.html", batchSrc, funcs).Execute(&wantBuf, data))
	want := wantBuf.String()
	require.Contains(t, want, "<li>h ann</li>")

	for i, wantTrips := range []int{3, 1, 1, 1, 1} { // from the fourth, the page's keys are looked up before its one pass
		rt.Take()
		var b strings.Builder
		if i%2 == 0 {
			require.NoError(t, tpl.ExecuteContext(t.Context(), &b, data))
		} else {
			require.NoError(t, tpl.Execute(&b, data))
		}
		assert.Equal(t, want, b.String(), "render %d", i)
		n, sent := rt.Take()
		assert.Equal(t, wantTrips, n, "render %d: %v", i, sent)
	}
	assert.EqualValues(t, 8+2+1+1+2, fc.Stats().Renders,
		"8 rows, outer twice (once to reach its nested blocks, once for real), inner, w, m twice")
}

// A failed body fails Execute, writes nothing and stores nothing.
func TestExecuteBatchedError(t *testing.T) {
	fc, simple := newCache(fragment.Options{Batch: fragment.BatchOn})
	tpl := parseT(t, fc, "e.html", `{{ cache 300 "ok" }}ok{{ endcache }}{{ cache 300 "bad" }}{{ f }}{{ endcache }}`,
		template.FuncMap{"f": func() (string, error) { return "", errors.New("bad") }})
	var b strings.Builder
	require.Error(t, tpl.Execute(&b, nil))
	assert.Empty(t, b.String())
	assert.Zero(t, simple.Len(), "a failed page stores nothing")
}
