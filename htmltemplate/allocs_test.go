//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only exact without it.

package htmltemplate

import (
	"bytes"
	"context"
	"html/template"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

// TestAllHitPageAllocatesAsTheFloor: a page whose blocks all hit allocates
// no more than the same page printing each fragment from a function
// without arguments returning a constant template.HTML, html/template's
// cheapest way to print one (vary_on a user, as in issue 17's page).
func TestAllHitPageAllocatesAsTheFloor(t *testing.T) {
	const body = `<ul>{{ range .Items }}<li>{{ .Name }} {{ $.User }}</li>{{ end }}</ul>`
	type item struct{ Name string }
	data := &struct {
		Items []item
		User  string
	}{Items: []item{{"a"}, {"b"}}, User: "alice"}
	var cached, floor strings.Builder
	funcs := template.FuncMap{}
	fragmentText := runPlain(t, template.Must(template.New("b").Parse(body)), data)
	for i := range 10 {
		n := strconv.Itoa(i)
		cached.WriteString(`{{ cache 300 "frag-` + n + `" .User }}` + body + "{{ endcache }}\n")
		floor.WriteString("{{ floor" + n + " }}\n")
		h := template.HTML(fragmentText)
		funcs["floor"+n] = func() template.HTML { return h }
	}
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "page", cached.String(), nil)
	plain := template.Must(template.New("floor").Funcs(funcs).Parse(floor.String()))
	ctx := context.Background()
	var buf bytes.Buffer
	require.NoError(t, tpl.ExecuteContext(ctx, &buf, data)) // fills the cache
	want := runPlain(t, plain, data)
	require.Equal(t, want, buf.String())

	floorAllocs := testing.AllocsPerRun(50, func() { buf.Reset(); _ = plain.Execute(&buf, data) })
	for name, run := range map[string]func(){
		"Execute":        func() { buf.Reset(); _ = tpl.Execute(&buf, data) },
		"ExecuteContext": func() { buf.Reset(); _ = tpl.ExecuteContext(ctx, &buf, data) },
	} {
		hit := testing.AllocsPerRun(50, run)
		assert.LessOrEqual(t, hit, floorAllocs, name)
		assert.Equal(t, want, buf.String(), name)
	}
	assert.Zero(t, fc.Stats().Misses-10, "every execution after the first hit")
}

func TestBoxStringRepeatsAllocateNothing(t *testing.T) {
	tpl := New("page.html", nil)
	_, err := tpl.Parse(`{{ cache 1 "n" .U }}x{{ endcache }}`)
	require.NoError(t, err)
	tpl.set.finalize()
	a := tpl.set.blocks[0].native[0]
	data := &struct{ U string }{U: "alice"}
	a.eval(data)
	data.U = strings.Clone("alice") // the same text elsewhere in memory
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = a.eval(data) }))
}

func TestBoxStringDoesNotKeepLongTexts(t *testing.T) {
	tpl := New("page.html", nil)
	_, err := tpl.Parse(`{{ cache 1 "n" .U }}x{{ endcache }}`)
	require.NoError(t, err)
	tpl.set.finalize()
	a := tpl.set.blocks[0].native[0]
	long := strings.Repeat("x", maxReusedString+1)
	assert.Equal(t, long, a.eval(&struct{ U string }{U: long}))
	assert.Nil(t, a.last.Load(), "a long text is not kept alive")
}
