package pongo2tag

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

var (
	openTag  = regexp.MustCompile(`\{%(-?)\s*cache\b[^%]*?(-?)%\}`)
	closeTag = regexp.MustCompile(`\{%(-?)\s*endcache\s*(-?)%\}`)
)

// uncached rewrites every cache block into {% if true %}…{% endif %}: the
// same body inline, with the same whitespace control.
func uncached(src string) string {
	src = openTag.ReplaceAllString(src, "{%$1 if true $2%}")
	return closeTag.ReplaceAllString(src, "{%$1 endif $2%}")
}

func TestCachedOutputEqualsUncached(t *testing.T) {
	data := pongo2.Context{
		"user":  `<ann & "bob's">`,
		"items": []string{"<a>", "b&c", `"d"`},
		"html":  "<em>ok</em>",
		"n":     1000,
	}
	cases := []struct{ name, src string }{
		{"escaped variable", `<p>{% cache 300 %}{{ user }}{% endcache %}</p>`},
		{"safe filter", `{% cache 300, "safe" %}{{ html|safe }} {{ html }}{% endcache %}`},
		{"filters and arithmetic", `{% cache 60*5, "f", n %}{{ user|upper }} {{ n + 1 }}{% endcache %}`},
		{"loop inside", `{% cache 300 %}<ul>{% for it in items %}<li>{{ it }}</li>{% endfor %}</ul>{% endcache %}`},
		{"loop around", `{% for it in items %}{% cache 300, "row", it %}[{{ it }}]{% endcache %}{% endfor %}`},
		{"nested", `{% cache 300, "outer" %}a{% cache 300, "inner" %}{{ user }}{% endcache %}b{% endcache %}`},
		{"macro", `{% macro m(x) %}{% cache 300, "m", x %}<{{ x }}>{% endcache %}{% endmacro %}{{ m("a&") }}{{ m(user) }}`},
		{"autoescape off inside", `{% cache 300 %}{% autoescape off %}{{ user }}{% endautoescape %}{% endcache %}`},
		{"autoescape off around", `{% autoescape off %}{% cache 300, "off" %}{{ user }}{% endcache %}{% endautoescape %}`},
		{"whitespace control", "a \n {%- cache 300 -%} \n {{ user }} \n {%- endcache -%} \n b"},
		{"empty body", `x{% cache 300 %}{% endcache %}y`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			want, err := fromString(t, set, uncached(tc.src)).Execute(data)
			require.NoError(t, err)
			require.NotContains(t, uncached(tc.src), "cache", "the rewrite left a cache tag")

			fc, _ := newCache(fragment.Options{})
			tpl := fromString(t, set, tc.src)
			miss, err := render(tpl, fc, data)
			require.NoError(t, err)
			hit, err := render(tpl, fc, data)
			require.NoError(t, err)
			assert.Equal(t, want, miss, "first render (miss)")
			assert.Equal(t, want, hit, "second render (hit)")
			st := fc.Stats()
			assert.Equal(t, st.Misses, st.Renders)
			assert.Positive(t, st.Hits, "the second render hit nothing")
		})
	}
}

func TestKeys(t *testing.T) {
	type obj struct{ ID int }
	data := pongo2.Context{"user": &obj{ID: 42}, "lang": "en", "ratio": 0.5}
	cases := []struct {
		name string
		src  string
		key  func(t *testing.T, src string) string // the key Flask would use
	}{
		{"named", `{% cache 300, "sidebar" %}x{% endcache %}`,
			func(*testing.T, string) string { return keys.MakeTemplateFragmentKey("sidebar") }},
		{"named with vary_on", `{% cache 300, "sidebar", user.ID, lang, ratio %}x{% endcache %}`,
			func(*testing.T, string) string { return keys.MakeTemplateFragmentKey("sidebar", "42", "en", "0.5") }},
		{"name from an expression", `{% cache 300, "side" | add:"bar", user.ID %}x{% endcache %}`,
			func(*testing.T, string) string { return keys.MakeTemplateFragmentKey("sidebar", "42") }},
		{"unnamed", "a\nb\n  {% cache 300 %}x{% endcache %}",
			func(t *testing.T, src string) string {
				return keys.MakeTemplateFragmentKey(keys.FragmentName("<string>", positionOf(t, src, "cache").line))
			}},
		{"unnamed, name None", "\n{% cache 300, None, lang %}x{% endcache %}",
			func(t *testing.T, src string) string {
				return keys.MakeTemplateFragmentKey(keys.FragmentName("<string>", positionOf(t, src, "cache").line), "en")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			_, err := render(fromString(t, newSet(t), tc.src), fc, data)
			require.NoError(t, err)
			got, err := fc.Store().GetValue(context.Background(), tc.key(t, tc.src))
			require.NoError(t, err)
			assert.True(t, got.Found(), "nothing stored under %q", tc.key(t, tc.src))
			assert.Equal(t, 1, simple.Len())
		})
	}
}

