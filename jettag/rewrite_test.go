package jettag

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/templatefuzz"
)

func newTags(opts Options) *Tags {
	return New(fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{}), opts)
}

var lineMarker = regexp.MustCompile(`#\d+#`)

// markerLines maps each "#n#" marker to the line it is on.
func markerLines(s string) map[string]int {
	out := map[string]int{}
	for _, loc := range lineMarker.FindAllStringIndex(s, -1) {
		out[s[loc[0]:loc[1]]] = 1 + strings.Count(s[:loc[0]], "\n")
	}
	return out
}

func TestRewriteKeepsEveryLine(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		src  string
	}{
		{"single line", Options{}, "#1#{{ cache 300 }}#2#{{ endcache }}#3#\n#4#"},
		{"body over lines", Options{}, "#1#\n{{ cache 300, \"n\" }}\n#3#\n{{ endcache }}\n#5#"},
		{"opener over lines", Options{}, "#1#{{ cache\n300,\n\"n\" }}#3#{{ endcache\n}}#4#\n#5#"},
		{"parenthesised args over lines", Options{}, "{{ cache(\n300\n) }}#3#{{ endcache }}\n#4#"},
		{"trim markers", Options{}, "#1#  \n {{- cache 300 -}} \n #3# \n {{- endcache -}} \n #5#"},
		{"nested", Options{}, "{{ cache 1 }}\n#2#{{ cache 2 }}\n#3#\n{{ endcache }}#4#\n{{ endcache }}\n#6#"},
		{"comment and raw string", Options{}, "{* {{ cache 1 }}\n *}#2#{{ cache 1, `a\n}}` }}#3#\n{{ endcache }}#4#"},
		{"custom delimiters", Options{LeftDelim: "[[", RightDelim: "]]", LeftComment: "<#", RightComment: "#>"},
			"#1#[[ cache 300 ]]\n#2#<# [[ endcache ]] \n#>#3#[[- endcache -]]\n#4#"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := newTags(tt.opts).Rewrite("/p.jet", tt.src)
			require.NoError(t, err)
			require.NotEqual(t, tt.src, out, "the source has tags to rewrite")
			assert.Equal(t, markerLines(tt.src), markerLines(out))
			assert.Equal(t, strings.Count(tt.src, "\n"), strings.Count(out, "\n"))
		})
	}
}

func TestRewriteLeavesNonTagsAlone(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		src  string
	}{
		{"no tags", Options{}, "<p>{{ cached }} cache endcache {{ x.cache }}</p>"},
		{"tags in a comment", Options{}, "{* {{ cache 300 }} *}{* {{ endcache }} *}"},
		{"tags in strings", Options{}, "{{ \"{{ cache 300 }}\" }}{{ `{{ endcache }}` }}{{ \"}}{{ endcache }}\" }}"},
		{"escaped quote in a string", Options{}, `{{ "\"}}{{ cache 1 }}" }}`},
		{"a variable named cache", Options{}, "{{ cache := 1 }}{{ cache = 2 }}{{ cache.X }}{{ cache[0] }}"},
		{"default delimiters under custom ones", Options{LeftDelim: "[[", RightDelim: "]]"}, "{{ cache 300 }}x{{ endcache }}"},
		{"custom comment", Options{LeftComment: "<#", RightComment: "#>"}, "<# {{ cache 300 }} #>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := newTags(tt.opts).Rewrite("/p.jet", tt.src)
			require.NoError(t, err)
			assert.Equal(t, tt.src, out)
		})
	}
}

