package htmltemplate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	texttemplate "text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

type testUser struct {
	ID   int
	Name string
}

type testNode struct {
	Name     string
	Children []testNode
}

func pageData() map[string]any {
	return map[string]any{
		"User":  testUser{ID: 42, Name: `<ann> & "bob"`},
		"Items": []string{"a<1>", "b&2", `c"3`},
		"Nums":  []int{0, 1, 2},
		"Any":   []any{0, "", 1, "x", false},
		"N":     7,
		"Show":  true,
		"Empty": []int{},
		"Tree":  testNode{Name: "root", Children: []testNode{{Name: "a"}, {Name: "b", Children: []testNode{{Name: "c"}}}}},
	}
}

// TestCachedOutputEqualsUncached renders each template three ways: with a
// cache that always misses, and twice over SimpleCache (a miss, then hits);
// each must equal the same template without its cache tags, rendered by
// plain html/template.
func TestCachedOutputEqualsUncached(t *testing.T) {
	tests := []struct{ name, src string }{
		{"escaping in element content", `<p>{{ cache 300 }}<b>{{ .User.Name }}</b> {{ .N }}{{ endcache }}</p>`},
		{"contexts inside the body", `{{ cache 300 "ctx" }}<a title="{{ .User.Name }}" href="/u?n={{ .User.Name }}">x</a>` +
			`<script>var u = {{ .User }};</script><style>p{color:{{ "red" }}}</style><textarea>{{ .User.Name }}</textarea>{{ endcache }}`},
		{"trim markers", "A  \n {{- cache 300 -}} \n B \n {{- endcache -}} \n C\n{{ cache 1 -}}\n D {{- endcache }}\n"},
		{"nested blocks", `{{ cache 300 "outer" }}<o>{{ .N }}{{ cache 60 "inner" }}<i>{{ .User.Name }}</i>{{ endcache }}` +
			`{{ cache 60 "inner2" }}{{ cache 5 "deepest" }}d{{ endcache }}{{ endcache }}</o>{{ endcache }}`},
		{"inside if, else, with and range", `{{ if .Show }}{{ cache 1 "if" }}y{{ endcache }}{{ else }}{{ cache 1 "else" }}n{{ endcache }}{{ end }}` +
			`{{ with .User }}{{ cache 1 "with" }}{{ .Name }}{{ endcache }}{{ end }}` +
			`{{ range $i, $it := .Items }}{{ cache 1 "item" $i }}<li>{{ . }}</li>{{ endcache }}{{ else }}none{{ end }}` +
			`{{ range .Empty }}{{ cache 1 "never" }}x{{ endcache }}{{ else }}{{ cache 1 "empty" }}empty{{ endcache }}{{ end }}`},
		{"define, template and block", `{{ define "card" }}{{ cache 1 "card" .Name }}<card>{{ .Name }}</card>{{ endcache }}{{ end }}` +
			`{{ template "card" .User }}{{ block "side" . }}{{ cache 1 "side" }}<side>{{ .N }}</side>{{ endcache }}{{ end }}`},
		{"dollar inside range", `{{ range .Items }}{{ cache 1 "r" . }}{{ $.N }}:{{ . }}:{{ $.User.Name }}{{ endcache }}{{ end }}`},
		{"dollar with falsy dots", `{{ range .Nums }}{{ cache 1 "n" . }}{{ if . }}t{{ else }}f{{ end }}{{ $.N }}{{ . }}{{ endcache }}{{ end }}` +
			`{{ range $i, $v := .Any }}{{ cache 1 "any" $i }}{{ if . }}t{{ else }}f{{ end }}{{ $.N }}[{{ . }}]{{ endcache }}{{ end }}`},
		{"dollar where the dot is dollar", `{{ cache 1 "top" }}{{ $.N }}{{ .N }}{{ endcache }}{{ if .Show }}{{ cache 1 "if" }}{{ $.N }}{{ endcache }}{{ end }}` +
			`{{ range .Empty }}x{{ else }}{{ cache 1 "relse" }}{{ $.N }}{{ .N }}{{ endcache }}{{ end }}` +
			`{{ with .Missing }}x{{ else }}{{ cache 1 "welse" }}{{ $.N }}{{ .N }}{{ endcache }}{{ end }}` +
			`{{ define "d" }}{{ cache 1 "d" }}{{ $.Name }}{{ .Name }}{{ endcache }}{{ end }}{{ template "d" .User }}`},
		{"dollar assigned before a top-level block", `{{ $ = .User }}{{ cache 1 "re" }}{{ $.Name }}|{{ .N }}{{ endcache }}`},
		{"dollar assigned in a range before a top-level block", `{{ range .Nums }}{{ $ = . }}{{ end }}{{ cache 1 "after" }}{{ $ }}|{{ .N }}{{ endcache }}`},
		{"dollar in nested blocks", `{{ range .Items }}{{ cache 1 "o" . }}{{ $.N }}{{ cache 1 "i" . }}{{ . }}{{ $.N }}{{ endcache }}{{ endcache }}{{ end }}` +
			`{{ cache 1 "o2" }}{{ $.N }}{{ range .Items }}{{ cache 1 "i2" . }}{{ . }}{{ $.N }}{{ endcache }}{{ end }}{{ with .User }}{{ cache 1 "i3" }}{{ .Name }}{{ $.N }}{{ endcache }}{{ end }}{{ endcache }}`},
		{"dot values", `{{ range $i, $v := .Any }}{{ cache 1 "dot" $i }}{{ if . }}t{{ else }}f{{ end }}[{{ . }}]{{ printf "%T" . }}{{ endcache }}{{ end }}`},
		{"variables declared inside", `{{ cache 1 }}{{ $x := .N }}{{ range $i, $v := .Items }}{{ $x }}{{ $i }}{{ $v }}{{ $x = $i }}{{ end }}{{ $x }}{{ endcache }}`},
		{"break and continue inside the body's range", `{{ cache 1 }}{{ range .Nums }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}{{ endcache }}`},
		{"arguments using outer variables", `{{ $k := "key" }}{{ range $i, $v := .Items }}{{ cache 1 $k $i $v }}{{ . }}{{ endcache }}{{ end }}`},
		{"empty and comment-only bodies", `[{{ cache 1 "e" }}{{ endcache }}][{{ cache 1 "c" }}{{/* note */}}{{ endcache }}][{{ cache 1 "s" }}  {{ endcache }}]`},
		{"pipeline arguments", `{{ cache (len .Items) (printf "p-%d" .N) }}{{ .N }}{{ endcache }}`},
		{"recursive template", `{{ define "tree" }}<li>{{ cache 1 "node" .Name }}{{ .Name }}{{ endcache }}<ul>{{ range .Children }}{{ template "tree" . }}{{ end }}</ul></li>{{ end }}{{ template "tree" .Tree }}`},
	}
	funcs := template.FuncMap{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := runPlain(t, uncached(t, "page.html", tc.src, funcs), pageData())
			always := fragment.New(backends.New(backends.NewNull(), backends.CacheOptions{}), fragment.Options{})
			got, err := run(parseT(t, always, "page.html", tc.src, funcs), pageData())
			require.NoError(t, err)
			assert.Equal(t, want, got, "always missing")

			fc, _ := newCache(fragment.Options{})
			tpl := parseT(t, fc, "page.html", tc.src, funcs)
			for i := range 2 {
				got, err := run(tpl, pageData())
				require.NoError(t, err)
				assert.Equal(t, want, got, "render %d", i)
			}
			if strings.Contains(tc.src, "{{ cache 1 \"never\" }}") {
				return
			}
			assert.NotZero(t, fc.Stats().Hits, "the second render did not hit")
		})
	}
}