// TestLoadMethodsAgreeOnPath: pongo2 names a template by the name given to
// FromFile but by its absolute path for FromCache, include and extends;
// keys must not depend on which: they take the path the Loader recorded.
func TestLoadMethodsAgreeOnPath(t *testing.T) {
	abs, err := fileAbs("shop/item.html")
	require.NoError(t, err)
	itemKey := keys.MakeTemplateFragmentKey(keys.FragmentName(tplPath("shop/item.html"),
		lineOf(t, tplDir+"/shop/item.html", "{% cache")))
	childKey := keys.MakeTemplateFragmentKey(keys.FragmentName(tplPath("shop/child.html"),
		lineOf(t, tplDir+"/shop/child.html", "{% cache")))
	cases := []struct {
		name string
		load func(*pongo2.TemplateSet) (*pongo2.Template, error)
		key  string
	}{
		{"FromFile", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromFile("shop/item.html") }, itemKey},
		{"FromFile absolute", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromFile(abs) }, itemKey},
		{"FromCache", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromCache("shop/item.html") }, itemKey},
		{"include", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromFile("shop/includer.html") }, itemKey},
		{"include from a string", func(s *pongo2.TemplateSet) (*pongo2.Template, error) {
			return s.FromString(`{% include "shop/item.html" %}`)
		}, itemKey},
		{"extends", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromFile("shop/child.html") }, childKey},
		{"extends via FromCache", func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromCache("shop/child.html") }, childKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := tc.load(newSet(t))
			require.NoError(t, err)
			fc, simple := newCache(fragment.Options{})
			out, err := render(tpl, fc, pongo2.Context{"item": "<x>"})
			require.NoError(t, err)
			assert.Contains(t, out, "&lt;x&gt;")
			ok, err := fc.Store().Has(context.Background(), tc.key)
			require.NoError(t, err)
			assert.True(t, ok, "nothing stored under %q", tc.key)
			assert.Equal(t, 1, simple.Len())
		})
	}
}

// ttlSpy is a SimpleCache that records the TTL of every Set.
type ttlSpy struct {
	backends.Backend
	mu   sync.Mutex
	ttls []time.Duration
}

func (s *ttlSpy) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.ttls = append(s.ttls, ttl)
	s.mu.Unlock()
	return s.Backend.Set(ctx, key, value, ttl)
}

func TestTimeoutTTLs(t *testing.T) {
	const def = 42 * time.Second
	cases := []struct {
		name    string
		timeout string // the block's timeout argument
		data    pongo2.Context
		want    time.Duration
	}{
		{"integer seconds", "300", nil, 300 * time.Second},
		{"arithmetic", "60*5", nil, 300 * time.Second},
		{"float seconds", "0.05", nil, 50 * time.Millisecond},
		{"time.Duration", "d", pongo2.Context{"d": 1500 * time.Millisecond}, 1500 * time.Millisecond},
		{"variable seconds", "n", pongo2.Context{"n": 7}, 7 * time.Second},
		{"None is the default", "None", nil, def},
		{"0 never expires, as in Flask", "0", nil, backends.NoExpiry},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spy := &ttlSpy{Backend: backends.NewSimple(0)}
			fc := fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{DefaultTimeout: def})
			tpl := fromString(t, newSet(t), `{% cache `+tc.timeout+`, "t" %}x{% endcache %}`)
			_, err := render(tpl, fc, tc.data)
			require.NoError(t, err)
			assert.Equal(t, []time.Duration{tc.want}, spy.ttls)
		})
	}
}

func TestShortTimeoutsExpire(t *testing.T) {
	const short = 50 * time.Millisecond
	cases := []struct {
		name    string
		timeout string
		data    pongo2.Context
	}{
		{"float seconds", "0.05", nil},
		{"time.Duration", "d", pongo2.Context{"d": short}},
		{"None with a short default", "None", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, _ := newCache(fragment.Options{DefaultTimeout: short})
			var runs atomic.Int64
			data := pongo2.Context{"run": func() int64 { return runs.Add(1) }}.Update(tc.data)
			tpl := fromString(t, newSet(t), `{% cache `+tc.timeout+`, "t" %}{{ run() }}{% endcache %}`)
			first, err := render(tpl, fc, data)
			require.NoError(t, err)
			time.Sleep(4 * short)
			again, err := render(tpl, fc, data)
			require.NoError(t, err)
			assert.Equal(t, int64(2), runs.Load(), "expired fragment not rendered again")
			assert.NotEqual(t, first, again)
		})
	}
}

