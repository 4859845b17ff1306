package htmltemplate

import (
	"strings"
	"testing"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/templatefuzz"
)

// unboundedHTML are constructs with which text/template itself can repeat
// a body without bound: template calls (recursion, or a chain of
// templates each calling the next twice) and call.
var unboundedHTML = []string{"template", "call"}

// FuzzTemplate parses random template text with cache blocks. Parse errors
// are fine; a panic from fragcache's code is not (nor a runtime error,
// which text/template turns into an error when it happens in a function it
// calls, such as a block's); and a template that parses renders the same
// through a cache, first render and second, as with no cache
// (templatefuzz.CheckCachedEqualsUncached).
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{
		`<a>{{ cache 300 }}A{{ endcache }}</a><b>{{ cache 300 }}B{{ endcache }}</b>`, // refused: one line
		"<a>{{ cache 300 }}A{{ endcache }}</a>\n<b>{{ cache 300 }}B{{ endcache }}</b>",
		`{{ cache 300 .X }}A{{ endcache }}{{ cache 300 .X }}B{{ endcache }}`,
		`{{ cache 300 "sidebar" .N }}<i>{{ .S }}</i>{{ endcache }}`,
		`{{ cache 0.05 "f" }}{{ .S }}{{ endcache }}{{ cache nil }}{{ .N }}{{ endcache }}`,
		`{{ cache "del" "d" }}{{ .S }}{{ endcache }}`,
		`{{ cache 300 "o" }}a{{ cache 300 "i" }}{{ .S }}{{ endcache }}b{{ endcache }}`,
		`{{ range $i, $x := .L }}{{ cache 300 "row" $i }}[{{ $x }}]{{ endcache }}{{ end }}`,
		`{{ range .L }}{{ cache 300 }}[{{ . }}]{{ endcache }}{{ end }}`, // shares a key by design
		`{{ cache 300 "same" }}1{{ endcache }}{{ cache 300 "same" }}2{{ endcache }}`,
		"A  \n {{- cache 300 -}} \n B \n {{- endcache -}} \n C",
		`{{ cache 300 }}{{ $ }}{{ $.S }}{{ endcache }}`,
		`{{ with .S }}{{ cache 300 "w" }}{{ . }}{{ endcache }}{{ end }}`,
		`{{ define "d" }}{{ cache 300 "in d" }}d{{ endcache }}{{ end }}{{ block "b" . }}{{ cache 1 "b" }}b{{ endcache }}{{ end }}`,
		`<a href="{{ cache 300 }}x{{ endcache }}">`, `<script>{{ cache 300 }}x{{ endcache }}</script>`,
		`{{ cache 300 }}<b>{{ endcache }}</b>`,
		`{{ cache 300 "r" }}{{ cache 300 "r" }}x{{ endcache }}{{ endcache }}`,
		`{{ cache }}x{{ endcache }}`, `{{ cache 300 }}x`, `{{ endcache }}`, `{{ cache -1 }}x{{ endcache }}`,
		`{{ cache "abc" }}x{{ endcache }}`, `{{ cache 300 .L }}x{{ endcache }}`, `{{ $v := 1 }}{{ cache 300 }}{{ $v }}{{ endcache }}`,
		`{{ range .L }}{{ cache 300 }}{{ break }}{{ endcache }}{{ end }}`,
		`{{ cache 300 "n" .Missing.X .S }}x{{ endcache }}{{ cache 300 "e" .S.X }}y{{ endcache }}`, // arguments the block evaluates
		`{{ range .L }}{{ cache 300 "r" . }}{{ $.N }}{{ . }}{{ endcache }}{{ end }}`,
		`{{ $ = .L }}{{ cache 300 "re" }}{{ $ }}{{ . }}{{ endcache }}`,
		`{{ define "p" }}{{ cache 300 "p" .S }}{{ . }}{{ endcache }}{{ end }}{{ template "p" . }}{{ template "p" .L }}{{ with .L }}{{ template "p" . }}{{ end }}`, // partials with another dot
		`{{ with .X }}{{ else with .L }}{{ cache 300 "ew" .S }}{{ . }}{{ endcache }}{{ end }}`,
		`{{ if .N }}{{ $ = .L }}{{ end }}{{ cache 300 "ra" $.S .N }}{{ $ }}{{ endcache }}`,
		`{{ range $i, $e := .L }}{{ cache 300 "rd" $.N . $i }}{{ $e }}{{ $.S }}{{ endcache }}{{ else }}{{ cache 300 "re" .N }}{{ .S }}{{ endcache }}{{ end }}`,
		`{{ define "q" }}{{ cache 300 "q" $.N }}{{ $ }}{{ endcache }}{{ end }}{{ cache 300 "o" .S }}{{ template "q" . }}{{ endcache }}{{ template "q" .S }}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		var err error
		if templatefuzz.Guard(t, func() { _, err = New("f.html", templatefuzz.Store()).Parse(src) }) || err != nil {
			return
		}
		if !templatefuzz.Bounded(src, unboundedHTML, "range", 1) {
			return
		}
		render := func(fc *fragment.Cache) (string, error) {
			tpl, err := New("f.html", fc).Parse(src)
			if err != nil {
				return "", err
			}
			var b strings.Builder
			err = tpl.Execute(&b, map[string]any{"N": 7, "S": `<s&"'>`, "L": []string{"a", "<b>"}, "X": nil})
			return b.String(), err
		}
		templatefuzz.CheckCachedEqualsUncached(t, render, templatefuzz.DefaultKeyShared("f.html", src, "range"))
	})
}