// ptrItem has a method on its pointer only: text/template finds it on an
// addressable dot, such as a range element of a slice.
type ptrItem struct{ N int }

func (p *ptrItem) Double() int { return 2 * p.N }

// TestBodiesSeeTheDotAsTextTemplateDoes: a body runs on the very value the
// block's dot was (addressable, or an interface), so it finds what the
// same template without cache tags finds.
func TestBodiesSeeTheDotAsTextTemplateDoes(t *testing.T) {
	data := map[string]any{
		"Items": []ptrItem{{1}, {2}},
		"Any":   []any{ptrItem{3}, &ptrItem{4}, nil},
		"N":     7,
	}
	for _, src := range []string{
		`{{ range .Items }}{{ cache 1 "r" .N }}{{ .Double }}{{ endcache }}{{ end }}`,
		`{{ range .Items }}{{ cache 1 "d" .N }}{{ .Double }}{{ $.N }}{{ endcache }}{{ end }}`,
		`{{ range $i, $v := .Any }}{{ cache 1 "a" $i }}{{ printf "%T" . }}{{ $.N }}{{ endcache }}{{ end }}`,
		`{{ range .Items }}{{ cache 1 "o" .N }}{{ cache 1 "i" .N }}{{ .Double }}{{ endcache }}{{ $.N }}{{ endcache }}{{ end }}`,
	} {
		want := runPlain(t, uncached(t, "page.html", src, nil), data)
		fc, _ := newCache(fragment.Options{})
		tpl := parseT(t, fc, "page.html", src, nil)
		for i := range 2 {
			got, err := run(tpl, data)
			require.NoError(t, err, src)
			assert.Equal(t, want, got, "%s: render %d", src, i)
		}
	}
}

