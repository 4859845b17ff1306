package pongo2tag

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/templatefuzz"
)

// fuzzFiles are what a fuzzed template may include or extend. None of them
// includes anything, so no input can make pongo2 recurse through them.
var fuzzFiles = fstest.MapFS{
	"part.html": {Data: []byte("<p>\n{% cache 300 %}part {{ n }}{% endcache %}</p>")},
	"base.html": {Data: []byte("<b>{% block a %}A{% endblock %}</b>\n{% cache 60, \"base\" %}[{% block c %}{% endblock %}]{% endcache %}")},
}

// fuzzData is the context of every fuzzed render.
func fuzzData() pongo2.Context {
	return pongo2.Context{"n": 7, "s": `<s&"'>`, "items": []string{"a", "<b>"}, "user": map[string]any{"id": 42}}
}

// unboundedPongo2 are constructs with which pongo2 itself can loop or
// recurse without bound, or render differently each time (templatefuzz.Bounded).
var unboundedPongo2 = []string{"macro", "*", "^", "now", "random", "lorem"}

// skipsForever reports whether pongo2 v6 itself would loop forever parsing
// src: Parser.SkipUntilTag, which {% comment %} uses, waits for "%}" after
// the end tag's name without consuming anything else, so
// "{% comment %}{% endcomment" or "{% endcomment x %}" never returns.
func skipsForever(src string) bool {
	for i := 0; ; {
		j := strings.Index(src[i:], "endcomment")
		if j < 0 {
			return false
		}
		i += j + len("endcomment")
		rest := strings.TrimLeft(src[i:], " \t\r\n")
		if !strings.HasPrefix(rest, "%}") && !strings.HasPrefix(rest, "-%}") {
			return true
		}
	}
}

// FuzzTemplate parses random template text with cache blocks. Parse errors
// are fine; a panic from fragcache's code is not; and a template that
// parses renders the same through a cache, first render and second, as
// with no cache (templatefuzz.CheckCachedEqualsUncached). The same text
// loaded as a file through a Loader parses and renders as it does from a
// string: the tag Loader appends changes nothing.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{
		`<a>{% cache 300 %}A{% endcache %}</a><b>{% cache 300 %}B{% endcache %}</b>`, // issue 12 item 10
		"<a>{% cache 300 %}A{% endcache %}</a>\n<b>{% cache 300 %}B{% endcache %}</b>",
		`{% cache 300, "sidebar", user.id %}<i>{{ s }}</i>{% endcache %}`,
		`{% cache 60*5, "x", n %}{{ n + 1 }}{% endcache %}`,
		`{% cache 0.05 %}{{ s|safe }}{% endcache %}`,
		`{% cache None, None, n %}{{ s }}{% endcache %}`,
		`{% cache "del", "d" %}{{ s }}{% endcache %}`,
		`{% cache 300, "o" %}a{% cache 300, "i" %}{{ s }}{% endcache %}b{% endcache %}`,
		`{% for it in items %}{% cache 300, "row", it %}[{{ it }}]{% endcache %}{% endfor %}`,
		`{% for it in items %}{% cache 300 %}[{{ it }}]{% endcache %}{% endfor %}`, // shares a key by design
		`{% cache 300, "same" %}1{% endcache %}{% cache 300, "same" %}2{% endcache %}`,
		"a \n {%- cache 300 -%} \n {{ s }} \n {%- endcache -%} \n b",
		`{% autoescape off %}{% cache 300, "off" %}{{ s }}{% endcache %}{% endautoescape %}`,
		`{% include "part.html" %}{% include "part.html" %}`,
		"{% extends \"base.html\" %}{% block c %}\n{% cache 300 %}{{ s }}{% endcache %}{% endblock %}",
		`{% comment %}{% cache 300 %}{% endcomment %}{% cache 300 %}x{% endcache %}`,
		`{% cache 300 %}{% if n %}y{% else %}{% cache 1, "z" %}z{% endcache %}{% endif %}{% endcache %}`,
		`{% cache %}x{% endcache %}`, `{% cache 300 %}x`, `{% endcache %}`, `{% cache 300, %}x{% endcache %}`,
		`{% cache 300 "a" %}x{% endcache %}`, `{% cache "abc" %}x{% endcache %}`, `{% cache -1 %}x{% endcache %}`,
		`{% cache 300, items %}x{% endcache %}`, `{% cache 300 %}{% fragcachepath "eA" %}{% endcache %}`,
		`{% cache 300, "r" %}{% cache 300, "r" %}x{% endcache %}{% endcache %}`,
	} {
		f.Add(seed)
	}
	require := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 || skipsForever(src) {
			return
		}
		require(t, registerOnce())
		loader, err := NewLoader("fuzz", pongo2.NewFSLoader(fuzzFiles))
		require(t, err)
		set := pongo2.NewSet("fuzz", loader)
		var tpl *pongo2.Template
		if templatefuzz.Guard(t, func() { tpl, err = set.FromString(src) }) || err != nil {
			return
		}
		if !templatefuzz.Bounded(src, unboundedPongo2, "for", 1) {
			return
		}
		render := func(tpl *pongo2.Template) templatefuzz.Render {
			return func(fc *fragment.Cache) (string, error) {
				var b strings.Builder
				err := Execute(context.Background(), fc, tpl, With(context.Background(), fc, fuzzData()), &b)
				return b.String(), err
			}
		}
		templatefuzz.CheckCachedEqualsUncached(t, render(tpl), templatefuzz.DefaultKeyShared(stringTemplate, src, "for", "include", "extends"))

		// The same text as a file through a Loader: one that could reach
		// itself is left out, since pongo2 would include it forever.
		for _, w := range []string{"include", "extends", "import", "ssi", pathTagName} {
			if strings.Contains(src, w) {
				return
			}
		}
		fileLoader, err := NewLoader("fuzzfile", pongo2.NewFSLoader(fstest.MapFS{"f.html": {Data: []byte(src)}}))
		require(t, err)
		var file *pongo2.Template
		if templatefuzz.Guard(t, func() { file, err = pongo2.NewSet("fuzzfile", fileLoader).FromFile("f.html") }) {
			t.Fatal("parsing from the Loader panicked, from a string it did not")
		}
		if err != nil {
			t.Fatalf("parses from a string, not from the Loader: %v", err)
		}
		null := fragment.New(templatefuzz.NullStore(), fragment.Options{})
		var want, got string
		var wantErr, gotErr error
		if templatefuzz.Guard(t, func() { want, wantErr = render(tpl)(null) }) ||
			templatefuzz.Guard(t, func() { got, gotErr = render(file)(null) }) {
			return
		}
		if want != got || (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("from a string: %q, %v; from the Loader: %q, %v", want, wantErr, got, gotErr)
		}
	})
}