func TestRewriteErrorsNameTheTag(t *testing.T) {
	tests := []struct {
		name string
		src  string
		at   string // the tag the error points at: its first occurrence
		nth  int    // or its nth (0-based) occurrence
		want error
	}{
		{"cache without endcache", "a\n  {{ cache 300 }}x", "{{ cache", 0, ErrMissingEndcache},
		{"outer cache without endcache", "{{ cache 1 }}\n{{ cache 2 }}x{{ endcache }}", "{{ cache 1", 0, ErrMissingEndcache},
		{"inner cache without endcache", "{{ cache 1 }}\n{{ cache 2 }}x", "{{ cache 2", 0, ErrMissingEndcache},
		{"endcache only in a string", "{{ cache 1, \"}}{{ endcache }}\" }}", "{{ cache", 0, ErrMissingEndcache},
		{"trimmed cache without endcache", "\n\n{{- cache 300 -}}", "{{-", 0, ErrMissingEndcache},
		{"endcache without cache", "x\n  {{ endcache }}", "{{ endcache", 0, ErrStrayEndcache},
		{"second endcache", "{{ cache 1 }}x{{ endcache }}\n{{ endcache }}", "{{ endcache", 1, ErrStrayEndcache},
		{"cache in a comment", "{* {{ cache 1 }} *}\n{{ endcache }}", "{{ endcache", 0, ErrStrayEndcache},
		{"position counts runes", "é€{{ endcache }}", "{{", 0, ErrStrayEndcache},
		{"no arguments", "\n{{ cache }}x{{ endcache }}", "{{ cache", 0, ErrMissingTimeout},
		{"no arguments, trimmed", "{{- cache -}}x{{ endcache }}", "{{- cache", 0, ErrMissingTimeout},
		{"empty parentheses", "{{ cache( ) }}x{{ endcache }}", "{{ cache", 0, ErrMissingTimeout},
		{"endcache with arguments", "{{ cache 1 }}x\n{{ endcache 1 }}", "{{ endcache", 0, ErrEndcacheArgs},
		{"endcache with parentheses", "{{ cache 1 }}x{{ endcache() }}", "{{ endcache", 0, ErrEndcacheArgs},
		{"end of an outer if inside", "{{ if a }}{{ cache 1 }}x\n{{ end }}{{ endcache }}", "{{ end }}", 0, ErrOverlap},
		{"else of an outer if inside", "{{ if a }}{{ cache 1 }}x{{ else }}y{{ endcache }}{{ end }}", "{{ else", 0, ErrOverlap},
		{"else if of an outer if inside", "{{ if a }}{{ cache 1 }}x{{ else if b }}y{{ endcache }}{{ end }}", "{{ else", 0, ErrOverlap},
		{"else of an outer range inside", "{{ range xs }}{{ cache 1 }}x{{ else }}{{ endcache }}{{ end }}", "{{ else", 0, ErrOverlap},
		{"catch of an outer try inside", "{{ try }}{{ cache 1 }}x{{ catch e }}{{ endcache }}{{ end }}", "{{ catch", 0, ErrOverlap},
		{"content of an outer block inside", "{{ block b() }}{{ cache 1 }}x{{ content }}{{ endcache }}{{ end }}", "{{ content", 0, ErrOverlap},
		{"endcache inside an if", "{{ cache 1 }}{{ if a }}x\n{{ endcache }}{{ end }}", "{{ endcache", 0, ErrOverlap},
		{"endcache inside a block", "{{ cache 1 }}{{ block b() }}x{{ endcache }}{{ end }}", "{{ endcache", 0, ErrOverlap},
		{"endcache inside a yield with content", "{{ cache 1 }}{{ yield b() content }}x{{ endcache }}{{ end }}", "{{ endcache", 0, ErrOverlap},
		{"two unnamed blocks on one line", "\n<a>{{ cache 300 }}A{{ endcache }}</a><b>{{ cache 300 }}B{{ endcache }}</b>", "{{ cache", 1, ErrSameLine},
		{"unnamed blocks nested on one line", "{{ cache 1 }}a{{ cache 2 }}b{{ endcache }}{{ endcache }}", "{{ cache", 1, ErrSameLine},
		{"a block named nil is unnamed", "{{ cache 1 }}a{{ endcache }}{{ cache(1, nil, x) }}b{{ endcache }}", "{{ cache", 1, ErrSameLine},
		{"unnamed blocks in two branches of an if", "{{ if a }}{{ cache 1 }}x{{ endcache }}{{ else }}{{ cache 2 }}y{{ endcache }}{{ end }}", "{{ cache", 1, ErrSameLine},
		{"a trailing comma is no name", "{{ cache 1, }}a{{ endcache }}{{ cache 1 }}b{{ endcache }}", "{{ cache", 1, ErrSameLine},
		{"an opener over lines starts on its first line", "{{ cache 1 }}a{{ endcache }}{{ cache\n1 }}b{{ endcache }}", "{{ cache", 1, ErrSameLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTags(Options{}).Rewrite("/views/../views/p.jet", tt.src)
			require.ErrorIs(t, err, tt.want)
			var pe *ParseError
			require.ErrorAs(t, err, &pe)

			off := -1
			for i := 0; i <= tt.nth; i++ {
				off += 1 + strings.Index(tt.src[off+1:], tt.at)
			}
			line := 1 + strings.Count(tt.src[:off], "\n")
			col := 1 + utf8.RuneCountInString(tt.src[strings.LastIndex(tt.src[:off], "\n")+1:off])
			assert.Equal(t, ParseError{Path: "views/p.jet", Line: line, Col: col, Err: pe.Err}, *pe)
			assert.Contains(t, err.Error(), fmt.Sprintf("views/p.jet:%d:%d: cache: ", line, col))
		})
	}
}