func TestNilCacheRendersUncached(t *testing.T) {
	var c counter
	tpl := parseT(t, nil, "p", `{{ cache 300 "x" }}{{ inc }}{{ endcache }}`, template.FuncMap{"inc": c.inc})
	for i := 1; i <= 3; i++ {
		out, err := run(tpl, nil)
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(i), out)
	}
	assert.Nil(t, tpl.Cache())
}

func TestHitSkipsTheBody(t *testing.T) {
	var c counter
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "p", `{{ cache 300 "x" }}{{ inc }}{{ endcache }}|{{ inc }}`, template.FuncMap{"inc": c.inc})
	for _, want := range []string{"1|2", "1|3", "1|4"} {
		out, err := run(tpl, nil)
		require.NoError(t, err)
		assert.Equal(t, want, out)
	}
	assert.Same(t, fc, tpl.Cache())
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	src := "<h1>{{ .N }}</h1>\n{{ cache 300 }}<u>{{ .N }}</u>{{ endcache }}\n\n" +
		"{{ cache 300 \"side\" .User.ID \"<x>\" }}<s>{{ .User.Name }}</s>{{ endcache }}\n" +
		"{{ cache 300 \"plain\" }}<p>{{ .N }}</p>{{ endcache }}\n" +
		"{{ cache 300 nil }}<nil>{{ endcache }}\n" +
		"{{ cache 300 7 1.5 true nil }}num{{ endcache }}"
	data := pageData()
	line := func(what string) int { return positionOf(t, src, what, 0).line }
	tests := []struct {
		name, key, fragment string
	}{
		{"unnamed block keyed by template name and line", keys.MakeTemplateFragmentKey(keys.FragmentName("shop/page.html", line("{{ cache 300 }}"))), "<u>7</u>"},
		{"named block with vary_on", keys.MakeTemplateFragmentKey("side", "42", "<x>"), "<s>&lt;ann&gt; &amp; &#34;bob&#34;</s>"},
		{"named block", keys.MakeTemplateFragmentKey("plain"), "<p>7</p>"},
		{"nil name falls back to the unnamed key", keys.MakeTemplateFragmentKey(keys.FragmentName("shop/page.html", line("{{ cache 300 nil }}"))), "<nil>"},
		{"number, float, bool and nil values", keys.MakeTemplateFragmentKey("7", "1.5", "true", "None"), "num"},
	}
	fc, simple := newCache(fragment.Options{})
	tpl := parseT(t, fc, "shop/page.html", src, nil)
	_, err := run(tpl, data)
	require.NoError(t, err)
	assert.Equal(t, len(tests), simple.Len())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			found, err := fc.Store().Get(ctx, tc.key, &got)
			require.NoError(t, err)
			require.True(t, found, "no fragment under %q", tc.key)
			assert.Equal(t, tc.fragment, got)
		})
	}
}

func TestSourceDigestChangesUnnamedKeys(t *testing.T) {
	fc, simple := newCache(fragment.Options{SourceDigest: true})
	for _, body := range []string{"one", "two", "one"} {
		_, err := run(parseT(t, fc, "p", `{{ cache 300 }}`+body+`{{ endcache }}`, nil), nil)
		require.NoError(t, err)
	}
	assert.Equal(t, 2, simple.Len(), "same body, same key; edited body, new key")
	assert.Equal(t, uint64(1), fc.Stats().Hits)
}

func TestTimeoutTTLs(t *testing.T) {
	ctx := context.Background()
	const short = 50 * time.Millisecond
	fc, _ := newCache(fragment.Options{DefaultTimeout: short})
	tpl := parseT(t, fc, "p", `{{ cache nil "default" }}d{{ endcache }}{{ cache 0 "forever" }}f{{ endcache }}`+
		`{{ cache 0.05 "float" }}x{{ endcache }}{{ cache .D "duration" }}y{{ endcache }}{{ cache 3600 "hour" }}h{{ endcache }}`, nil)
	_, err := run(tpl, map[string]any{"D": short})
	require.NoError(t, err)
	has := func(name string) bool {
		ok, err := fc.Store().Has(ctx, keys.MakeTemplateFragmentKey(name))
		require.NoError(t, err)
		return ok
	}
	for _, name := range []string{"default", "forever", "float", "duration", "hour"} {
		assert.True(t, has(name), name)
	}
	for _, name := range []string{"default", "float", "duration"} {
		require.Eventually(t, func() bool { return !has(name) }, deadline, 5*time.Millisecond, "%s did not expire", name)
	}
	assert.True(t, has("forever"), "timeout 0 expired")
	assert.True(t, has("hour"))
}

