package jettag_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/CloudyKit/jet/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/jettag"
)

// The README's Jet quickstart, kept equal to it by TestREADMEQuickstart:
// the second render is a cache hit, so the block's body runs once.
func Example_quickstart() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{}) // in-process; Redis: see "Redis in production"
	tags := jettag.New(fragment.New(store, fragment.Options{}), jettag.Options{})

	views := jet.NewInMemLoader() // or jet.NewOSFileSystemLoader("./views")
	views.Set("/hello.jet", `{{ cache 300, "greeting", name }}Hello {{ name }} (render #{{ renders() }}){{ endcache }}`)
	set, err := tags.NewSet("views", views) // the name keeps unnamed blocks of two roots apart
	if err != nil {
		log.Fatal(err)
	}
	tpl, err := set.GetTemplate("/hello.jet")
	if err != nil {
		log.Fatal(err)
	}
	renders := 0
	vars := jet.VarMap{}.Set("name", "Ann").Set("renders", func() int { renders++; return renders })
	for range 2 {
		if err := tpl.Execute(os.Stdout, jettag.WithContext(vars, context.Background()), nil); err != nil { // in a handler: r.Context()
			log.Fatal(err)
		}
		fmt.Println()
	}
	// Output:
	// Hello Ann (render #1)
	// Hello Ann (render #1)
}
