package keys_test

import (
	"fmt"

	"github.com/fragcache/fragcache/keys"
)

// App code computes the same key a template's
// {% cache 300, "sidebar", user.ID %} block stores under, to delete it.
func ExampleMakeTemplateFragmentKey() {
	fmt.Println(keys.MakeTemplateFragmentKey("sidebar"))
	fmt.Println(keys.MakeTemplateFragmentKey("sidebar", "42", "en"))
	// Output:
	// _template_fragment_cache_sidebar
	// _template_fragment_cache_sidebar_42_en
}

// A block without a name is named after its template path and line.
func ExampleFragmentName() {
	name := keys.FragmentName("shop/index.html", 12)
	fmt.Println(name)
	fmt.Println(keys.MakeTemplateFragmentKey(name, "7"))
	// Output:
	// shop/index.html12
	// _template_fragment_cache_shop/index.html12_7
}

func ExampleSafeKey() {
	fmt.Println(keys.SafeKey("user:42"))
	fmt.Println(len(keys.SafeKey("a key with spaces")) <= keys.MaxSafeKeyLen)
	// Output:
	// user:42
	// true
}