func TestTimeoutDelDeletesAndRendersWithoutStoring(t *testing.T) {
	ctx := context.Background()
	var c counter
	fc, simple := newCache(fragment.Options{})
	key := keys.MakeTemplateFragmentKey("side", "42")
	require.NoError(t, fc.Store().Set(ctx, key, "stale"))
	tpl := parseT(t, fc, "p", `{{ cache .T "side" .User.ID }}{{ inc }}{{ endcache }}`, template.FuncMap{"inc": c.inc})
	data := pageData()
	data["T"] = "del"
	for _, want := range []string{"1", "2"} {
		out, err := run(tpl, data)
		require.NoError(t, err)
		assert.Equal(t, want, out, "del renders the body every time")
		assert.Zero(t, simple.Len(), "del stored a fragment")
	}
	assert.Equal(t, uint64(2), fc.Stats().DelBlocks)
	data["T"] = 300
	out, err := run(tpl, data)
	require.NoError(t, err)
	assert.Equal(t, "3", out)
	var got string
	found, err := fc.Store().Get(ctx, key, &got)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "3", got)
}

func TestVaryOnSeparatesFragments(t *testing.T) {
	var c counter
	fc, simple := newCache(fragment.Options{})
	tpl := parseT(t, fc, "p", `{{ cache 300 "u" .U }}{{ .U }}{{ inc }}{{ endcache }}`, template.FuncMap{"inc": c.inc})
	for _, step := range []struct{ user, want string }{{"ann", "ann1"}, {"bob", "bob2"}, {"ann", "ann1"}, {"bob", "bob2"}} {
		out, err := run(tpl, map[string]any{"U": step.user})
		require.NoError(t, err)
		assert.Equal(t, step.want, out)
	}
	assert.Equal(t, 2, simple.Len())
}

func TestNestedBlocksAreCachedIndependently(t *testing.T) {
	ctx := context.Background()
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "p", `{{ cache 300 "outer" .U }}[{{ .U }}{{ cache 300 "inner" }}({{ .U }}){{ endcache }}]{{ endcache }}`, nil)
	for _, step := range []struct{ user, want string }{{"ann", "[ann(ann)]"}, {"bob", "[bob(ann)]"}} {
		out, err := run(tpl, map[string]any{"U": step.user})
		require.NoError(t, err)
		assert.Equal(t, step.want, out)
	}
	_, err := fc.Delete(ctx, "inner")
	require.NoError(t, err)
	out, err := run(tpl, map[string]any{"U": "bob"})
	require.NoError(t, err)
	assert.Equal(t, "[bob(ann)]", out, "the outer fragment still holds the old inner one")
	_, err = fc.Delete(ctx, "outer", "bob")
	require.NoError(t, err)
	out, err = run(tpl, map[string]any{"U": "bob"})
	require.NoError(t, err)
	assert.Equal(t, "[bob(bob)]", out)
}

func TestExecutionErrors(t *testing.T) {
	tests := []struct {
		name, src string
		data      any
		is        error
		at        string // what the error's position points at
		msg       string
	}{
		{"bad dynamic timeout", `<p>{{ cache .T }}x{{ endcache }}`, map[string]any{"T": "soon"}, fragment.ErrTimeout, "cache", `"soon"`},
		{"negative dynamic timeout", "\n\n  {{ cache .T }}x{{ endcache }}", map[string]any{"T": -1}, fragment.ErrTimeout, "cache", "-1"},
		{"struct as vary_on", `{{ cache 1 "n" .U }}x{{ endcache }}`, map[string]any{"U": testUser{}}, fragment.ErrKeyValue, "cache", "testUser"},
		{"map as name", `{{ cache 1 .U }}x{{ endcache }}`, map[string]any{"U": map[string]int{}}, fragment.ErrKeyValue, "cache", "map"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc, _ := newCache(fragment.Options{})
			out, err := run(parseT(t, fc, "page.html", tc.src, nil), tc.data)
			require.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.msg)
			se := siteError(t, err)
			pos := positionOf(t, tc.src, tc.at, 0)
			assert.Equal(t, fragment.Site{Path: "page.html", Line: pos.line, Col: pos.col, Digest: se.Site.Digest}, *se.Site)
			assert.NotContains(t, out, "x")
		})
	}
	t.Run("error inside a body names the body's own position", func(t *testing.T) {
		src := "{{ cache 1 }}\n  {{ .U.Nope }}{{ endcache }}"
		data := map[string]any{"U": testUser{}}
		fc, simple := newCache(fragment.Options{})
		_, err := run(parseT(t, fc, "page.html", src, nil), data)
		require.Error(t, err)
		plainErr := uncached(t, "page.html", src, nil).Execute(&bytes.Buffer{}, data)
		require.Error(t, plainErr)
		loc := regexp.MustCompile(`page\.html:\d+:\d+`).FindString(plainErr.Error())
		assert.Contains(t, err.Error(), loc+`: executing "cache@page.html:1:3" at <.U.Nope>`)
		assert.Contains(t, err.Error(), `executing "cache@page.html:1:3"`)
		assert.Zero(t, simple.Len())
	})
}

