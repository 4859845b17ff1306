package htmltemplate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		is        error
		at        string // the error points at this occurrence...
		nth       int    // ... (0-based) of at
		msg       string
	}{
		{"cache without endcache", "<p>\n  {{ cache 1 }}x", ErrSyntax, "cache", 0, "without a matching endcache"},
		{"endcache outside the cache's if", "{{ if .A }}{{ cache 1 }}{{ end }}{{ endcache }}", ErrSyntax, "cache", 0, "same {{if}}"},
		{"cache outside the endcache's range", "{{ cache 1 }}{{ range .A }}{{ endcache }}{{ end }}", ErrSyntax, "cache", 0, "without a matching endcache"},
		{"endcache inside a range", "{{ range .A }}{{ endcache }}{{ end }}", ErrSyntax, "endcache", 0, "endcache without a cache"},
		{"endcache without cache", "x\n{{ endcache }}", ErrSyntax, "endcache", 0, "endcache without a cache"},
		{"second endcache", "{{ cache 1 }}{{ endcache }}{{ endcache }}", ErrSyntax, "endcache", 1, "endcache without a cache"},
		{"cache without timeout", "{{ cache }}x{{ endcache }}", ErrSyntax, "cache", 0, "needs a timeout"},
		{"endcache with arguments", "{{ cache 1 }}x{{ endcache 1 }}", ErrSyntax, "endcache", 0, "takes no arguments"},
		{"cache in a pipeline", "{{ cache 1 | print }}x{{ endcache }}", ErrSyntax, "cache", 0, "action of its own"},
		{"cache assigned", "{{ $x := cache 1 }}", ErrSyntax, "cache", 0, "action of its own"},
		{"cache as an argument", "{{ print (cache 1) }}", ErrSyntax, "cache", 0, "action of its own"},
		{"endcache as a condition", "{{ if endcache }}{{ end }}", ErrSyntax, "endcache", 0, "action of its own"},
		{"cache in a cache's arguments", "{{ cache (cache 1) }}x{{ endcache }}", ErrSyntax, "cache", 1, "action of its own"},
		{"cache in a template call", `{{ template "t" cache }}{{ define "t" }}{{ end }}`, ErrSyntax, "cache", 0, "action of its own"},
		{"string timeout", `{{ cache "soon" }}x{{ endcache }}`, fragment.ErrTimeout, `"soon"`, 0, `"soon"`},
		{"negative timeout", "\n\n{{ cache -1 }}x{{ endcache }}", fragment.ErrTimeout, "-1", 0, "-1"},
		{"negative float timeout", "{{ cache -0.5 }}x{{ endcache }}", fragment.ErrTimeout, "-0.5", 0, "-0.5"},
		{"bool timeout", "{{ cache true }}x{{ endcache }}", fragment.ErrTimeout, "true", 0, "true"},
		{"complex name", "{{ cache 1 1i }}x{{ endcache }}", fragment.ErrKeyValue, "1i", 0, "complex128"},
		{"complex vary_on", `{{ cache 1 "n" 2i }}x{{ endcache }}`, fragment.ErrKeyValue, "2i", 0, "complex128"},
		{"timeout overflowing int", "{{ cache 18446744073709551615 }}x{{ endcache }}", ErrSyntax, "1844", 0, "overflows int"},
		{"outer variable", "{{ $x := 1 }}{{ cache 60 }}{{ $x }}{{ endcache }}", ErrOuterVariable, "$x", 1, "$x"},
		{"range variable", "{{ range $i, $v := .L }}\n{{ cache 60 }}{{ $v }}{{ endcache }}{{ end }}", ErrOuterVariable, "$v", 1, "$v"},
		{"with variable", "{{ with $w := .A }}{{ cache 60 }}{{ $w.B }}{{ endcache }}{{ end }}", ErrOuterVariable, ".B", 0, "$w"}, // text/template places $w.B at .B
		{"outer variable assigned", "{{ $x := 1 }}{{ cache 1 }}{{ $x = 2 }}{{ endcache }}", ErrOuterVariable, "$x", 1, "$x"},
		{"outer variable on the right of a declaration", "{{ $x := 1 }}{{ cache 1 }}{{ $x := $x }}{{ endcache }}", ErrOuterVariable, "$x", 2, "$x"},
		{"variable of the if branch in the else branch", "{{ $x := 1 }}{{ cache 1 }}{{ if .A }}{{ $x := 2 }}{{ $x }}{{ else }}{{ $x }}{{ end }}{{ endcache }}", ErrOuterVariable, "$x", 3, "$x"},
		{"variable after its if ended", "{{ $x := 1 }}{{ cache 1 }}{{ if .A }}{{ $x := 2 }}{{ end }}{{ $x }}{{ endcache }}", ErrOuterVariable, "$x", 2, "$x"},
		{"outer variable in a template call", `{{ $x := 1 }}{{ cache 1 }}{{ template "t" $x }}{{ endcache }}{{ define "t" }}{{ end }}`, ErrOuterVariable, "$x", 1, "$x"},
		{"outer variable in a chain", "{{ $x := .A }}{{ cache 1 }}{{ ($x).B }}{{ endcache }}", ErrOuterVariable, "$x", 1, "$x"},
		{"outer variable in a nested block's arguments", `{{ $x := 1 }}{{ cache 1 }}{{ cache 2 "n" $x }}{{ endcache }}{{ endcache }}`, ErrOuterVariable, "$x", 1, "$x"},
		{"outer variable in a nested block's body", `{{ $x := 1 }}{{ cache 1 }}{{ cache 2 }}{{ $x }}{{ endcache }}{{ endcache }}`, ErrOuterVariable, "$x", 1, "$x"},
		{"variable of an enclosing block", `{{ cache 1 }}{{ $y := 1 }}{{ cache 2 }}{{ $y }}{{ endcache }}{{ endcache }}`, ErrOuterVariable, "$y", 1, "$y"},
		{"break out of the body", "{{ range .L }}{{ cache 1 }}{{ break }}{{ endcache }}{{ end }}", ErrSyntax, "break", 0, "{{break}}"},
		{"continue out of the body", "{{ range .L }}{{ cache 1 }}{{ if . }}{{ continue }}{{ end }}{{ endcache }}{{ end }}", ErrSyntax, "continue", 0, "{{continue}}"},
		{"two unnamed blocks on one line", "\n{{ cache 1 }}a{{ endcache }} {{ cache nil nil }}b{{ endcache }}", ErrSyntax, "cache nil", 0, "same line"},
		{"unnamed blocks nested on one line", "{{ cache 1 }}a{{ cache 2 }}b{{ endcache }}{{ endcache }}", ErrSyntax, "cache 1", 0, "same line"},
		{"error in a define", "{{ define \"d\" }}\n\n   {{ cache 1 }}{{ end }}", ErrSyntax, "cache", 0, "without a matching endcache"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("page.html", nil).Parse(tc.src)
			require.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.msg)
			se := siteError(t, err)
			pos := positionOf(t, tc.src, tc.at, tc.nth)
			assert.Equal(t, fragment.Site{Path: "page.html", Line: pos.line, Col: pos.col, Digest: se.Site.Digest}, *se.Site)
			assert.True(t, strings.HasPrefix(err.Error(), se.Site.String()+": cache: "), err.Error())
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, src string }{
		{"variables declared inside", "{{ cache 1 }}{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ endcache }}"},
		{"root data", "{{ range .L }}{{ cache 1 }}{{ $ }}{{ $.A }}{{ endcache }}{{ end }}"},
		{"range variables declared inside, in the else branch too", "{{ cache 1 }}{{ range $i, $v := .L }}{{ $v }}{{ else }}{{ $i }}{{ end }}{{ endcache }}"},
		{"with variable declared inside", "{{ cache 1 }}{{ with $w := .A }}{{ $w }}{{ else with $z := .B }}{{ $z }}{{ end }}{{ endcache }}"},
		{"outer variables as arguments", "{{ $x := 1 }}{{ range $i, $v := .L }}{{ cache $x $v $i }}x{{ endcache }}{{ end }}"},
		{"variable of the enclosing block as a nested block's argument", `{{ cache 1 }}{{ $y := 1 }}{{ cache 2 "n" $y }}x{{ endcache }}{{ endcache }}`},
		{"break inside the body's range", "{{ cache 1 }}{{ range .L }}{{ break }}{{ end }}{{ endcache }}"},
		{"unnamed blocks on different lines, named ones on one line", "{{ cache 1 }}a{{ endcache }}{{ cache 1 \"n\" }}{{ endcache }}{{ cache 1 .Name }}{{ endcache }}\n{{ cache 1 }}b{{ endcache }}"},
		{"other functions named like tags", `{{ cachex }}{{ print "cache" }}`},
		{"every timeout form", "{{ cache nil }}a{{ endcache }}\n{{ cache 0 }}b{{ endcache }}\n{{ cache 0.5 }}c{{ endcache }}\n" +
			"{{ cache \"del\" }}d{{ endcache }}\n{{ cache 1e3 }}e{{ endcache }}\n{{ cache 0x10 }}f{{ endcache }}\n{{ cache .D }}g{{ endcache }}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New("page.html", nil).Funcs(map[string]any{"cachex": func() string { return "" }}).Parse(tc.src)
			require.NoError(t, err)
		})
	}
}

