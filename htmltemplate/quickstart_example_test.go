package htmltemplate_test

import (
	"context"
	"fmt"
	"html/template"
	"log"
	"os"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
)

// The README's html/template quickstart, kept equal to it by
// TestREADMEQuickstart: the second render is a cache hit, so the block's
// body runs once.
func Example_quickstart() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{}) // in-process; Redis: see "Redis in production"
	fc := fragment.New(store, fragment.Options{})

	renders := 0
	t := htmltemplate.Must(htmltemplate.New("hello.html", fc).
		Funcs(template.FuncMap{"renders": func() int { renders++; return renders }}).
		Parse(`{{ cache 300 "greeting" .Name }}Hello {{ .Name }} (render #{{ renders }}){{ endcache }}`))
	for range 2 {
		if err := t.ExecuteContext(context.Background(), os.Stdout, map[string]string{"Name": "Ann"}); err != nil { // in a handler: r.Context()
			log.Fatal(err)
		}
		fmt.Println()
	}
	// Output:
	// Hello Ann (render #1)
	// Hello Ann (render #1)
}