// TestBlockErrorsReadAsAFunctionsError pins how a block's error reaches
// Execute's caller: as text/template reports a template function's error,
// an ExecError at the tag saying "error calling" the block's function and
// wrapping the *fragment.SiteError, whatever way the function reports it.
func TestBlockErrorsReadAsAFunctionsError(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name, src string
		data      any
		is        error
	}{
		{"bad dynamic timeout", "<p>\n {{ cache .T }}x{{ endcache }}", map[string]any{"T": "soon"}, fragment.ErrTimeout},
		{"key value", `{{ cache 1 "n" .U }}x{{ endcache }}`, map[string]any{"U": testUser{}}, fragment.ErrKeyValue},
		{"nil name on a shared line", `{{ cache 1 .X }}a{{ endcache }}{{ cache 1 }}b{{ endcache }}`, map[string]any{}, ErrSameLine},
		{"body function error", `{{ cache 1 "b" }}{{ fail }}{{ endcache }}`, nil, boom},
		{"body function panic", `{{ cache 1 "b" }}{{ panics }}{{ endcache }}`, nil, boom},
	}
	funcs := template.FuncMap{
		"fail":   func() (string, error) { return "", boom },
		"panics": func() string { panic(boom) },
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			_, err := run(parseT(t, fc, "page.html", tc.src, funcs), tc.data)
			require.ErrorIs(t, err, tc.is)
			var ee texttemplate.ExecError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, "page.html", ee.Name)
			pos := positionOf(t, tc.src, "cache", 0)
			fn := funcName(0)
			prefix := fmt.Sprintf("template: page.html:%d:%d: executing %q at <%s", pos.line, pos.col, "page.html", fn)
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "%q does not start with %q", err, prefix)
			calling := ">: error calling " + fn + ": "
			if tc.is == boom { // the body's own error, from its hoisted template
				assert.Contains(t, err.Error(), calling+`template: page.html:1:20: executing "cache@page.html:1:3" at <`)
			} else {
				se := siteError(t, err)
				assert.Equal(t, position{pos.line, pos.col}, position{se.Site.Line, se.Site.Col})
				assert.True(t, strings.HasSuffix(err.Error(), calling+se.Error()), "%q does not end with %q", err, calling+se.Error())
			}
			assert.Zero(t, simple.Len(), "a failed render is not stored")
		})
	}
}

func TestRecursionIntoTheSameFragmentFails(t *testing.T) {
	src := `{{ define "tree" }}<li>{{ cache 60 "node" }}{{ .Name }}<ul>{{ range .Children }}{{ template "tree" . }}{{ end }}</ul>{{ endcache }}</li>{{ end }}` +
		`{{ template "tree" .Tree }}`
	fc, simple := newCache(fragment.Options{})
	done := make(chan error, 1)
	go func() {
		_, err := run(parseT(t, fc, "tree.html", src, nil), pageData())
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, fragment.ErrRecursive)
		pos := positionOf(t, src, "cache", 0)
		assert.Contains(t, err.Error(), fmt.Sprintf("tree.html:%d:%d: cache:", pos.line, pos.col))
	case <-time.After(deadline):
		t.Fatal("the recursive render deadlocked")
	}
	assert.Zero(t, simple.Len())
}

func TestBackendErrors(t *testing.T) {
	src := `<p>{{ cache 300 "x" }}<b>{{ .User.Name }}</b>{{ endcache }}</p>`
	want := runPlain(t, uncached(t, "p", src, nil), pageData())
	t.Run("fail open renders uncached and counts", func(t *testing.T) {
		fc := fragment.New(backends.New(brokenBackend{}, backends.CacheOptions{}), fragment.Options{})
		tpl := parseT(t, fc, "p", src, nil)
		for range 2 {
			out, err := run(tpl, pageData())
			require.NoError(t, err)
			assert.Equal(t, want, out)
		}
		assert.Equal(t, uint64(2), fc.Stats().BackendErrors)
	})
	t.Run("strict returns the error with the position", func(t *testing.T) {
		fc := fragment.New(backends.New(brokenBackend{}, backends.CacheOptions{}), fragment.Options{Strict: true})
		_, err := run(parseT(t, fc, "p", src, nil), pageData())
		require.ErrorIs(t, err, errBroken)
		pos := positionOf(t, src, "cache", 0)
		assert.Equal(t, position{pos.line, pos.col}, position{siteError(t, err).Site.Line, siteError(t, err).Site.Col})
	})
}