func TestRewriteAcceptsWellNestedBlocks(t *testing.T) {
	for _, src := range []string{
		"{{ if a }}{{ cache 1 }}x{{ endcache }}{{ else }}{{ cache 2, \"n\" }}y{{ endcache }}{{ end }}",
		"{{ cache 1 }}a{{ endcache }}{{ cache 1, \"n\" }}b{{ endcache }}{{ cache 1, name }}c{{ endcache }}\n{{ cache 1 }}d{{ endcache }}",
		"{{ cache 1 }}a{{ endcache }}\n{{ cache 1 }}b{{ endcache }}",
		"{{ cache 1 }}{{ if a }}x{{ else if b }}y{{ else }}z{{ end }}{{ endcache }}",
		"{{ cache 1 }}{{ range i, x := xs }}{{ cache 2, \"n\", i }}{{ x }}{{ endcache }}{{ else }}-{{ end }}{{ endcache }}",
		"{{ cache 1 }}{{ try }}x{{ catch err }}{{ err }}{{ end }}{{ endcache }}",
		"{{ block b() }}{{ cache 1 }}x{{ endcache }}{{ content }}{{ end }}",
		"{{ cache 1 }}{{ yield content }}{{ yield b() }}{{ yield b() x.content }}{{ endcache }}",
		"{{ cache 1 }}{{ yield b() content }}x{{ end }}{{ endcache }}",
		"{{ end }}{{ cache 1 }}x{{ endcache }}", // a stray end is Jet's to report
	} {
		_, err := newTags(Options{}).Rewrite("/p.jet", src)
		assert.NoError(t, err, src)
	}
}

func TestRewritePathIsNormalised(t *testing.T) {
	tags := newTags(Options{})
	for _, p := range []string{"/views/a.jet", "views/a.jet", "/views/x/../a.jet", "//views/./a.jet"} {
		_, err := tags.Rewrite(p, "\n{{ cache 1 }}x{{ endcache }}")
		require.NoError(t, err)
	}
	sites := *tags.sites.Load()
	require.Len(t, sites, 1, "one source, one site, whatever the spelling of its path")
	assert.Equal(t, fragment.Site{Path: "views/a.jet", Line: 2, Col: 1, Digest: sites[0].Digest}, sites[0].Site)
}

func TestRewriteSiteDigestFollowsTheBody(t *testing.T) {
	tags := newTags(Options{})
	digest := func(src string) string {
		_, err := tags.Rewrite("/p.jet", src)
		require.NoError(t, err)
		sites := *tags.sites.Load()
		return sites[len(sites)-1].Digest
	}
	a := digest("{{ cache 1 }}body{{ endcache }}")
	assert.Len(t, a, 16)
	assert.Equal(t, a, digest("{{ cache 2, \"other args\" }}body{{ endcache }}"), "args are not body")
	assert.NotEqual(t, a, digest("{{ cache 1 }}body2{{ endcache }}"))
}

func TestRewriteRegistersEachSiteOnce(t *testing.T) {
	tags := newTags(Options{})
	src := "{{ cache 1 }}a{{ cache 2, \"n\" }}b{{ endcache }}{{ endcache }}"
	first, err := tags.Rewrite("/p.jet", src)
	require.NoError(t, err)
	again, err := tags.Rewrite("/p.jet", src)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, *tags.sites.Load(), 2)

	// Changing only a literal argument gives a new site: literals are
	// folded into the site.
	_, err = tags.Rewrite("/p.jet", strings.Replace(src, "cache 1", "cache 5", 1))
	require.NoError(t, err)
	assert.Len(t, *tags.sites.Load(), 3)
}

