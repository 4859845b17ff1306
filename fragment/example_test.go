package fragment_test

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

// An engine's cache tag hands each execution of
// {% cache 300, "sidebar", user.ID %}…{% endcache %} to Render. The first
// execution renders the body and stores it; the second is served from the
// store without running the body.
func ExampleCache_Render() {
	ctx := context.Background()
	store := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	fc := fragment.New(store, fragment.Options{})

	// The engine builds the Site once, when it parses the template.
	site := &fragment.Site{Path: "shop/index.html", Line: 12, Col: 1}
	body := func(w io.Writer) error {
		fmt.Println("(rendering the sidebar)")
		_, err := io.WriteString(w, "<aside>Hello, user 42</aside>\n")
		return err
	}
	for range 2 {
		call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar", VaryOn: []any{42}}
		if err := fc.Render(ctx, call, os.Stdout, body); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(fc.Key("sidebar", "42"))
	// Output:
	// (rendering the sidebar)
	// <aside>Hello, user 42</aside>
	// <aside>Hello, user 42</aside>
	// _template_fragment_cache_sidebar_42
}

// After the data behind a fragment changes, app code deletes it by the
// block's name and vary_on values, in their text forms; the next render
// runs the body again.
func ExampleCache_Delete() {
	ctx := context.Background()
	store := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	fc := fragment.New(store, fragment.Options{})

	site := &fragment.Site{Path: "shop/product.html", Line: 3, Col: 1}
	// Timeout 0: the fragment never expires, only Delete removes it.
	call := fragment.Call{Site: site, Timeout: 0, Name: "price", VaryOn: []any{7}}
	price := "9.99"
	body := func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "price: %s\n", price)
		return err
	}

	_ = fc.Render(ctx, call, os.Stdout, body)
	price = "7.49"
	_ = fc.Render(ctx, call, os.Stdout, body) // still the stored fragment

	deleted, err := fc.Delete(ctx, "price", "7")
	fmt.Println("deleted:", deleted, err)
	// The key is Flask's, so store.Delete with keys.MakeTemplateFragmentKey
	// would have done the same.
	fmt.Println(fc.Key("price", "7") == keys.MakeTemplateFragmentKey("price", "7"))

	_ = fc.Render(ctx, call, os.Stdout, body)
	// Output:
	// price: 9.99
	// price: 9.99
	// deleted: true <nil>
	// true
	// price: 7.49
}

// Stats shows how well fragments are served from the cache.
func ExampleCache_Stats() {
	ctx := context.Background()
	store := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	fc := fragment.New(store, fragment.Options{})

	site := &fragment.Site{Path: "index.html", Line: 5, Col: 1}
	body := func(w io.Writer) error {
		_, err := io.WriteString(w, "<nav>…</nav>")
		return err
	}
	for _, timeout := range []any{60, 60, 60, "del"} {
		call := fragment.Call{Site: site, Timeout: timeout} // unnamed: keyed "index.html5"
		if err := fc.Render(ctx, call, io.Discard, body); err != nil {
			fmt.Println(err)
		}
	}
	s := fc.Stats()
	fmt.Printf("hits=%d misses=%d renders=%d del_blocks=%d\n", s.Hits, s.Misses, s.Renders, s.DelBlocks)

	bad := fragment.Call{Site: site, Timeout: "forever"}
	fmt.Println(fc.Render(ctx, bad, io.Discard, body))
	// Output:
	// hits=2 misses=1 renders=1 del_blocks=1
	// index.html:5:1: cache: fragment: invalid cache timeout: "forever" (want seconds, a time.Duration, nil or "del")
}