func TestParseFamilyNamesTemplates(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html":      `{{ cache 1 }}root{{ endcache }}`,
		"shop/index.html": "\n{{ cache 1 }}shop{{ endcache }}",
	}
	fsys := fstest.MapFS{}
	for name, src := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600))
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	// keyOf renders the template named name and returns the only key stored.
	keyOf := func(t *testing.T, tpl *Template, err error, name string) string {
		t.Helper()
		require.NoError(t, err)
		fc := tpl.Cache()
		require.NoError(t, tpl.ExecuteTemplate(&bytes.Buffer{}, name, nil))
		var stored []string
		for _, cand := range []string{"index.html1", "index.html2", "shop/index.html2"} {
			if ok, _ := fc.Store().Has(context.Background(), keys.MakeTemplateFragmentKey(cand)); ok {
				stored = append(stored, cand)
			}
		}
		require.Len(t, stored, 1)
		return stored[0]
	}
	t.Run("ParseFiles uses base names, like html/template", func(t *testing.T) {
		fc, _ := newCache(fragment.Options{})
		tpl, err := ParseFiles(fc, filepath.Join(dir, "shop", "index.html"))
		assert.Equal(t, "index.html", tpl.Name())
		assert.Equal(t, "index.html2", keyOf(t, tpl, err, "index.html"))
	})
	t.Run("ParseGlob uses base names", func(t *testing.T) {
		fc, _ := newCache(fragment.Options{})
		tpl, err := ParseGlob(fc, filepath.Join(dir, "*.html"))
		assert.Equal(t, "index.html1", keyOf(t, tpl, err, "index.html"))
	})
	t.Run("ParseFS uses base names", func(t *testing.T) {
		fc, _ := newCache(fragment.Options{})
		tpl, err := ParseFS(fc, fsys, "shop/*.html")
		assert.Equal(t, "index.html2", keyOf(t, tpl, err, "index.html"))
	})
	t.Run("ParseFSPaths keeps paths apart", func(t *testing.T) {
		fc, _ := newCache(fragment.Options{})
		tpl, err := ParseFSPaths(fc, fsys, "*.html", "*/*.html")
		require.NoError(t, err)
		assert.Equal(t, "index.html", tpl.Name())
		assert.Equal(t, `; defined templates are: "index.html", "shop/index.html"`, tpl.DefinedTemplates())
		assert.Equal(t, "shop/index.html2", keyOf(t, tpl, err, "shop/index.html"))
		out, err := run(tpl, nil)
		require.NoError(t, err)
		assert.Equal(t, "root", out)
	})
	t.Run("methods", func(t *testing.T) {
		fc := func() *fragment.Cache { fc, _ := newCache(fragment.Options{}); return fc }
		tpl, err := New("shop/index.html", fc()).ParseFSPaths(fsys, "shop/*.html")
		assert.Equal(t, "shop/index.html2", keyOf(t, tpl, err, "shop/index.html"))
		tpl, err = New("x", fc()).ParseFS(fsys, "index.html")
		assert.Equal(t, "index.html1", keyOf(t, tpl, err, "index.html"))
		tpl, err = New("x", fc()).ParseFiles(filepath.Join(dir, "index.html"))
		assert.Equal(t, "index.html1", keyOf(t, tpl, err, "index.html"))
		tpl, err = New("x", fc()).ParseGlob(filepath.Join(dir, "shop", "*"))
		assert.Equal(t, "index.html2", keyOf(t, tpl, err, "index.html"))
	})
	t.Run("errors", func(t *testing.T) {
		_, err := ParseFiles(nil)
		assert.ErrorContains(t, err, "no files")
		_, err = ParseGlob(nil, filepath.Join(dir, "*.none"))
		assert.ErrorContains(t, err, "matches no files")
		_, err = ParseFS(nil, fsys, "*.none")
		assert.ErrorContains(t, err, "match no files")
		_, err = ParseFSPaths(nil, fsys, "*.none")
		assert.ErrorContains(t, err, "match no files")
		_, err = New("x", nil).ParseFSPaths(fsys, "*.html", "*.none")
		assert.ErrorContains(t, err, "*.none")
		_, err = New("x", nil).ParseFSPaths(fsys, "[")
		assert.Error(t, err)
		_, err = New("x", nil).ParseFiles(filepath.Join(dir, "missing.html"))
		assert.Error(t, err)
	})
}