func TestConstantMatchesJetLiterals(t *testing.T) {
	tests := []struct {
		arg  string
		want any
		ok   bool
	}{
		{" 300 ", float64(300), true},
		{"0.05", 0.05, true},
		{`"del"`, "del", true},
		{"`raw`", "raw", true},
		{`"a\"b"`, `a"b`, true},
		{"nil", nil, true},
		{"5.", nil, false},
		{".5", nil, false},
		{"-1", nil, false},
		{"0x10", nil, false},
		{"ttl", nil, false},
		{"300 * 2", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		v, ok := constant(tt.arg)
		assert.Equal(t, tt.ok, ok, tt.arg)
		if ok {
			assert.Equal(t, tt.want, v, tt.arg)
		}
	}
}

func TestParseErrorUnwraps(t *testing.T) {
	err := error(&ParseError{Path: "p.jet", Line: 1, Col: 2, Err: ErrStrayEndcache})
	assert.True(t, errors.Is(err, ErrStrayEndcache))
	assert.Equal(t, "p.jet:1:2: cache: "+ErrStrayEndcache.Error(), err.Error())
}

// unboundedJet are constructs with which Jet itself can loop or recurse
// without bound (include, yield and exec reach the fuzzed template again;
// repeat, replace and ints multiply), or render differently each time (map
// ranges in random order).
var unboundedJet = []string{"include", "extends", "import", "yield", "exec", "repeat", "replace", "ints", "map", "dump"}

// FuzzRewrite checks that no input makes Rewrite panic, that a successful
// rewrite keeps every newline, and that text without tags is left alone;
// then that a template that parses renders the same through a cache, first
// render and second, as with no cache (templatefuzz.CheckCachedEqualsUncached).
func FuzzRewrite(f *testing.F) {
	for _, seed := range []string{
		"{{ cache 300 }}x{{ endcache }}",
		"{{- cache(300, \"a\") -}}\n{{ if a }}{{ cache 1 }}{{ endcache }}{{ end }}{{- endcache -}}",
		"{* {{ cache *}{{ \"}}\" }}{{ `\n` }}{{ 'x' }}{{ endcache }}",
		"{{ cache", "{{ cache 1 }}{{", "{{ cache 1, \"", "{{ cache (", "{{ yield b() content }}{{ end }}",
		"<a>{{ cache 300 }}A{{ endcache }}</a><b>{{ cache 300 }}B{{ endcache }}</b>", // issue 12 item 10
		"<a>{{ cache 300 }}A{{ endcache }}</a>\n<b>{{ cache 300 }}B{{ endcache }}</b>",
		"{{ cache 300, x }}A{{ endcache }}{{ cache 300, nil }}B{{ endcache }}",
		"{{ cache 300, \"sidebar\", n }}<i>{{ s }}</i>{{ endcache }}",
		"{{ cache 0.05, \"f\" }}{{ s }}{{ endcache }}{{ cache nil }}{{ n }}{{ endcache }}",
		"{{ cache \"del\", \"d\" }}{{ s }}{{ endcache }}",
		"{{ cache 300, \"o\" }}a{{ cache 300, \"i\" }}{{ s }}{{ endcache }}b{{ endcache }}",
		"{{ range i, it := items }}{{ cache 300, \"row\", i }}[{{ it }}]{{ endcache }}{{ end }}",
		"{{ range items }}{{ cache 300 }}[{{ . }}]{{ endcache }}{{ end }}", // shares a key by design
		"{{ cache 300, \"same\" }}1{{ endcache }}{{ cache 300, \"same\" }}2{{ endcache }}",
		"A  \n {{- cache 300 -}} \n B \n {{- endcache -}} \n C",
		"{{ v := 7 }}{{ cache 300 }}v={{ v }} {{ unsafe: s }}{{ endcache }}",
		"{{ block b() }}{{ cache 300, \"b\" }}in block{{ endcache }}{{ end }}",
		"{{ try }}{{ cache 300 }}{{ nope.x }}{{ endcache }}{{ catch e }}caught{{ end }}",
		"{{ cache 300, \"r\" }}{{ cache 300, \"r\" }}x{{ endcache }}{{ endcache }}",
		"{{ cache -1 }}x{{ endcache }}", "{{ cache \"abc\" }}x{{ endcache }}", "{{ cache 300, items }}x{{ endcache }}",
	} {
		f.Add(seed, false)
		f.Add(strings.NewReplacer("{{", "[[", "}}", "]]").Replace(seed), true)
	}
	f.Fuzz(func(t *testing.T, src string, custom bool) {
		opts := Options{}
		if custom {
			opts = Options{LeftDelim: "[[", RightDelim: "]]", LeftComment: "<#", RightComment: "#>"}
		}
		out, err := newTags(opts).Rewrite("/f.jet", src)
		if err != nil {
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			return
		}
		assert.Equal(t, strings.Count(src, "\n"), strings.Count(out, "\n"))
		if !strings.Contains(src, "cache") {
			assert.Equal(t, src, out)
		}

		if !templatefuzz.Bounded(src, unboundedJet, "range", 1) {
			return
		}
		render := func(fc *fragment.Cache) (string, error) {
			mem := jet.NewInMemLoader()
			mem.Set("/f.jet", src)
			set, err := New(fc, opts).NewSet("app", mem)
			if err != nil {
				return "", err
			}
			tpl, err := set.GetTemplate("/f.jet")
			if err != nil {
				return "", err
			}
			vars := jet.VarMap{}.Set("n", 7).Set("s", `<s&"'>`).Set("items", []string{"a", "<b>"}).Set("x", nil)
			var buf strings.Builder
			err = tpl.Execute(&buf, vars, nil)
			return buf.String(), err
		}
		templatefuzz.CheckCachedEqualsUncached(t, render, templatefuzz.DefaultKeyShared("f.jet", src, "range"))
	})
}
