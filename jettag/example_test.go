package jettag_test

import (
	"context"
	"fmt"
	"os"
	"reflect"

	"github.com/CloudyKit/jet/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/jettag"
)

// Bind a fragment cache to a Jet Set and render a cached block twice: the
// second time the block comes from the cache and its body does not run.
func Example() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	tags := jettag.New(fragment.New(store, fragment.Options{}), jettag.Options{})

	views := jet.NewInMemLoader() // or jet.NewOSFileSystemLoader("./views")
	views.Set("/sidebar.jet", `{{ cache 300, "sidebar", user }}<aside>{{ user }}: render #{{ renders() }}</aside>{{ endcache }}`)
	set, err := tags.NewSet("views", views) // wraps the loader, naming its root, and adds the cache function
	if err != nil {
		panic(err)
	}
	tpl, err := set.GetTemplate("/sidebar.jet")
	if err != nil {
		panic(err)
	}

	n := 0
	vars := jet.VarMap{}.Set("user", "<ann>").SetFunc("renders", func(jet.Arguments) reflect.Value {
		n++
		return reflect.ValueOf(n)
	})
	for range 2 {
		if err := tpl.Execute(os.Stdout, vars, nil); err != nil {
			panic(err)
		}
		fmt.Println()
	}
	// Output:
	// <aside>&lt;ann&gt;: render #1</aside>
	// <aside>&lt;ann&gt;: render #1</aside>
}

// Bind a Set you build yourself, here with custom delimiters: wrap its
// loader with Tags.Loader, tell Options the delimiters, and call Bind.
func ExampleTags_Bind() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	tags := jettag.New(fragment.New(store, fragment.Options{}), jettag.Options{LeftDelim: "[[", RightDelim: "]]"})

	views := jet.NewInMemLoader()
	views.Set("/menu.jet", "[[ cache 60, \"menu\" ]]<nav>menu</nav>[[ endcache ]]")
	loader, err := tags.Loader("views", views)
	if err != nil {
		panic(err)
	}
	set := jet.NewSet(loader, jet.WithDelims("[[", "]]"))
	if err := tags.Bind(set); err != nil {
		panic(err)
	}
	tpl, err := set.GetTemplate("/menu.jet")
	if err != nil {
		panic(err)
	}
	if err := tpl.Execute(os.Stdout, nil, nil); err != nil {
		panic(err)
	}
	fmt.Println()
	// Output:
	// <nav>menu</nav>
}

// Templates given to Set.Parse do not pass through the loader: parse them
// with Tags.Parse. Pass the request's context with WithContext so backend
// calls and waits end with it.
func ExampleTags_Parse() {
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	tags := jettag.New(fragment.New(store, fragment.Options{}), jettag.Options{})
	set, err := tags.NewSet("views", jet.NewInMemLoader())
	if err != nil {
		panic(err)
	}
	tpl, err := tags.Parse(set, "/inline.jet", "{{ cache 300 }}<p>{{ .Title }}</p>{{ endcache }}")
	if err != nil {
		panic(err)
	}
	ctx := context.Background() // e.g. r.Context() in an http.Handler
	if err := tpl.Execute(os.Stdout, jettag.WithContext(nil, ctx), map[string]string{"Title": "Hello"}); err != nil {
		panic(err)
	}
	fmt.Println()
	// Output:
	// <p>Hello</p>
}