func TestTemplateSetMethods(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	tpl := New("page", fc)
	_, err := tpl.New("part").Parse(`{{ define "item" }}{{ cache 1 "item" . }}<i>{{ . }}</i>{{ endcache }}{{ end }}`)
	require.NoError(t, err)
	_, err = tpl.Parse(`{{ range . }}{{ template "item" . }}{{ end }}`)
	require.NoError(t, err)

	var names []string
	for _, x := range tpl.Templates() {
		names = append(names, x.Name())
	}
	assert.Equal(t, []string{"item", "page", "part"}, names, "hoisted bodies are not listed")
	assert.Equal(t, `; defined templates are: "item", "page", "part"`, tpl.DefinedTemplates())
	assert.Nil(t, tpl.Lookup("missing"))
	require.NotNil(t, tpl.Lookup("item"))

	var buf bytes.Buffer
	require.NoError(t, tpl.Lookup("item").Execute(&buf, "<x>"))
	assert.Equal(t, "<i>&lt;x&gt;</i>", buf.String())
	buf.Reset()
	require.NoError(t, tpl.ExecuteTemplate(&buf, "page", []string{"a", "b"}))
	assert.Equal(t, "<i>a</i><i>b</i>", buf.String())

	_, err = tpl.Parse(`more`)
	assert.ErrorContains(t, err, "cannot Parse after Execute", "html/template's rule holds")
	_, err = tpl.Clone()
	assert.Error(t, err)
}

func TestDelimsAndOption(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	tpl, err := New("p", fc).Delims("[[", "]]").Option("missingkey=error").Parse(`[[ cache 1 "d" ]]<b>[[ .A ]]</b>[[ endcache ]]`)
	require.NoError(t, err)
	out, err := run(tpl, map[string]any{"A": 1})
	require.NoError(t, err)
	assert.Equal(t, "<b>1</b>", out)
	_, err = run(tpl.Lookup("p"), map[string]any{})
	require.NoError(t, err, "a hit does not run the body")
	_, err = fc.Delete(context.Background(), "d")
	require.NoError(t, err)
	_, err = run(tpl, map[string]any{})
	assert.ErrorContains(t, err, "map has no entry for key", "the body follows the template's options")
}

func TestClone(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	base := Must(New("layout", fc).Parse(`<main>{{ cache 1 "main" .P }}{{ template "content" . }}{{ endcache }}</main>{{ define "content" }}base{{ end }}`))
	pages := map[string]*Template{}
	for _, name := range []string{"a", "b"} {
		c, err := base.Clone()
		require.NoError(t, err)
		_, err = c.Parse(`{{ define "content" }}<p>page ` + name + ` {{ cache 1 "inner" .P }}{{ .P }}{{ endcache }}</p>{{ end }}`)
		require.NoError(t, err)
		pages[name] = c
	}
	for _, name := range []string{"a", "b", "a"} {
		out, err := run(pages[name], map[string]any{"P": name})
		require.NoError(t, err)
		assert.Equal(t, "<main><p>page "+name+" "+name+"</p></main>", out)
	}
	out, err := run(base, map[string]any{"P": "base"})
	require.NoError(t, err)
	assert.Equal(t, "<main>base</main>", out)
	assert.Same(t, fc, pages["a"].Cache())
}

func TestFuncsRejectsReservedNames(t *testing.T) {
	for _, name := range []string{"cache", "endcache", "_fragcache_0"} {
		assert.PanicsWithValue(t, fmt.Sprintf("htmltemplate: function name %q is reserved for cache blocks", name), func() {
			New("x", nil).Funcs(template.FuncMap{name: func() string { return "" }})
		})
	}
}

func TestMust(t *testing.T) {
	assert.Panics(t, func() { Must(New("x", nil).Parse(`{{ cache }}`)) })
	assert.NotPanics(t, func() { Must(New("x", nil).Parse(`x`)) })
}

func TestAddParseTree(t *testing.T) {
	trees, err := parseTrees("extra", `{{ cache 1 "t" }}<t>{{ . }}</t>{{ endcache }}`)
	require.NoError(t, err)
	fc, _ := newCache(fragment.Options{})
	tpl := New("page", fc)
	added, err := tpl.AddParseTree("extra", trees["extra"])
	require.NoError(t, err)
	assert.Equal(t, "extra", added.Name())
	out, err := run(added, "<v>")
	require.NoError(t, err)
	assert.Equal(t, "<t>&lt;v&gt;</t>", out)
	ok, err := fc.Store().Has(context.Background(), keys.MakeTemplateFragmentKey("t"))
	require.NoError(t, err)
	assert.True(t, ok)

	bad, err := parseTrees("bad", `{{ cache 1 }}`)
	require.NoError(t, err)
	_, err = New("page", nil).AddParseTree("bad", bad["bad"])
	assert.ErrorIs(t, err, ErrSyntax)
}

