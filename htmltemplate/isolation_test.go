package htmltemplate

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

// Types of TestConcurrentExecutionsNeverShareFragments: a user whose name
// is a function of its ID (so vary_on the ID is a correct key), with a
// value method, in every place a block can find its dot and arguments.
type zU struct {
	ID   int
	Name string
}

func (u zU) Label() string { return "L" + u.Name }

type zD struct {
	U     *zU
	L     []zU
	Other zU
	I     any
	M     map[string]any
}

func zData(r *rand.Rand) zD {
	mk := func() zU { id := r.IntN(6); return zU{id, fmt.Sprintf("n%d", id)} }
	u := mk()
	d := zD{U: &u, Other: mk(), M: map[string]any{}}
	for range r.IntN(3) {
		d.L = append(d.L, mk())
	}
	switch r.IntN(3) {
	case 0:
		d.I = mk()
	case 2:
		x := mk()
		d.I = &x
	case 1:
		x := mk()
		d.I = map[string]any{"ID": x.ID, "Name": x.Name}
	}
	if r.IntN(2) == 0 {
		x := mk()
		d.M["k"] = x.ID
	}
	return d
}

const zSrc = `{{define "p"}}{{cache 300 "p" .U.ID}}<p>{{.U.Name}}</p>{{endcache}}{{end}}
{{define "q"}}{{cache 300 "q" .ID}}<q>{{.Name}}{{.Label}}{{cache 300 "qi" .ID}}{{.Name}}{{endcache}}</q>{{endcache}}{{end}}
{{define "s"}}{{cache 300 "s" .ID}}<s>{{.Name}}</s>{{endcache}}{{end}}
{{define "layout"}}{{cache 300 "lay" .U.ID $.U.Name}}[{{.U.Name}}{{template "p" .}}]{{endcache}}{{end}}
{{cache 300 "top" .U.ID}}<t>{{.U.Name}}{{template "p" .}}</t>{{endcache}}
{{template "layout" .}}{{template "p" .}}
{{with .U}}{{template "q" .}}{{cache 300 "w" .ID}}{{.Name}}{{endcache}}{{end}}
{{range .L}}{{cache 300 "r" .ID $.U.ID}}{{.Name}}{{$.U.Name}}{{endcache}}{{end}}
{{template "q" .Other}}{{range $i, $u := .L}}{{template "q" $u}}{{end}}
{{if .U}}{{cache 300 "if" $.U.ID}}{{$.U.Name}}{{endcache}}{{end}}
{{cache 300 "nest" .U.ID .Other.ID}}{{sub .Other}}{{.U.Name}}{{endcache}}
{{cache 300 "iface" .I.ID .I.Name}}{{with .I}}{{.Name}}{{end}}{{endcache}}
{{cache 300 "mk" .M.k}}{{.M.k}}{{endcache}}
{{cache 300 "lab" .U.Label}}{{.U.Label}}{{endcache}}
{{cache 300 "dot" .Other.Name}}{{.Other.Name}}{{endcache}}
`

// TestConcurrentExecutionsNeverShareFragments renders one set (a layout,
// partials called with the page's data and with another dot, {{with}},
// {{range}}, {{if}}, $ chains, interface and map arguments holding
// different types from one execution to the next, a method argument, and
// a body executing another template of the set with other data) on many
// goroutines at once, with the data as a value, a pointer, a reflect.Value
// and a map: every page must be what plain html/template renders for its
// own data. Every block varies on all it prints, so a page that differs
// took a fragment of another execution's data, or evaluated an argument on
// the wrong dot.
func TestConcurrentExecutionsNeverShareFragments(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	var tpl *Template
	tpl = New("page", fc).Funcs(template.FuncMap{"sub": func(u zU) (template.HTML, error) {
		var b bytes.Buffer
		err := tpl.ExecuteTemplate(&b, "s", u)
		return template.HTML(b.String()), err
	}})
	_, err := tpl.Parse(zSrc)
	require.NoError(t, err)
	var plain *template.Template
	plain = uncached(t, "page", zSrc, template.FuncMap{"sub": func(u zU) (template.HTML, error) {
		var b bytes.Buffer
		err := plain.ExecuteTemplate(&b, "s", u)
		return template.HTML(b.String()), err
	}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				d := zData(r)
				var want bytes.Buffer
				if !assert.NoError(t, plain.Execute(&want, d)) {
					return
				}
				var got bytes.Buffer
				var err error
				switch r.IntN(4) {
				case 0:
					err = tpl.Execute(&got, d)
				case 1:
					err = tpl.Execute(&got, &d)
				case 2:
					err = tpl.Execute(&got, reflect.ValueOf(&d))
				case 3:
					err = tpl.Execute(&got, map[string]any{"U": d.U, "L": d.L, "Other": d.Other, "I": d.I, "M": d.M})
				}
				if !assert.NoError(t, err, "data %+v (U %+v)", d, *d.U) ||
					!assert.Equal(t, want.String(), got.String(), "data %+v (U %+v)", d, *d.U) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// A clone in which a partial is called with another dot renders the
// partial's blocks on that dot, whatever the original went through first.
// An execution of the original that failed before html/template escaped
// anything (an undefined name) leaves html/template willing to clone it;
// but the original's blocks were by then fitted to its templates as they
// were (bound to the execution's data where the partial's dot was the
// data), so the clone must be refused: it used to render the page's data
// in the partial, keyed by it.
func TestCloneNeverRendersAPartialOnAnotherDot(t *testing.T) {
	const baseSrc = `{{ define "sidebar" }}{{ cache 60 "side" .Name }}[{{ .Name }}]{{ endcache }}{{ end }}` +
		`{{ define "page" }}{{ template "sidebar" . }}{{ end }}`
	data := map[string]any{"Name": "page", "User": map[string]any{"Name": "alice"}}
	for _, tc := range []struct {
		name         string
		before       func(*Template) error
		refusesClone bool
	}{
		{"not executed", func(*Template) error { return nil }, false},
		{"ExecuteTemplate of an undefined name", func(b *Template) error {
			return b.ExecuteTemplate(io.Discard, "nope", nil)
		}, true},
		{"ExecuteTemplateContext of an undefined name", func(b *Template) error {
			return b.ExecuteTemplateContext(t.Context(), io.Discard, "nope", nil)
		}, true},
		{"executed", func(b *Template) error { return b.ExecuteTemplate(io.Discard, "page", data) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, _ := newCache(fragment.Options{})
			base, err := New("base", fc).Parse(baseSrc)
			require.NoError(t, err)
			_ = tc.before(base)
			clone, err := base.Clone()
			if err != nil {
				require.True(t, tc.refusesClone, "Clone: %v", err)
				require.ErrorContains(t, err, "after it has executed")
				return
			}
			_, err = clone.Parse(`{{ define "page" }}{{ template "sidebar" .User }}{{ end }}`)
			require.NoError(t, err)
			var b bytes.Buffer
			require.NoError(t, clone.ExecuteTemplate(&b, "page", data))
			assert.Equal(t, "[alice]", b.String())
			assert.False(t, tc.refusesClone, "Clone succeeded")
		})
	}
}