func TestTimeoutDelDeletesAndRendersWithoutStoring(t *testing.T) {
	ctx := context.Background()
	set := newSet(t)
	fc, simple := newCache(fragment.Options{})
	var runs atomic.Int64
	data := pongo2.Context{"run": func() int64 { return runs.Add(1) }}
	key := keys.MakeTemplateFragmentKey("box", "7")
	_, err := render(fromString(t, set, `{% cache 300, "box", 7 %}{{ run() }}{% endcache %}`), fc, data)
	require.NoError(t, err)
	require.Equal(t, 1, simple.Len())

	del := fromString(t, set, `{% cache "del", "box", 7 %}[{{ run() }}]{% endcache %}`)
	for i := 2; i <= 3; i++ {
		out, err := render(del, fc, data)
		require.NoError(t, err)
		assert.Equal(t, "["+strconv.Itoa(i)+"]", out, "del must render the body every time")
		ok, err := fc.Store().Has(ctx, key)
		require.NoError(t, err)
		assert.False(t, ok, "del left the fragment stored")
	}
	assert.Equal(t, uint64(2), fc.Stats().DelBlocks)
}

func TestVaryOnSeparatesFragments(t *testing.T) {
	set := newSet(t)
	cases := []struct {
		name string
		src  string
		ctxs []pongo2.Context // one per render; each must get its own fragment
	}{
		{"variable", `{% cache 300, "u", user %}{{ user }}{% endcache %}`,
			[]pongo2.Context{{"user": "ann"}, {"user": "bob"}, {"user": "carl"}}},
		{"unnamed", `{% cache 300, None, user %}{{ user }}{% endcache %}`,
			[]pongo2.Context{{"user": "ann"}, {"user": "bob"}}},
		{"two values", `{% cache 300, "u", a, b %}{{ a }}/{{ b }}{% endcache %}`,
			[]pongo2.Context{{"a": 1, "b": 2}, {"a": 2, "b": 1}, {"a": 1, "b": 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			tpl := fromString(t, set, tc.src)
			for round := 0; round < 2; round++ { // round 2 must hit the fragments of round 1
				for _, data := range tc.ctxs {
					got, err := render(tpl, fc, data)
					require.NoError(t, err)
					want, err := fromString(t, set, uncached(tc.src)).Execute(data)
					require.NoError(t, err)
					assert.Equal(t, want, got)
				}
			}
			assert.Equal(t, len(tc.ctxs), simple.Len())
			assert.Equal(t, uint64(len(tc.ctxs)), fc.Stats().Hits)
		})
	}
}

// TestBlockPlacements checks that a block caches wherever pongo2 lets it
// stand: the table gives the number of body evaluations expected over two
// renders that differ only in data the block does not vary on.
func TestBlockPlacements(t *testing.T) {
	cases := []struct {
		name  string
		file  string // a template under testdata/tpl, or "" for src
		src   string
		runs  int64 // body evaluations over both renders
		items int   // fragments stored
	}{
		{"for, varying on the loop variable", "",
			`{% for it in items %}{% cache 300, "row", it %}{{ it }}{{ run() }}{% endcache %}{% endfor %}`, 3, 3},
		{"for, forloop.Counter as vary_on", "",
			`{% for it in items %}{% cache 300, "c", forloop.Counter %}{{ run() }}{% endcache %}{% endfor %}`, 3, 3},
		{"macro, varying on its parameter", "",
			`{% macro m(x) %}{% cache 300, "m", x %}{{ x }}{{ run() }}{% endcache %}{% endmacro %}{{ m("a") }}{{ m("b") }}{{ m("a") }}`, 2, 2},
		{"nested: the outer hit skips the inner", "",
			`{% cache 300, "o" %}{{ run() }}{% cache 300, "i" %}{{ run() }}{% endcache %}{% endcache %}`, 2, 2},
		{"nested: the inner survives the outer", "",
			`{% cache "del", "o" %}{{ run() }}{% cache 300, "i" %}{{ run() }}{% endcache %}{% endcache %}`, 3, 1},
		{"with", "",
			`{% with x="a" %}{% cache 300, "w", x %}{{ x }}{{ run() }}{% endcache %}{% endwith %}`, 1, 1},
		{"if", "",
			`{% if items %}{% cache 300 %}{{ run() }}{% endcache %}{% endif %}`, 1, 1},
		{"include", "shop/includer.html", "", 1, 1},
		{"block in a child template", "shop/child.html", "", 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			var tpl *pongo2.Template
			var err error
			if tc.file != "" {
				tpl, err = set.FromFile(tc.file)
			} else {
				tpl, err = set.FromString(tc.src)
			}
			require.NoError(t, err)
			fc, simple := newCache(fragment.Options{})
			var runs atomic.Int64
			var outs []string
			for i := 0; i < 2; i++ {
				out, err := render(tpl, fc, pongo2.Context{
					"items": []string{"a", "b", "c"},
					"item":  "render " + strconv.Itoa(i), // not a key: the second render must show the first's
					"run":   func() string { runs.Add(1); return "" },
				})
				require.NoError(t, err)
				outs = append(outs, out)
			}
			evals := runs.Load()
			if tc.file != "" { // file templates call no run(); count renders
				evals = int64(fc.Stats().Renders)
			}
			assert.Equal(t, tc.runs, evals, "body evaluations")
			assert.Equal(t, tc.items, simple.Len(), "fragments stored")
			if tc.file != "" {
				assert.Contains(t, outs[1], "render 0", "second render not served from the cache")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name   string
		src    string
		at     string // the token the error points at, found in src
		sender string
		msg    string
	}{
		{"missing endcache", "a\n  {% cache 300 %}x", "cache", sender, "{% endcache %} is missing"},
		{"missing endcache of the outer block", "{% cache 1 %}\n{% cache 2 %}x{% endcache %}", "cache", sender, "endcache"},
		{"missing timeout", "\n{% cache %}x{% endcache %}", "cache", sender, "missing timeout"},
		{"missing comma", `{% cache 300 "a" %}x{% endcache %}`, `"a"`, sender, "expected ','"},
		{"missing comma after the name", `{% cache 300, "a" user %}x{% endcache %}`, "user", sender, "expected ','"},
		{"trailing token", `{% cache 300, "a" ) %}x{% endcache %}`, ")", sender, "expected ','"},
		{"trailing comma", "\n\n{% cache 300, %}x{% endcache %}", ",", sender, "trailing ','"},
		{"empty argument", `{% cache 300, , "a" %}x{% endcache %}`, ", ,", "parser", "Expected"},
		{"bad expression", `{% cache 300, (1 %}x{% endcache %}`, "1", "parser", "Closing bracket"},
		{"arguments after endcache", "{% cache 300 %}\nx{% endcache 5 %}", "5 %}", sender, "endcache takes no arguments"},
		{"error in the body", "{% cache 300 %}{% if %}{% endcache %}", "if", "parser", ""},
		{"two unnamed blocks on one line", "\n<a>{% cache 300 %}A{% endcache %}</a><b>{% cache 300 %}B{% endcache %}</b>", "cache 300 %}B", sender, "name one of them"},
		{"unnamed blocks nested on one line", "{% cache 1 %}a{% cache 2 %}b{% endcache %}{% endcache %}", "cache 2", sender, "same line"},
		{"a block named None is unnamed", "{% cache 1 %}a{% endcache %}{% cache 1, None, x %}b{% endcache %}", "cache 1, None", sender, "same line"},
		{"unnamed blocks in two branches of an if", "{% if a %}{% cache 1 %}x{% endcache %}{% else %}{% cache 2 %}y{% endcache %}{% endif %}", "cache 2", sender, "same line"},
		{"trimmed tags", "{%- cache 1 -%}a{%- endcache -%}{%- cache 2 -%}b{%- endcache -%}", "cache 2", sender, "same line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newSet(t).FromString(tc.src)
			require.Error(t, err)
			pe := pongoError(t, err)
			want := positionOf(t, tc.src, tc.at)
			if tc.at == ", ," {
				want.col += 2 // the second comma
			}
			assert.Equal(t, want, position{pe.Line, pe.Column}, "position of %v", err)
			assert.Equal(t, "<string>", pe.Filename)
			assert.Equal(t, tc.sender, pe.Sender)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

// TestTwoUnnamedBlocksOnOneLineAreRefused: they would share Flask's
// path+line key, so the second would serve the first's fragment.
func TestTwoUnnamedBlocksOnOneLineAreRefused(t *testing.T) {
	src := "<a>{% cache 300 %}A{% endcache %}</a><b>{% cache 300 %}B{% endcache %}</b>"
	tpl, err := newSet(t).FromString(src)
	if err == nil {
		fc, _ := newCache(fragment.Options{})
		out, _ := render(tpl, fc, nil)
		t.Fatalf("parsed; renders %q", out)
	}
	pe := pongoError(t, err)
	assert.ErrorIs(t, pe.OrigError, ErrSameLine)
	assert.Equal(t, position{1, strings.LastIndex(src, "cache 300") + 1}, position{pe.Line, pe.Column})
	assert.Contains(t, err.Error(), "<string>:1:7") // the first block's "cache"

	accepted := []string{
		strings.Replace(src, "cache 300", `cache 300, "a"`, 1),
		strings.Replace(src, "{% cache 300 %}B", `{% cache 300, "b" %}B`, 1),
		"{% cache 300 %}A{% endcache %}\n{% cache 300 %}B{% endcache %}",
		"{% comment %}{% cache 300 %}{% endcomment %}{% cache 300 %}A{% endcache %}",
		"{% comment %}{% cache 300 %}{% endcomment %}x\n{% cache 300 %}A{% endcache %}{% comment %}{% cache 1 %}{% endcomment %}",
	}
	for _, src := range accepted {
		tpl := fromString(t, newSet(t), src)
		want, err := fromString(t, newSet(t), uncached(src)).Execute(nil)
		require.NoError(t, err)
		fc, _ := newCache(fragment.Options{})
		for range 2 {
			out, err := render(tpl, fc, nil)
			require.NoError(t, err)
			assert.Equal(t, want, out, src)
		}
	}
}

// TestParseErrorOutsideTheLoaderRoot: a template the loader reaches
// outside its root has no path naming one file, so its blocks do not parse;
// templates without blocks load as before.
func TestParseErrorOutsideTheLoaderRoot(t *testing.T) {
	require.NoError(t, registerOnce())
	outside := t.TempDir()
	src := "x\n{% cache 300 %}y{% endcache %}"
	require.NoError(t, writeFile(filepath.Join(outside, "block.html"), src))
	require.NoError(t, writeFile(filepath.Join(outside, "plain.html"), "plain"))
	set := newSet(t)

	_, err := set.FromFile(filepath.Join(outside, "block.html"))
	require.Error(t, err)
	pe := pongoError(t, err)
	assert.Equal(t, sender, pe.Sender)
	assert.Equal(t, positionOf(t, src, "cache"), position{pe.Line, pe.Column})
	assert.Contains(t, err.Error(), "outside the root")

	tpl, err := set.FromFile(filepath.Join(outside, "plain.html"))
	require.NoError(t, err)
	out, err := tpl.Execute(nil)
	require.NoError(t, err)
	assert.Equal(t, "plain", out)
}

// TestParseErrorWithoutLoader: a file template loaded through a plain pongo2
// loader gives no path that names one file, so its blocks do not parse.
func TestParseErrorWithoutLoader(t *testing.T) {
	require.NoError(t, registerOnce())
	set := pongo2.NewSet(t.Name(), pongo2.MustNewLocalFileSystemLoader(tplDir))
	_, err := set.FromFile("shop/item.html")
	require.Error(t, err)
	pe := pongoError(t, err)
	assert.Equal(t, sender, pe.Sender)
	assert.Equal(t, lineOf(t, tplDir+"/shop/item.html", "{% cache"), pe.Line)
	assert.Contains(t, err.Error(), "pongo2tag.NewLoader")

	_, err = set.FromFile("base.html") // no block: no path needed
	require.NoError(t, err)
}

// plainSet returns set, or for a template with blocks a set that reads it
// with its blocks removed: the output the Loader's set must give.
func plainSet(t *testing.T, name string, set *pongo2.TemplateSet) *pongo2.TemplateSet {
	t.Helper()
	src := map[string]string{"brace.html": "a\n{% cache 300 %}b{% endcache %}{", "ctrl.html": "a\n{% cache 300 %}b{% endcache %}{\x01c"}[name]
	if src == "" {
		return set
	}
	return pongo2.NewSet(t.Name()+"-uncached", pongo2.NewFSLoader(fstest.MapFS{name: {Data: []byte(uncached(src))}}))
}

// TestLoaderKeepsOutputAndPositions: the tag Loader appends renders nothing
// and adds no line, and a template may not use it.
func TestLoaderKeepsOutputAndPositions(t *testing.T) {
	require.NoError(t, registerOnce())
	files := fstest.MapFS{
		"page.html":  {Data: []byte("a\n{{ x }}\n")},
		"bad.html":   {Data: []byte("a\n\n  {{ nope( }}")},
		"child.html": {Data: []byte(`{% extends "page.html" %}`)},
		"spoof.html": {Data: []byte(`{% fragcachepath "d2ViL3g" %}x`)},
		"brace.html": {Data: []byte("a\n{% cache 300 %}b{% endcache %}{")},      // "{" + the appended "{%" must not lex as "{{"
		"ctrl.html":  {Data: []byte("a\n{% cache 300 %}b{% endcache %}{\x01c")}, // pongo2 stops reading at 0x01
	}
	plain := pongo2.NewSet(t.Name()+"-plain", pongo2.NewFSLoader(files))
	wrapped := pongo2.NewSet(t.Name(), newLoader(t, uniqueName("fs"), pongo2.NewFSLoader(files)))
	fc, _ := newCache(fragment.Options{})
	for _, name := range []string{"page.html", "child.html", "brace.html", "ctrl.html"} {
		want, err := pongo2.Must(plainSet(t, name, plain).FromFile(name)).Execute(pongo2.Context{"x": "<x>"})
		require.NoError(t, err)
		got, err := pongo2.Must(wrapped.FromFile(name)).Execute(With(context.Background(), fc, pongo2.Context{"x": "<x>"}))
		require.NoError(t, err)
		assert.Equal(t, want, got, name)
	}
	_, want := plain.FromFile("bad.html")
	_, got := wrapped.FromFile("bad.html")
	require.Error(t, want)
	require.Error(t, got)
	assert.Equal(t, want.Error(), got.Error())

	_, err := wrapped.FromFile("spoof.html")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "reserved")
}

func TestExecutionErrors(t *testing.T) {
	type point struct{ X, Y int }
	cases := []struct {
		name   string
		src    string
		data   pongo2.Context
		at     string // the token the error points at, found in src
		sender string
		is     error // expected in the chain of the *pongo2.Error's OrigError
		msg    string
	}{
		{"string timeout", `{% cache "abc" %}x{% endcache %}`, nil, `"abc"`, sender, fragment.ErrTimeout, "abc"},
		{"negative timeout", "\n  {% cache t %}x{% endcache %}", pongo2.Context{"t": -5}, "t %}", sender, fragment.ErrTimeout, "-5"},
		{"struct timeout", `{% cache p %}x{% endcache %}`, pongo2.Context{"p": point{}}, "p %}", sender, fragment.ErrTimeout, "point"},
		{"struct name", `{% cache 300, p %}x{% endcache %}`, pongo2.Context{"p": point{}}, "p %}", sender, fragment.ErrKeyValue, "point"},
		{"struct vary_on", `{% cache 300, "n", 1, p, 2 %}x{% endcache %}`, pongo2.Context{"p": point{}}, "p,", sender, fragment.ErrKeyValue, "point"},
		{"re-entered key", "{% cache 300, \"k\" %}\n{% cache 300, \"k\" %}x{% endcache %}{% endcache %}", nil, "cache 300, \"k\" %}x", sender, fragment.ErrRecursive, "re-enters"},
		{"error in an argument", `{% cache 300, f() %}x{% endcache %}`, pongo2.Context{"f": func() (string, error) { return "", errBroken }}, "f()", "execution", nil, errBroken.Error()},
		{"error in the body", "{% cache 300 %}\n  {{ f() }}{% endcache %}", pongo2.Context{"f": func() (string, error) { return "", errBroken }}, "f()", "execution", nil, errBroken.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			tpl := fromString(t, newSet(t), tc.src)
			out, err := render(tpl, fc, tc.data)
			require.Error(t, err)
			assert.Empty(t, out)
			pe := pongoError(t, err)
			assert.Equal(t, positionOf(t, tc.src, tc.at), position{pe.Line, pe.Column}, "position of %v", err)
			assert.Equal(t, tc.sender, pe.Sender)
			assert.Contains(t, err.Error(), tc.msg)
			if tc.is != nil {
				assert.ErrorIs(t, pe.OrigError, tc.is)
			}
			assert.Zero(t, simple.Len(), "a failed block stored a fragment")
		})
	}
}

func TestBinding(t *testing.T) {
	ctx := context.Background()
	src := `{% cache 300, "b" %}x{% endcache %}`
	key := keys.MakeTemplateFragmentKey("b")
	cases := []struct {
		name  string
		setup func(set *pongo2.TemplateSet, fc, other *fragment.Cache) pongo2.Context
		into  string // which cache must hold the fragment: "fc" or "" for an ErrNotBound error
		msg   string
	}{
		{"Bind binds the set", func(set *pongo2.TemplateSet, fc, _ *fragment.Cache) pongo2.Context {
			Bind(set, fc)
			return nil
		}, "fc", ""},
		{"With binds one render", func(_ *pongo2.TemplateSet, fc, _ *fragment.Cache) pongo2.Context {
			return With(ctx, fc, nil)
		}, "fc", ""},
		{"With overrides Bind", func(set *pongo2.TemplateSet, fc, other *fragment.Cache) pongo2.Context {
			Bind(set, other)
			return With(ctx, fc, pongo2.Context{"a": 1})
		}, "fc", ""},
		{"a nil context means Background", func(_ *pongo2.TemplateSet, fc, _ *fragment.Cache) pongo2.Context {
			//lint:ignore SA1012 a nil context is what is tested
			return With(nil, fc, nil)
		}, "fc", ""},
		{"a bare *fragment.Cache", func(_ *pongo2.TemplateSet, fc, _ *fragment.Cache) pongo2.Context {
			return pongo2.Context{ContextKey: fc}
		}, "fc", ""},
		{"nothing bound", func(*pongo2.TemplateSet, *fragment.Cache, *fragment.Cache) pongo2.Context {
			return pongo2.Context{"a": 1}
		}, "", ""},
		{"a nil cache", func(_ *pongo2.TemplateSet, _, _ *fragment.Cache) pongo2.Context {
			return With(ctx, nil, nil)
		}, "", ""},
		{"something else under the key", func(*pongo2.TemplateSet, *fragment.Cache, *fragment.Cache) pongo2.Context {
			return pongo2.Context{ContextKey: "oops"}
		}, "", "holds string"},
		{"the binding under the key's former name", func(_ *pongo2.TemplateSet, fc, _ *fragment.Cache) pongo2.Context {
			return pongo2.Context{"_fragcache": With(ctx, fc, nil)[ContextKey]}
		}, "", `"_fragcache" is the former name of ContextKey: pass the binding on as _fc`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			fc, _ := newCache(fragment.Options{})
			other, otherStore := newCache(fragment.Options{})
			data := tc.setup(set, fc, other)
			tpl := fromString(t, set, src)
			out, err := tpl.Execute(data)
			if tc.into == "" {
				require.Error(t, err)
				pe := pongoError(t, err)
				assert.ErrorIs(t, pe.OrigError, ErrNotBound)
				assert.Equal(t, sender, pe.Sender)
				assert.Equal(t, positionOf(t, src, "cache"), position{pe.Line, pe.Column})
				assert.Contains(t, err.Error(), tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "x", out)
			ok, err := fc.Store().Has(ctx, key)
			require.NoError(t, err)
			assert.True(t, ok, "fragment not in the bound cache")
			assert.Zero(t, otherStore.Len(), "fragment in the overridden cache")
		})
	}
}

func TestBindingThroughIncludeOnly(t *testing.T) {
	cases := []struct {
		file  string
		bound bool
	}{
		{"shop/only.html", false},  // `only` drops the render's context …
		{"shop/passon.html", true}, // … unless the template passes the binding on
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			set := newSet(t)
			tpl, err := set.FromFile(tc.file)
			require.NoError(t, err)
			fc, simple := newCache(fragment.Options{})
			out, err := render(tpl, fc, pongo2.Context{"item": "i"})
			if !tc.bound {
				pe := pongoError(t, err)
				assert.ErrorIs(t, pe.OrigError, ErrNotBound)
				// A set binding survives `only`: Globals are in every context.
				Bind(set, fc)
				out, err = tpl.Execute(pongo2.Context{"item": "i"})
			}
			require.NoError(t, err)
			assert.Contains(t, out, "<b>i</b>")
			assert.Equal(t, 1, simple.Len())
		})
	}
}

func TestBackendErrors(t *testing.T) {
	src := `<p>{% cache 300, "x", user %}{{ user }}{% endcache %}</p>`
	data := pongo2.Context{"user": "<ann>"}
	cases := []struct {
		name   string
		strict bool
	}{
		{"fail open renders uncached", false},
		{"strict returns the error", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			want, err := fromString(t, set, uncached(src)).Execute(data)
			require.NoError(t, err)
			fc := fragment.New(backends.New(brokenBackend{}, backends.CacheOptions{}),
				fragment.Options{Strict: tc.strict, Logger: slog.New(slog.DiscardHandler)})
			out, err := render(fromString(t, set, src), fc, data)
			assert.Equal(t, uint64(1), fc.Stats().BackendErrors)
			if !tc.strict {
				require.NoError(t, err)
				assert.Equal(t, want, out)
				return
			}
			require.Error(t, err)
			pe := pongoError(t, err)
			assert.ErrorIs(t, pe.OrigError, errBroken)
			assert.Equal(t, sender, pe.Sender)
			assert.Equal(t, positionOf(t, src, "cache"), position{pe.Line, pe.Column})
		})
	}
}

// TestSourceDigest: unnamed blocks of "<string>" templates on the same line
// share a key, as Flask's would; fragment.Options.SourceDigest separates them
// by their body, and only by their body.
func TestSourceDigest(t *testing.T) {
	cases := []struct {
		name   string
		a, b   string
		digest bool
		shared bool // whether b is served a's fragment
	}{
		{"without digest, same line collides", `{% cache 300 %}A{% endcache %}`, `{% cache 300 %}B{% endcache %}`, false, true},
		{"with digest, different bodies", `{% cache 300 %}A{% endcache %}`, `{% cache 300 %}B{% endcache %}`, true, false},
		{"with digest, same body", `{% cache 300 %}{{ x }}{% endcache %}`, `{% cache 60 %}{{ x }}{% endcache %}`, true, true},
		{"with digest, whitespace control", `{% cache 300 %} {{ x }}{% endcache %}`, `{% cache 300 %} {{- x }}{% endcache %}`, true, false},
		{"with digest, named blocks keep Flask keys", `{% cache 300, "n" %}A{% endcache %}`, `{% cache 300, "n" %}B{% endcache %}`, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := newSet(t)
			fc, simple := newCache(fragment.Options{SourceDigest: tc.digest})
			data := pongo2.Context{"x": "A"}
			outA, err := render(fromString(t, set, tc.a), fc, data)
			require.NoError(t, err)
			outB, err := render(fromString(t, set, tc.b), fc, data)
			require.NoError(t, err)
			wantB, err := fromString(t, set, uncached(tc.b)).Execute(data)
			require.NoError(t, err)
			if tc.shared {
				assert.Equal(t, outA, outB)
				assert.Equal(t, 1, simple.Len())
			} else {
				assert.Equal(t, wantB, outB)
				assert.Equal(t, 2, simple.Len())
			}
		})
	}
}