// TestArgumentsReachTheKey covers every shape of block function: with and
// without $, with zero to five values computed at execution, mixed with
// constants.
func TestArgumentsReachTheKey(t *testing.T) {
	data := map[string]any{"T": 300, "S": "s", "I": 4, "B": true, "F": 2.5}
	tests := []struct {
		args string
		key  string
	}{
		{`300 "n"`, keys.MakeTemplateFragmentKey("n")},
		{`.T "n"`, keys.MakeTemplateFragmentKey("n")},
		{`300 .S`, keys.MakeTemplateFragmentKey("s")},
		{`.T .S 1`, keys.MakeTemplateFragmentKey("s", "1")},
		{`300 "n" .I .B`, keys.MakeTemplateFragmentKey("n", "4", "true")},
		{`.T .S .I "c" .B .F`, keys.MakeTemplateFragmentKey("s", "4", "c", "true", "2.5")},
		{`.T .S .I .B .F .S`, keys.MakeTemplateFragmentKey("s", "4", "true", "2.5", "s")},
	}
	for _, tc := range tests {
		for _, body := range []string{"{{ . }}", "{{ $.S }}{{ .I }}"} {
			t.Run(tc.args+" "+body, func(t *testing.T) {
				fc, simple := newCache(fragment.Options{})
				src := `{{ cache ` + tc.args + ` }}` + body + `{{ endcache }}`
				want := runPlain(t, uncached(t, "p", src, nil), data)
				for range 2 {
					out, err := run(parseT(t, fc, "p", src, nil), data)
					require.NoError(t, err)
					assert.Equal(t, want, out)
				}
				assert.Equal(t, 1, simple.Len())
				ok, err := fc.Store().Has(context.Background(), tc.key)
				require.NoError(t, err)
				assert.True(t, ok, "no fragment under %q", tc.key)
			})
		}
	}
}

func TestNilData(t *testing.T) {
	src := `{{ cache 1 "a" }}[{{ . }}]{{ endcache }}{{ cache 1 "b" }}[{{ $ }}][{{ . }}]{{ endcache }}`
	want := runPlain(t, uncached(t, "p", src, nil), nil)
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "p", src, nil)
	for range 2 {
		out, err := run(tpl, nil)
		require.NoError(t, err)
		assert.Equal(t, want, out)
	}
}

// TestNilNameOnASharedLineIsAnError: a name that evaluates to nil falls
// back to the template-and-line key, which another block on the same line
// may have too; that block would then be served this one's fragment.
func TestNilNameOnASharedLineIsAnError(t *testing.T) {
	src := "{{ cache 300 .X }}A{{ endcache }}{{ cache 300 .Y }}B{{ endcache }}"
	fc, _ := newCache(fragment.Options{})
	out, err := run(parseT(t, fc, "p.html", src, nil), map[string]any{"X": "a", "Y": "b"})
	require.NoError(t, err)
	assert.Equal(t, "AB", out)

	for _, data := range []map[string]any{{"Y": "b"}, {"X": "a"}, nil} {
		fc, _ := newCache(fragment.Options{})
		out, err := run(parseT(t, fc, "p.html", src, nil), data)
		require.ErrorIs(t, err, ErrSameLine, "rendered %q", out)
		assert.ErrorContains(t, err, "evaluated to nil")
	}

	// Two unnamed blocks are refused when parsed, with both sentinels.
	_, err = New("p.html", nil).Parse("{{ cache 1 }}a{{ endcache }}{{ cache 1 }}b{{ endcache }}")
	require.ErrorIs(t, err, ErrSameLine)
	require.ErrorIs(t, err, ErrSyntax)

	// Next to an unnamed block too.
	fc, _ = newCache(fragment.Options{})
	_, err = run(parseT(t, fc, "u.html", "{{ cache 300 }}A{{ endcache }}{{ cache 300 .Y }}B{{ endcache }}", nil), nil)
	require.ErrorIs(t, err, ErrSameLine)

	// Alone on its line, or next to blocks named by literals, a nil name is
	// the default name.
	for src, want := range map[string]string{
		"{{ cache 300 .X }}A{{ endcache }}\n{{ cache 300 .Y }}B{{ endcache }}":  "A\nB",
		"{{ cache 300 .X }}A{{ endcache }}{{ cache 300 \"b\" }}B{{ endcache }}": "AB",
	} {
		fc, _ = newCache(fragment.Options{})
		out, err = run(parseT(t, fc, "q.html", src, nil), nil)
		require.NoError(t, err, src)
		assert.Equal(t, want, out)
	}
}
