package pongo2tag_test

import (
	"context"
	"fmt"
	"log"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
	"github.com/fragcache/fragcache/pongo2tag"
)

// Bind one fragment cache to a whole template set at startup; every cache
// block of its templates then stores into it. The second render is served
// from the cache: the body, and so count(), runs once.
func ExampleBind() {
	if err := pongo2tag.Register(pongo2tag.Options{}); err != nil { // once, before parsing
		log.Fatal(err)
	}
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	set := pongo2.NewSet("web", pongo2.MustNewLocalFileSystemLoader(""))
	pongo2tag.Bind(set, fc)

	tpl, err := set.FromString(`{% cache 300, "sidebar", user %}<p>{{ user }}: render #{{ count() }}</p>{% endcache %}`)
	if err != nil {
		log.Fatal(err)
	}
	renders := 0
	count := func() int { renders++; return renders }
	for range 2 {
		out, err := tpl.Execute(pongo2.Context{"user": "<ann>", "count": count})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}
	// Output:
	// <p>&lt;ann&gt;: render #1</p>
	// <p>&lt;ann&gt;: render #1</p>
}

// Bind a cache per render with With to give the backend the request's
// context. App code invalidates a named fragment with the same name and
// vary_on values the block uses.
func ExampleWith() {
	if err := pongo2tag.Register(pongo2tag.Options{}); err != nil {
		log.Fatal(err)
	}
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	tpl, err := pongo2.FromString(`{% cache 300, "cart", user %}{{ user }} has {{ items() }} items{% endcache %}`)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background() // in a handler: r.Context()
	stock := 3
	data := pongo2.Context{"user": "ann", "items": func() int { return stock }}
	show := func() {
		out, err := tpl.Execute(pongo2tag.With(ctx, fc, data))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}

	show()
	stock = 4
	show() // still cached
	if _, err := fc.Delete(ctx, "cart", "ann"); err != nil {
		log.Fatal(err)
	}
	show()
	fmt.Println(fc.Key("cart", "ann") == keys.MakeTemplateFragmentKey("cart", "ann"))
	// Output:
	// ann has 3 items
	// ann has 3 items
	// ann has 4 items
	// true
}

// Load templates through a named Loader: a block without a name is keyed
// by the loader's name, its template's path under the loader's directory,
// and its line, whether the template came from FromFile, FromCache, an
// include or an extends. Loader.Path gives app code the same path.
func ExampleNewLoader() {
	if err := pongo2tag.Register(pongo2tag.Options{}); err != nil {
		log.Fatal(err)
	}
	loader, err := pongo2tag.NewLoader("web", pongo2.MustNewLocalFileSystemLoader("testdata/tpl"))
	if err != nil {
		log.Fatal(err)
	}
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	set := pongo2.NewSet("web", loader)
	pongo2tag.Bind(set, fc)

	tpl, err := set.FromCache("shop/includer.html") // includes shop/item.html, block on line 2
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tpl.Execute(pongo2.Context{"item": "pen"}); err != nil {
		log.Fatal(err)
	}
	path, err := loader.Path("shop/item.html")
	if err != nil {
		log.Fatal(err)
	}
	key := keys.MakeTemplateFragmentKey(keys.FragmentName(path, 2))
	stored, err := fc.Store().Has(context.Background(), key)
	fmt.Println(key, stored, err)
	// Output:
	// _template_fragment_cache_web/shop/item.html2 true <nil>
}
