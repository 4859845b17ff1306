package htmltemplate

import (
	"bytes"
	"html/template"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

func TestBlocksOutsideElementContentAreRejected(t *testing.T) {
	tests := []struct {
		name, src string
		at        string // the rejected block's cache tag: this occurrence...
		nth       int    // ... (0-based) of at
		msg       string
	}{
		{"quoted attribute", `<a title="{{ cache 1 }}<i>x</i>{{ endcache }}">`, "cache", 0, "a quoted attribute value"},
		{"single-quoted attribute", `<a title='{{ cache 1 }}x{{ endcache }}'>`, "cache", 0, "a quoted attribute value"},
		{"unquoted attribute", "<p>\n<a title={{ cache 1 }}x{{ endcache }}>", "cache", 0, "an unquoted attribute value"},
		{"inside a tag", `<a {{ cache 1 }}title=x{{ endcache }}>`, "cache", 0, "a tag"},
		{"script", `<script>var x = {{ cache 1 }}1{{ endcache }};</script>`, "cache", 0, "a script"},
		{"script string", `<script>var x = "{{ cache 1 }}1{{ endcache }}";</script>`, "cache", 0, "a script"},
		{"event handler", `<a onclick="{{ cache 1 }}f(){{ endcache }}">`, "cache", 0, "a script"},
		{"style", `<style>p { color: {{ cache 1 }}red{{ endcache }} }</style>`, "cache", 0, "a style sheet"},
		{"style attribute", `<p style="{{ cache 1 }}color:red{{ endcache }}">`, "cache", 0, "a style sheet"},
		{"href URL", `<a href="{{ cache 1 }}/x{{ endcache }}">`, "cache", 0, "a URL"},
		{"href URL query", `<a href="/x?q={{ cache 1 }}y{{ endcache }}">`, "cache", 0, "a URL"},
		{"srcset", `<img srcset="{{ cache 1 }}a.png 2x{{ endcache }}">`, "cache", 0, "a URL"},
		{"title element", `<title>{{ cache 1 }}x{{ endcache }}</title>`, "cache", 0, "RCDATA"},
		{"textarea element", `<textarea>{{ cache 1 }}x{{ endcache }}</textarea>`, "cache", 0, "RCDATA"},
		{"comment", `<!-- {{ cache 1 }}x{{ endcache }} -->`, "cache", 0, "an HTML comment"},
		{"in a define called from an attribute", "{{ define \"p\" }}\n {{ cache 1 }}<b>x</b>{{ endcache }}{{ end }}<a title=\"{{ template \"p\" }}\">", "cache", 0, "a quoted attribute value"},
		{"nested in a body", `{{ cache 1 }}<a title="{{ cache 2 "in" }}x{{ endcache }}">{{ endcache }}`, "cache 2", 0, "a quoted attribute value"},
		{"in a define called from a body", `{{ define "p" }}{{ cache 1 }}x{{ endcache }}{{ end }}{{ cache 2 "out" }}<a title="{{ template "p" }}">{{ endcache }}`, "cache", 0, "a quoted attribute value"},
		{"body ending in a URL", `{{ cache 1 }}<a href="{{ endcache }}">`, "cache", 0, "its body ends in a URL"},
		{"body ending in a script", `{{ cache 1 }}<script>{{ endcache }}</script>`, "cache", 0, "its body ends in a script"},
		{"body ending in a tag", `{{ cache 1 }}<a {{ endcache }}>`, "cache", 0, "its body ends in a tag"},
		{"body ending in a URL, in a partial called from an attribute", `{{ define "tail" }}">{{ cache 1 }}<a href="{{ endcache }}"><a title="{{ end }}<a title="{{ template "tail" }}">`, "cache", 0, "its body ends in a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			fc, simple := newCache(fragment.Options{})
			tpl := parseT(t, fc, "page.html", "{{ inc }}"+tc.src, template.FuncMap{"inc": c.inc})
			pos := positionOf(t, "{{ inc }}"+tc.src, tc.at, tc.nth)
			want := fragment.Site{Path: "page.html", Line: pos.line, Col: pos.col}
			check := func(err error) {
				t.Helper()
				require.ErrorIs(t, err, ErrContext)
				assert.Contains(t, err.Error(), tc.msg)
				site := *siteError(t, err).Site
				site.Digest = ""
				assert.Equal(t, want, site)
			}
			check(tpl.Check())
			for range 2 { // the result is remembered
				out, err := run(tpl, nil)
				check(err)
				assert.Empty(t, out, "nothing is written")
			}
			var buf bytes.Buffer
			check(tpl.ExecuteTemplate(&buf, "page.html", nil))
			assert.Zero(t, c.n.Load(), "nothing is executed")
			assert.Zero(t, simple.Len())
		})
	}
}

