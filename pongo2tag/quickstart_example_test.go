package pongo2tag_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/pongo2tag"
)

// The README's pongo2 quickstart, kept equal to it by TestREADMEQuickstart:
// the second render is a cache hit, so the block's body runs once.
func Example_quickstart() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{}) // in-process; Redis: see "Redis in production"
	fc := fragment.New(store, fragment.Options{})
	if err := pongo2tag.Register(pongo2tag.Options{}); err != nil { // once, before parsing templates
		log.Fatal(err)
	}

	tpl := pongo2.Must(pongo2.FromString(`{% cache 300, "greeting", name %}Hello {{ name }} (render #{{ renders() }}){% endcache %}`))
	renders := 0
	data := pongo2.Context{"name": "Ann", "renders": func() int { renders++; return renders }}
	for range 2 {
		if err := pongo2tag.Execute(context.Background(), fc, tpl, data, os.Stdout); err != nil { // in a handler: r.Context(), w
			log.Fatal(err)
		}
		fmt.Println()
	}
	// Output:
	// Hello Ann (render #1)
	// Hello Ann (render #1)
}