func TestFailedRewriteFailsAtExecution(t *testing.T) {
	tpl := New("page.html", nil)
	_, err := tpl.Parse("{{ cache 1 }}x")
	require.ErrorIs(t, err, ErrSyntax)
	_, err = tpl.New("other").Parse("fine")
	require.NoError(t, err, "a failed template is reported once, not by every later Parse")

	_, err = run(tpl, nil)
	require.ErrorIs(t, err, ErrSyntax, "the unrewritten tag must not render")
}

func TestSiteOfABlock(t *testing.T) {
	ctx := context.Background()
	body := "<b>{{ .A }}</b>{{ if .B }}{{ cache 5 \"in\" }}in{{ endcache }}{{ end }}"
	src := "<h1>x</h1>\n  {{ cache 300 }}" + body + "{{ endcache }}"
	fc, _ := newCache(fragment.Options{SourceDigest: true})
	out, err := run(parseT(t, fc, "dir/page.html", src, nil), map[string]any{"A": 1, "B": true})
	require.NoError(t, err)
	assert.Equal(t, "<h1>x</h1>\n  <b>1</b>in", out)

	// The digest hashes the body's parse tree as text/template prints it,
	// before nested blocks are rewritten.
	trees, err := parseTrees("x", body)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(trees["x"].Root.String()))
	pos := positionOf(t, src, "cache", 0)
	key := keys.MakeTemplateFragmentKey(keys.FragmentName("dir/page.html", pos.line) + "@" + hex.EncodeToString(sum[:8]))
	ok, err := fc.Store().Has(ctx, key)
	require.NoError(t, err)
	assert.True(t, ok, "no fragment under %q", key)

	_, err = run(parseT(t, fc, "dir/page.html", src, nil), map[string]any{"A": 1, "B": true})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), fc.Stats().Hits, "the same source gives the same key")
}