func TestBlocksInElementContentAreAccepted(t *testing.T) {
	tests := []struct{ name, src string }{
		{"top level", `{{ cache 1 }}<b>{{ .X }}</b>{{ endcache }}`},
		{"inside elements", `<div><p>{{ cache 1 }}<b>{{ .X }}</b>{{ endcache }}</p></div>`},
		{"after a script, a style and a title", `<script>var a = 1;</script><style>p{}</style><title>t</title>{{ cache 1 }}<i>{{ .X }}</i>{{ endcache }}`},
		{"after an attribute", `<a title="{{ .X }}">{{ cache 1 }}{{ .X }}{{ endcache }}</a>`},
		{"in a branch", `{{ if .X }}{{ cache 1 "y" }}y{{ endcache }}{{ else }}<p>{{ cache 2 "n" }}n{{ endcache }}</p>{{ end }}`},
		{"in a define called from element content", `{{ define "p" }}{{ cache 1 }}<b>{{ . }}</b>{{ endcache }}{{ end }}<div>{{ template "p" .X }}</div>`},
		{"nested", "{{ cache 1 }}<ul>\n{{ cache 2 }}<li>{{ .X }}</li>{{ endcache }}</ul>{{ endcache }}"},
		{"in a partial starting in an attribute", `{{ define "tail" }}">{{ cache 1 }}<b>{{ . }}</b>{{ endcache }}<a title="{{ end }}<a title="{{ template "tail" .X }}">`},
	}
	data := map[string]any{"X": "<x>"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc, _ := newCache(fragment.Options{})
			tpl := parseT(t, fc, "page.html", tc.src, nil)
			require.NoError(t, tpl.Check())
			want := runPlain(t, uncached(t, "page.html", tc.src, nil), data)
			for range 2 {
				out, err := run(tpl, data)
				require.NoError(t, err)
				assert.Equal(t, want, out)
			}
		})
	}
}

// TestContextIsCheckedPerEntry: a block's context depends on the template
// executed, through the {{template}} calls that reach it.
func TestContextIsCheckedPerEntry(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "p", `{{ define "part" }}{{ cache 1 }}<b>x</b>{{ endcache }}{{ end }}`+
		`{{ define "good" }}<div>{{ template "part" }}</div>{{ end }}`+
		`{{ define "bad" }}<a title="{{ template "part" }}">{{ end }}`+
		`{{ define "unrelated" }}<p>no block</p>{{ end }}`, nil)
	var buf bytes.Buffer
	require.NoError(t, tpl.ExecuteTemplate(&buf, "good", nil))
	assert.Equal(t, "<div><b>x</b></div>", buf.String())
	require.NoError(t, tpl.ExecuteTemplate(&buf, "unrelated", nil))
	assert.ErrorIs(t, tpl.ExecuteTemplate(&buf, "bad", nil), ErrContext)
	assert.ErrorIs(t, tpl.Check("good", "bad"), ErrContext)
	assert.NoError(t, tpl.Check("good", "unrelated"))
	assert.NoError(t, tpl.Lookup("good").Check())

	err := tpl.ExecuteTemplate(&buf, "missing", nil)
	assert.ErrorContains(t, err, `"missing" is undefined`, "html/template reports it")
}

// TestParseAfterAFailedCheck: a failed check executes nothing, so the
// template can still be fixed by parsing, and is checked again.
func TestParseAfterAFailedCheck(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "page", `{{ define "part" }}{{ cache 1 }}x{{ endcache }}{{ end }}<a title="{{ template "part" }}">`, nil)
	_, err := run(tpl, nil)
	require.ErrorIs(t, err, ErrContext)
	_, err = tpl.Parse(`<p>{{ template "part" }}</p>`)
	require.NoError(t, err)
	out, err := run(tpl, nil)
	require.NoError(t, err)
	assert.Equal(t, "<p>x</p>", out)
}

// TestDerivedContextsFailClosed: a copy of a stand-in is found by its name
// starting with the stand-in's, so a block outside element content stays
// rejected if html/template changes how it names the copies; only the
// wording of the message loses the context.
func TestDerivedContextsFailClosed(t *testing.T) {
	tests := []struct {
		defined string
		want    map[int]string
	}{
		{`; defined templates are: "page", "_fragcache_ctx_3", "_fragcache_ctx_3$htmltemplate_stateAttr_delimDoubleQuote"`,
			map[int]string{3: "stateAttr_delimDoubleQuote"}},
		{`; defined templates are: "_fragcache_ctx_12", "_fragcache_ctx_1", "_fragcache_ctx_12#newnaming"`,
			map[int]string{12: ""}},
		{`; defined templates are: "_fragcache_ctx_2", "_fragcache_probe_2"`, map[int]string{}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, derivedContexts(tt.defined), tt.defined)
	}
	assert.Equal(t, "a context other than element content", describe(""))
}
