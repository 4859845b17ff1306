package htmltemplate_test

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"testing/fstest"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
)

// Bind a fragment cache when creating the template; the second render is
// served from the cache, so the body's function runs once.
func Example() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	fc := fragment.New(store, fragment.Options{})

	renders := 0
	t := htmltemplate.Must(htmltemplate.New("page.html", fc).
		Funcs(template.FuncMap{"count": func() int { renders++; return renders }}).
		Parse(`<aside>{{ cache 300 "sidebar" .User }}<b>{{ .User }}</b> #{{ count }}{{ endcache }}</aside>` + "\n"))

	for range 2 {
		if err := t.Execute(os.Stdout, map[string]string{"User": "<ann>"}); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("body rendered", renders, "time(s)")
	// Output:
	// <aside><b>&lt;ann&gt;</b> #1</aside>
	// <aside><b>&lt;ann&gt;</b> #1</aside>
	// body rendered 1 time(s)
}

// Load templates from an fs.FS by their paths, so that files with the same
// base name in different directories stay apart; unnamed blocks are keyed
// by that path and their line.
func ExampleParseFSPaths() {
	files := fstest.MapFS{
		"index.html":      {Data: []byte(`{{ template "shop/index.html" . }}`)},
		"shop/index.html": {Data: []byte("<h1>Shop</h1>\n{{ cache 60 }}<ul>{{ range . }}<li>{{ . }}</li>{{ end }}</ul>{{ endcache }}\n")},
	}
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	t := htmltemplate.Must(htmltemplate.ParseFSPaths(fragment.New(store, fragment.Options{}), files, "*.html", "*/*.html"))

	if err := t.ExecuteTemplate(os.Stdout, "index.html", []string{"tea", "cups"}); err != nil {
		fmt.Println(err)
	}
	found, _ := store.Has(context.Background(), "_template_fragment_cache_shop/index.html2")
	fmt.Println("stored under shop/index.html2:", found)
	// Output:
	// <h1>Shop</h1>
	// <ul><li>tea</li><li>cups</li></ul>
	// stored under shop/index.html2: true
}

// A block in an attribute value would have its HTML escaped a second time;
// the first execution reports it, with its position, and writes nothing.
func ExampleTemplate_Check() {
	t := htmltemplate.Must(htmltemplate.New("card.html", nil).Parse(`<a title="{{ cache 300 }}{{ .Name }}{{ endcache }}">`))

	err := t.Check()
	fmt.Println(err)
	fmt.Println(errors.Is(err, htmltemplate.ErrContext), errors.Is(t.Execute(io.Discard, nil), htmltemplate.ErrContext))
	// Output:
	// card.html:1:13: cache: htmltemplate: cache block must be in HTML element content: it is in a quoted attribute value (html/template context stateAttr_delimDoubleQuote)
	// true true
}