// TestConcurrentRenders renders a page with nested and looped blocks from
// many goroutines; -race checks that parsed nodes are shared safely.
func TestConcurrentRenders(t *testing.T) {
	set := newSet(t)
	src := `{% for it in items %}{% cache 300, "row", it %}<{{ it }}>{% cache 300, "in", it %}{{ it|upper }}{% endcache %}{% endcache %}{% endfor %}`
	want, err := fromString(t, set, uncached(src)).Execute(pongo2.Context{"items": []string{"a", "b", "c", "d"}})
	require.NoError(t, err)
	tpl := fromString(t, set, src)
	fc, _ := newCache(fragment.Options{})
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; i < 50; i++ {
				out, err := render(tpl, fc, pongo2.Context{"items": []string{"a", "b", "c", "d"}})
				if err == nil && out != want {
					err = errors.New("got " + out)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		require.NoError(t, <-errs)
	}
	// 8 fragments, each rendered exactly once: concurrent misses wait for
	// the render in flight, and a miss arriving after it was stored finds it
	// when it looks again inside its own flight.
	st := fc.Stats()
	assert.Equal(t, uint64(8), st.Renders)
	assert.Positive(t, st.Hits)
}

// TestExecuteWriterUnbuffered: pongo2 hands the tag its own writer wrapper
// there, not a *bytes.Buffer.
func TestExecuteWriterUnbuffered(t *testing.T) {
	set := newSet(t)
	src := `a{% cache 300 %}<{{ x }}>{% endcache %}b`
	data := pongo2.Context{"x": "&"}
	want, err := fromString(t, set, uncached(src)).Execute(data)
	require.NoError(t, err)
	fc, _ := newCache(fragment.Options{})
	tpl := fromString(t, set, src)
	for i := 0; i < 2; i++ {
		var sb strings.Builder
		require.NoError(t, tpl.ExecuteWriterUnbuffered(With(context.Background(), fc, data), &sb))
		assert.Equal(t, want, sb.String())
	}
}

// writerOnly is an io.Writer without WriteString.
type writerOnly struct{ b *strings.Builder }

func (w writerOnly) Write(p []byte) (int, error) { return w.b.Write(p) }

// TestBodyRendersIntoAnyWriter: fragment.Render may hand the body any
// io.Writer, while pongo2 nodes need a TemplateWriter.
func TestBodyRendersIntoAnyWriter(t *testing.T) {
	n := parseNode(t, "300", "<{{ x }}>")
	ctx := &pongo2.ExecutionContext{Autoescape: true, Public: pongo2.Context{"x": "&"}, Private: pongo2.Context{}}
	var sb strings.Builder
	require.NoError(t, n.renderBody(ctx, writerOnly{&sb}))
	assert.Equal(t, "<&amp;>", sb.String())
}

// TestBanTag: the tag is a real pongo2 tag, so a set's sandbox can ban it.
func TestBanTag(t *testing.T) {
	set := newSet(t)
	require.NoError(t, set.BanTag(TagName))
	_, err := set.FromString(`{% cache 300 %}x{% endcache %}`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not allowed")
}

// TestNilNameOnASharedLineIsAnError: a name that evaluates to nil falls
// back to the template-and-line key, which another block on the same line
// may have too; that block would then be served this one's fragment.
func TestNilNameOnASharedLineIsAnError(t *testing.T) {
	src := `{% cache 300, x %}A{% endcache %}{% cache 300, y %}B{% endcache %}`
	tpl := fromString(t, newSet(t), src)
	fc, _ := newCache(fragment.Options{})
	out, err := render(tpl, fc, pongo2.Context{"x": "a", "y": "b"})
	require.NoError(t, err)
	assert.Equal(t, "AB", out)

	for _, data := range []pongo2.Context{{"y": "b"}, {"x": "a"}, nil} {
		fc, _ := newCache(fragment.Options{})
		out, err := render(tpl, fc, data)
		require.Error(t, err, "rendered %q", out)
		pe := pongoError(t, err)
		assert.ErrorIs(t, pe.OrigError, ErrSameLine)
		assert.Contains(t, err.Error(), "evaluated to nil")
	}

	// Next to an unnamed block too.
	fc, _ = newCache(fragment.Options{})
	_, err = render(fromString(t, newSet(t), `{% cache 300 %}A{% endcache %}{% cache 300, y %}B{% endcache %}`), fc, nil)
	require.Error(t, err)
	assert.ErrorIs(t, pongoError(t, err).OrigError, ErrSameLine)

	// Alone on its line, or next to blocks named by literals, a nil name is
	// the default name.
	for _, src := range []string{
		"{% cache 300, x %}A{% endcache %}\n{% cache 300, y %}B{% endcache %}",
		`{% cache 300, x %}A{% endcache %}{% cache 300, "b" %}B{% endcache %}{% cache 300, 5 %}{% endcache %}`,
	} {
		fc, _ = newCache(fragment.Options{})
		out, err = render(fromString(t, newSet(t), src), fc, nil)
		require.NoError(t, err, src)
		assert.Equal(t, uncachedOutput(t, src), out)
	}
}

// uncachedOutput renders src without its cache blocks.
func uncachedOutput(t *testing.T, src string) string {
	t.Helper()
	out, err := fromString(t, newSet(t), uncached(src)).Execute(nil)
	require.NoError(t, err)
	return out
}
