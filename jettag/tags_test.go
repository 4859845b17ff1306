package jettag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

type item struct{ Name string }
type user struct {
	ID   int
	Name string
}

func pageVars() jet.VarMap {
	items := []item{{"a<1>"}, {"b&2"}, {"c\"3"}}
	return jet.VarMap{}.
		Set("user", user{ID: 42, Name: "<ann> & 'bob'"}).
		Set("items", items).
		Set("show", true).
		Set("year", 2026)
}

// layoutFiles exercise extends, block, import, yield with content and
// include, each with cache blocks inside.
var layoutFiles = map[string]string{
	"/layout.jet": "<html>{{ block header() }}H{{ end }}|{{ block main() }}{{ end }}|" +
		"{{ cache 300, \"footer\" }}<f>{{ year }}</f>{{ endcache }}</html>",
	"/macros.jet": "{{ block card(title) }}<card>{{ title }}{{ cache 300, \"card\", title }}[{{ yield content }}]{{ endcache }}</card>{{ end }}",
	"/part.jet":   "{{- cache 300, \"part\" -}}\n<p>{{ user.Name }}</p>\n{{- endcache -}}",
	"/page.jet": "{{ extends \"layout.jet\" }}\n{{ import \"macros.jet\" }}\n" +
		"{{ block main() }}{{ cache 300, \"main\", user.ID }}<m>{{ user.Name }}{{ include \"/part.jet\" }}" +
		"{{ yield card(title=\"t<\") content }}{{ cache 60 }}inner {{ user.Name }}{{ endcache }}{{ end }}</m>{{ endcache }}{{ end }}",
}

func TestCachedOutputEqualsUncached(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		path  string
	}{
		{"escaping", map[string]string{"/t.jet": "<p>{{ cache 300 }}<b>{{ user.Name }}</b>{{ unsafe: \"<i>raw</i>\" }}{{ endcache }}</p>"}, "/t.jet"},
		{"trim markers", map[string]string{"/t.jet": "A  \n {{- cache 300 -}} \n B \n {{- endcache -}} \n C\n{{ cache 1 -}}\n D {{- endcache }}\n"}, "/t.jet"},
		{"range with vary_on on the loop variable", map[string]string{"/t.jet": "<ul>{{ range i, it := items }}{{ cache 300, \"item\", i }}<li>{{ i }} {{ it.Name }} {{ user.Name }}</li>{{ endcache }}{{ end }}</ul>"}, "/t.jet"},
		{"if around blocks", map[string]string{"/t.jet": "{{ if show }}{{ cache 300 }}yes {{ user.ID }}{{ endcache }}{{ else }}{{ cache 300, \"no\" }}no{{ endcache }}{{ end }}"}, "/t.jet"},
		{"nested", map[string]string{"/t.jet": "{{ cache 300, \"outer\" }}<o>{{ cache 300, \"inner\", user.ID }}<i>{{ user.Name }}</i>{{ endcache }}{{ range items }}{{ cache 5 }}-{{ endcache }}{{ end }}</o>{{ endcache }}"}, "/t.jet"},
		{"outer variables and dot", map[string]string{"/t.jet": "{{ v := 7 }}{{ cache 300 }}v={{ v }} dot={{ .X }}{{ endcache }}"}, "/t.jet"},
		{"multi-line opener", map[string]string{"/t.jet": "{{ cache 300,\n  \"multi\",\n  user.ID }}\nbody {{ user.ID }}\n{{ endcache\n}}"}, "/t.jet"},
		{"parenthesised arguments", map[string]string{"/t.jet": "{{ cache(300, \"p\") }}p{{ endcache }}"}, "/t.jet"},
		{"extends, import, yield content, include", layoutFiles, "/page.jet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := map[string]int{"X": 3}
			want, err := renderPlain(t, tt.files, tt.path, pageVars(), data)
			require.NoError(t, err)

			e := newEnv(t, envConfig{}, tt.files)
			miss, err := e.render(tt.path, pageVars(), data)
			require.NoError(t, err)
			assert.Equal(t, want, miss, "first render (misses)")
			assert.NotZero(t, e.fc.Stats().Renders)

			hit, err := e.render(tt.path, pageVars(), data)
			require.NoError(t, err)
			assert.Equal(t, want, hit, "second render (hits)")
			assert.NotZero(t, e.fc.Stats().Hits)

			null := newEnv(t, envConfig{backend: backends.NewNull()}, tt.files)
			never, err := null.render(tt.path, pageVars(), data)
			require.NoError(t, err)
			assert.Equal(t, want, never, "never cached")
		})
	}
}

func TestHitServesStoredFragment(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ cache 300, \"n\" }}{{ .N }}{{ endcache }}|{{ .N }}"})
	first, err := e.render("/t.jet", nil, map[string]int{"N": 1})
	require.NoError(t, err)
	second, err := e.render("/t.jet", nil, map[string]int{"N": 2})
	require.NoError(t, err)
	assert.Equal(t, "1|1", first)
	assert.Equal(t, "1|2", second, "the block is served from the cache, the rest renders")
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name string
		path string // as given to GetTemplate or Parse
		src  string
		key  string
	}{
		{"named with vary_on", "/views/page.jet", "{{ cache 300, \"sidebar\", user.ID, user.Name }}BODY{{ endcache }}",
			keys.MakeTemplateFragmentKey("sidebar", "42", "<ann> & 'bob'")},
		{"named by an expression", "/views/page.jet", "{{ cache 300, \"side\" + \"bar\" }}BODY{{ endcache }}",
			keys.MakeTemplateFragmentKey("sidebar")},
		{"unnamed: loader name, path without its slash, line", "/views/page.jet", "\n\n  {{ cache 300 }}BODY{{ endcache }}",
			keys.MakeTemplateFragmentKey(keys.FragmentName(testLoader+"/views/page.jet", 3))},
		{"unnamed on a trimmed line", "/views/page.jet", "x\n{{- cache 300 -}}BODY{{ endcache }}",
			keys.MakeTemplateFragmentKey(keys.FragmentName(testLoader+"/views/page.jet", 2))},
		{"nil name is the default name", "/views/page.jet", "{{ cache 300, nil, user.ID }}BODY{{ endcache }}",
			keys.MakeTemplateFragmentKey(keys.FragmentName(testLoader+"/views/page.jet", 1), "42")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{}, map[string]string{tt.path: tt.src})
			_, err := e.render(tt.path, pageVars(), nil)
			require.NoError(t, err)
			v, err := e.store.GetValue(context.Background(), tt.key)
			require.NoError(t, err)
			b, ok := v.Bytes()
			require.True(t, ok, "fragment stored under %q", tt.key)
			assert.Equal(t, "BODY", string(b))
		})
	}
}

// TestTwoUnnamedBlocksOnOneLineAreRefused: they would share Flask's
// path+line key, so the second would serve the first's fragment.
func TestTwoUnnamedBlocksOnOneLineAreRefused(t *testing.T) {
	src := "<a>{{ cache 300 }}A{{ endcache }}</a><b>{{ cache 300 }}B{{ endcache }}</b>"
	e := newEnv(t, envConfig{}, map[string]string{"/views/p.jet": src})
	out, err := e.render("/views/p.jet", nil, nil)
	require.ErrorIs(t, err, ErrSameLine, "rendered %q", out)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, ParseError{Path: testLoader + "/views/p.jet", Line: 1, Col: strings.LastIndex(src, "{{ cache") + 1, Err: pe.Err}, *pe)
	assert.ErrorContains(t, err, "views/p.jet:1:4")
	assert.ErrorContains(t, err, "name one of them")

	_, err = e.tags.Parse(e.set, "/views/q.jet", src)
	require.ErrorIs(t, err, ErrSameLine)

	// Named, either one, they render their own bodies.
	for _, named := range []string{
		strings.Replace(src, "cache 300", `cache 300, "a"`, 1),
		strings.Replace(src, "{{ cache 300 }}B", `{{ cache 300, "b" }}B`, 1),
	} {
		e := newEnv(t, envConfig{}, map[string]string{"/views/p.jet": named})
		for range 2 {
			out, err := e.render("/views/p.jet", nil, nil)
			require.NoError(t, err)
			assert.Equal(t, "<a>A</a><b>B</b>", out)
		}
	}
}

func TestParseUsesTheSameKeysAsTheLoader(t *testing.T) {
	src := "x\n{{ cache 300 }}BODY{{ endcache }}"
	for _, p := range []string{"views/p.jet", "/views/p.jet"} {
		e := newEnv(t, envConfig{}, nil)
		tpl, err := e.tags.Parse(e.set, p, src)
		require.NoError(t, err)
		var out bytes.Buffer
		require.NoError(t, tpl.Execute(&out, nil, nil))
		assert.Equal(t, "x\nBODY", out.String())
		has, err := e.store.Has(context.Background(), keys.MakeTemplateFragmentKey(keys.FragmentName("views/p.jet", 2)))
		require.NoError(t, err)
		assert.True(t, has, p)
	}
}

func TestParseReportsRewriteErrors(t *testing.T) {
	e := newEnv(t, envConfig{}, nil)
	_, err := e.tags.Parse(e.set, "p.jet", "{{ cache 300 }}")
	assert.ErrorIs(t, err, ErrMissingEndcache)
}

func TestLoaderReportsRewriteErrors(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/views/bad.jet": "ok\n{{ endcache }}", "/views/child.jet": "{{ extends \"bad.jet\" }}"})
	_, err := e.set.GetTemplate("/views/bad.jet")
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, ParseError{Path: testLoader + "/views/bad.jet", Line: 2, Col: 1, Err: ErrStrayEndcache}, *pe)

	// Jet flattens errors from templates reached by extends into text.
	_, err = e.set.GetTemplate("/views/child.jet")
	assert.ErrorContains(t, err, pe.Error())
}

func TestTimeouts(t *testing.T) {
	const defaultTTL = 7 * time.Second
	const storeTTL = 11 * time.Second
	tests := []struct {
		name     string
		timeout  string // the tag's timeout argument
		ttl      any    // the "ttl" variable
		fragment fragment.Options
		want     time.Duration
	}{
		{"seconds", "300", nil, fragment.Options{}, 300 * time.Second},
		{"float seconds", "0.05", nil, fragment.Options{}, 50 * time.Millisecond},
		{"zero never expires, as in Flask", "0", nil, fragment.Options{}, backends.NoExpiry},
		{"variable int", "ttl", 20, fragment.Options{}, 20 * time.Second},
		{"variable duration", "ttl", 1500 * time.Millisecond, fragment.Options{}, 1500 * time.Millisecond},
		{"nil is the fragment default", "nil", nil, fragment.Options{DefaultTimeout: defaultTTL}, defaultTTL},
		{"nil variable is the fragment default", "ttl", nil, fragment.Options{DefaultTimeout: defaultTTL}, defaultTTL},
		{"nil without a fragment default is the store default", "nil", nil, fragment.Options{}, storeTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecordingBackend()
			e := newEnv(t, envConfig{backend: rec, store: backends.CacheOptions{DefaultTimeout: storeTTL}, fragment: tt.fragment},
				map[string]string{"/t.jet": "{{ cache " + tt.timeout + ", \"n\" }}x{{ endcache }}"})
			_, err := e.render("/t.jet", jet.VarMap{}.Set("ttl", tt.ttl), nil)
			require.NoError(t, err)
			got, ok := rec.ttl(keys.MakeTemplateFragmentKey("n"))
			require.True(t, ok, "stored")
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestShortTimeoutExpires(t *testing.T) {
	var renders atomic.Int32
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ cache 0.05, \"n\" }}{{ count() }}{{ endcache }}"})
	vars := jet.VarMap{}.SetFunc("count", func(jet.Arguments) reflect.Value {
		return reflect.ValueOf(renders.Add(1))
	})
	first, err := e.render("/t.jet", vars, nil)
	require.NoError(t, err)
	require.Equal(t, "1", first)
	assert.Eventually(t, func() bool {
		out, err := e.render("/t.jet", vars, nil)
		return err == nil && out != first
	}, 5*time.Second, 10*time.Millisecond, "the fragment expires and renders again")
}

func TestDelDeletesAndDoesNotStore(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ cache t, \"n\" }}{{ .N }}{{ endcache }}"})
	ctx := context.Background()
	key := keys.MakeTemplateFragmentKey("n")

	out, err := e.render("/t.jet", jet.VarMap{}.Set("t", 300), map[string]int{"N": 1})
	require.NoError(t, err)
	require.Equal(t, "1", out)

	out, err = e.render("/t.jet", jet.VarMap{}.Set("t", "del"), map[string]int{"N": 2})
	require.NoError(t, err)
	assert.Equal(t, "2", out, "del renders the body")
	has, err := e.store.Has(ctx, key)
	require.NoError(t, err)
	assert.False(t, has, "del deletes and does not store")
	assert.Equal(t, uint64(1), e.fc.Stats().DelBlocks)

	out, err = e.render("/t.jet", jet.VarMap{}.Set("t", 300), map[string]int{"N": 3})
	require.NoError(t, err)
	assert.Equal(t, "3", out, "the next render misses")
}

func TestVaryOn(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{
		"/t.jet":    "{{ cache 300, \"u\", u.ID }}{{ u.Name }}@{{ .N }}{{ endcache }}",
		"/loop.jet": "{{ range i, u := users }}[{{ cache 300, \"u\", u.ID }}{{ u.Name }}@{{ .N }}{{ endcache }}]{{ end }}",
	})
	render := func(path string, vars jet.VarMap, n int) string {
		out, err := e.render(path, vars, map[string]int{"N": n})
		require.NoError(t, err)
		return out
	}
	ann, bob := user{1, "ann"}, user{2, "bob"}
	assert.Equal(t, "ann@1", render("/t.jet", jet.VarMap{}.Set("u", ann), 1))
	assert.Equal(t, "bob@2", render("/t.jet", jet.VarMap{}.Set("u", bob), 2), "another value, another fragment")
	assert.Equal(t, "ann@1", render("/t.jet", jet.VarMap{}.Set("u", ann), 3), "same value, same fragment")

	// The loop variable varies the key per row: rows reuse the fragments
	// cached above, and a new value renders.
	assert.Equal(t, "[ann@1][bob@2]", render("/loop.jet", jet.VarMap{}.Set("users", []user{ann, bob}), 9))
	carl := user{3, "carl"}
	assert.Equal(t, "[carl@4][bob@2]", render("/loop.jet", jet.VarMap{}.Set("users", []user{carl, bob}), 4))
}

func TestNestedFragmentsAreCachedSeparately(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{
		"/t.jet": "{{ cache 300, \"outer\", .Outer }}o{{ .N }}({{ cache 300, \"inner\" }}i{{ .N }}{{ endcache }}){{ endcache }}",
	})
	render := func(outer, n int) string {
		out, err := e.render("/t.jet", nil, map[string]int{"Outer": outer, "N": n})
		require.NoError(t, err)
		return out
	}
	assert.Equal(t, "o1(i1)", render(1, 1))
	assert.Equal(t, "o1(i1)", render(1, 2), "outer hit")
	assert.Equal(t, "o3(i1)", render(2, 3), "outer miss reuses the inner fragment")
}

func TestExecutionErrorsNameTheBlock(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want error
	}{
		{"timeout not a number", "x\n  {{ cache \"abc\" }}y{{ endcache }}", fragment.ErrTimeout},
		{"negative timeout", "x\n  {{ cache -1 }}y{{ endcache }}", fragment.ErrTimeout},
		{"timeout of the wrong type", "x\n  {{ cache items }}y{{ endcache }}", fragment.ErrTimeout},
		{"name of no text form", "x\n  {{ cache 300, items }}y{{ endcache }}", fragment.ErrKeyValue},
		{"vary_on of no text form", "x\n  {{ cache 300, \"n\", user }}y{{ endcache }}", fragment.ErrKeyValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envConfig{}, map[string]string{"/views/e.jet": tt.src})
			_, err := e.render("/views/e.jet", pageVars(), nil)
			require.ErrorIs(t, err, tt.want)
			var se *fragment.SiteError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, testLoader+"/views/e.jet:2:3", se.Site.String())
			assert.Contains(t, err.Error(), "views/e.jet:2:3: cache: ")
		})
	}
}

func TestRecursiveBlockIsAnError(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/self.jet": "{{ cache 300, \"self\" }}[{{ include \"/self.jet\" }}]{{ endcache }}"})
	_, err := e.render("/self.jet", nil, nil)
	require.ErrorIs(t, err, fragment.ErrRecursive)
	assert.ErrorContains(t, err, "self.jet:1:1: cache: ")
}

func TestJetErrorsKeepTheirLines(t *testing.T) {
	tests := []struct {
		name string
		src  string
		at   string // the text on the failing line
	}{
		{"parse error after a block", "{{ cache 300 }}\na\n{{ endcache }}\nb\n{{ 1 + }}", "{{ 1 + }}"},
		{"parse error after a multi-line opener", "{{ cache 300,\n\"n\" }}a{{ endcache\n}}\n{{ if }}", "{{ if }}"},
		{"parse error inside a block", "{{- cache 300 -}}\n\n{{ 1 + }}{{ endcache }}", "{{ 1 + }}"},
		{"runtime error after a block", "{{ cache 300 }}\n\n{{ endcache }}\n{{ .Missing.Field }}", "{{ .Missing"},
		{"runtime error inside a block", "{{ cache 300 }}\n\n{{ nothing() }}{{ endcache }}", "{{ nothing"},
		{"runtime error inside nested blocks", "{{ cache 300 }}\n{{ cache 1 }}\n\n{{ nothing() }}{{ endcache }}{{ endcache }}", "{{ nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"/l.jet": tt.src}
			line := 1 + strings.Count(tt.src[:strings.Index(tt.src, tt.at)], "\n")
			_, want := renderPlain(t, files, "/l.jet", nil, nil)
			require.Error(t, want)
			require.Regexp(t, regexp.MustCompile(`/l\.jet"?:`+strconv.Itoa(line)+`\b`), want.Error(), "Jet's own report")

			e := newEnv(t, envConfig{}, files)
			_, err := e.render("/l.jet", nil, nil)
			assert.EqualError(t, err, want.Error())
		})
	}
}

func TestBodyErrorStoresNothing(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ cache 300, \"n\" }}{{ if fail }}{{ nothing() }}{{ end }}ok{{ endcache }}"})
	_, err := e.render("/t.jet", jet.VarMap{}.Set("fail", true), nil)
	require.Error(t, err)
	has, err := e.store.Has(context.Background(), keys.MakeTemplateFragmentKey("n"))
	require.NoError(t, err)
	assert.False(t, has)

	out, err := e.render("/t.jet", jet.VarMap{}.Set("fail", false), nil)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
}

func TestBodyErrorInsideTryIsCaught(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "a{{ try }}b{{ cache 300 }}c{{ nothing() }}{{ endcache }}{{ catch }}C{{ end }}d"})
	out, err := e.render("/t.jet", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "aCd", out, "try discards the partial output and the writer is restored")
	has, err := e.store.Has(context.Background(), keys.MakeTemplateFragmentKey(keys.FragmentName(testLoader+"/t.jet", 1)))
	require.NoError(t, err)
	assert.False(t, has)
}

func TestBackendErrors(t *testing.T) {
	files := map[string]string{"/t.jet": "<p>{{ cache 300, \"n\" }}<b>{{ user.Name }}</b>{{ endcache }}</p>"}
	want, err := renderPlain(t, files, "/t.jet", pageVars(), nil)
	require.NoError(t, err)

	t.Run("fail open", func(t *testing.T) {
		e := newEnv(t, envConfig{backend: errBackend{}}, files)
		for range 2 {
			out, err := e.render("/t.jet", pageVars(), nil)
			require.NoError(t, err)
			assert.Equal(t, want, out)
		}
		assert.Equal(t, uint64(2), e.fc.Stats().BackendErrors)
	})
	t.Run("strict", func(t *testing.T) {
		e := newEnv(t, envConfig{backend: errBackend{}, fragment: fragment.Options{Strict: true}}, files)
		_, err := e.render("/t.jet", pageVars(), nil)
		require.ErrorIs(t, err, errDown)
		assert.ErrorContains(t, err, "t.jet:1:4: cache: ")
		assert.Equal(t, uint64(1), e.fc.Stats().BackendErrors)
	})
}

type ctxKey struct{}

func TestContextVariable(t *testing.T) {
	rec := newRecordingBackend()
	e := newEnv(t, envConfig{backend: rec}, map[string]string{"/t.jet": "{{ cache 300 }}x{{ endcache }}"})

	seen := func(vars jet.VarMap) []any {
		rec.mu.Lock()
		rec.ctxs = nil
		rec.mu.Unlock()
		_, err := e.render("/t.jet", vars, nil)
		require.NoError(t, err)
		var values []any
		for _, ctx := range rec.ctxs {
			values = append(values, ctx.Value(ctxKey{}))
		}
		require.NotEmpty(t, values)
		return values
	}
	ctx := context.WithValue(context.Background(), ctxKey{}, "mine")
	for _, v := range seen(WithContext(nil, ctx)) {
		assert.Equal(t, "mine", v, "the execution's context reaches the backend")
	}
	for _, v := range seen(jet.VarMap{}.Set(ContextVar, ctx)) {
		assert.Equal(t, "mine", v, "a context.Context set under ContextVar directly reaches the backend")
	}
	for _, v := range seen(nil) {
		assert.Nil(t, v, "without one, context.Background()")
	}
}

func TestCanceledContextStopsWaiting(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ cache 300, \"slow\" }}{{ slow() }}{{ endcache }}"})
	vars := func() jet.VarMap {
		return jet.VarMap{}.SetFunc("slow", func(jet.Arguments) reflect.Value {
			close(started)
			<-release
			return reflect.ValueOf("done")
		})
	}
	leader := make(chan error, 1)
	go func() { _, err := e.render("/t.jet", vars(), nil); leader <- err }()
	<-started

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.render("/t.jet", WithContext(vars(), ctx), nil)
	assert.ErrorIs(t, err, context.Canceled, "a waiter gives up when its context ends")
	close(release)
	require.NoError(t, <-leader)
}

func TestCustomDelimiters(t *testing.T) {
	opts := Options{LeftDelim: "[[", RightDelim: "]]", LeftComment: "<#", RightComment: "#>"}
	src := "<# [[ cache ]] #>{{ cache 1 }}[[- cache 300, \"d\" -]]\n <b>[[ user.Name ]]</b> [[ \"]]\" ]]\n[[- endcache -]]!"
	e := newEnv(t, envConfig{tags: opts}, map[string]string{"/d.jet": src})
	out, err := e.render("/d.jet", pageVars(), nil)
	require.NoError(t, err)

	plain := jet.NewInMemLoader()
	plain.Set("/d.jet", strings.NewReplacer("[[- cache 300, \"d\" -]]", "[[- \"\" -]]", "[[- endcache -]]", "[[- \"\" -]]").Replace(src))
	tpl, err := jet.NewSet(plain, jet.WithDelims("[[", "]]"), jet.WithCommentDelims("<#", "#>")).GetTemplate("/d.jet")
	require.NoError(t, err)
	var want bytes.Buffer
	require.NoError(t, tpl.Execute(&want, pageVars(), nil))
	assert.Equal(t, want.String(), out)

	has, err := e.store.Has(context.Background(), keys.MakeTemplateFragmentKey("d"))
	require.NoError(t, err)
	assert.True(t, has)
}

func TestBindChecksDelimiters(t *testing.T) {
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	custom := Options{LeftDelim: "[[", RightDelim: "]]"}
	tests := []struct {
		name string
		opts Options
		jet  []jet.Option
		ok   bool
	}{
		{"defaults", Options{}, nil, true},
		{"same custom delimiters", custom, []jet.Option{jet.WithDelims("[[", "]]")}, true},
		{"set has custom delimiters, options do not", Options{}, []jet.Option{jet.WithDelims("[[", "]]")}, false},
		{"options have custom delimiters, set does not", custom, nil, false},
		{"comment delimiters differ", Options{}, []jet.Option{jet.WithCommentDelims("<#", "#>")}, false},
		{"same comment delimiters", Options{LeftComment: "<#", RightComment: "#>"}, []jet.Option{jet.WithCommentDelims("<#", "#>")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags := New(fc, tt.opts)
			ld, err := tags.Loader("app", jet.NewInMemLoader())
			require.NoError(t, err)
			err = tags.Bind(jet.NewSet(ld, tt.jet...))
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrDelims)
			}
		})
	}

	// NewSet applies the Options' delimiters itself, and catches
	// contradicting jet options.
	_, err := New(fc, custom).NewSet("app", jet.NewInMemLoader())
	assert.NoError(t, err)
	_, err = New(fc, custom).NewSet("app", jet.NewInMemLoader(), jet.WithDelims("<%", "%>"))
	assert.ErrorIs(t, err, ErrDelims)
}

func TestUnknownSiteIsAnError(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "{{ __fragcache(99, 300) }}"})
	_, err := e.render("/t.jet", nil, nil)
	assert.ErrorContains(t, err, "unknown site")
}

func TestDevelopmentModeReusesSites(t *testing.T) {
	e := newEnv(t, envConfig{jet: []jet.Option{jet.InDevelopmentMode()}},
		map[string]string{"/t.jet": "{{ cache 300 }}a\n{{ cache 1 }}b{{ endcache }}{{ endcache }}"})
	for range 3 {
		out, err := e.render("/t.jet", nil, nil)
		require.NoError(t, err)
		assert.Equal(t, "a\nb", out)
	}
	assert.Len(t, *e.tags.sites.Load(), 2, "each parse finds the same sites")
}

func TestConcurrentLoadAndRender(t *testing.T) {
	files := map[string]string{
		"/c.jet": "{{ range i, it := items }}{{ cache 300, \"c\", i, g }}<{{ it.Name }} {{ g }}>{{ cache 300, \"in\", g }}[{{ user.Name }}]{{ endcache }}{{ endcache }}{{ end }}",
	}
	for p, src := range layoutFiles {
		files[p] = src
	}
	want := map[string][]string{}
	for _, p := range []string{"/c.jet", "/page.jet"} {
		for g := range 5 {
			out, err := renderPlain(t, files, p, pageVars().Set("g", g), nil)
			require.NoError(t, err)
			want[p] = append(want[p], out)
		}
	}

	e := newEnv(t, envConfig{}, files) // templates are parsed by the goroutines below, concurrently
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for n := range 50 {
		wg.Go(func() {
			for r := range 20 {
				p, g := []string{"/c.jet", "/page.jet"}[(n+r)%2], (n*r)%5
				out, err := e.render(p, pageVars().Set("g", g), nil)
				if err == nil && out != want[p][g] {
					err = fmt.Errorf("%s g=%d: got %q, want %q", p, g, out, want[p][g])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.NotZero(t, e.fc.Stats().Hits)
}

func TestArgumentErrorsComeFromJet(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/t.jet": "\n{{ cache 300, undefinedVar }}x{{ endcache }}"})
	_, err := e.render("/t.jet", nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefinedVar")
	assert.False(t, errors.Is(err, fragment.ErrKeyValue))
}

// failingLoader has every template but cannot open or read it.
type failingLoader struct{ open, read error }

func (failingLoader) Exists(string) bool { return true }

func (l failingLoader) Open(string) (io.ReadCloser, error) {
	if l.open != nil {
		return nil, l.open
	}
	return io.NopCloser(iotest.ErrReader(l.read)), nil
}

func TestLoaderPassesOnLoadErrors(t *testing.T) {
	errOpen, errRead := errors.New("open failed"), errors.New("read failed")
	for _, l := range []failingLoader{{open: errOpen}, {read: errRead}} {
		tags := newTags(Options{})
		set, err := tags.NewSet("app", l)
		require.NoError(t, err)
		_, err = set.GetTemplate("/x.jet")
		if l.open != nil {
			assert.ErrorIs(t, err, errOpen)
		} else {
			assert.ErrorIs(t, err, errRead)
			assert.ErrorContains(t, err, "/x.jet")
		}
	}
}

// TestNilNameOnASharedLineIsAnError: a name that evaluates to nil falls
// back to the template-and-line key, which another block on the same line
// may have too; that block would then be served this one's fragment.
func TestNilNameOnASharedLineIsAnError(t *testing.T) {
	src := "{{ cache 300, x }}A{{ endcache }}{{ cache 300, y }}B{{ endcache }}"
	vars := func(x, y any) jet.VarMap { return jet.VarMap{}.Set("x", x).Set("y", y) }
	e := newEnv(t, envConfig{}, map[string]string{"/p.jet": src, "/q.jet": "{{ cache 300, x }}A{{ endcache }}\n{{ cache 300, y }}B{{ endcache }}"})
	out, err := e.render("/p.jet", vars("a", "b"), nil)
	require.NoError(t, err)
	assert.Equal(t, "AB", out)

	for _, v := range []jet.VarMap{vars(nil, "b"), vars("a", nil), vars(nil, nil)} {
		e := newEnv(t, envConfig{}, map[string]string{"/p.jet": src})
		out, err := e.render("/p.jet", v, nil)
		require.ErrorIs(t, err, ErrSameLine, "rendered %q", out)
		assert.ErrorContains(t, err, "evaluated to nil")
	}

	// Next to an unnamed block too.
	e = newEnv(t, envConfig{}, map[string]string{"/u.jet": "{{ cache 300 }}A{{ endcache }}{{ cache 300, y }}B{{ endcache }}",
		"/q.jet": "{{ cache 300, x }}A{{ endcache }}\n{{ cache 300, y }}B{{ endcache }}",
		"/n.jet": "{{ cache 300, x }}A{{ endcache }}{{ cache 300, \"b\" }}B{{ endcache }}"})
	_, err = e.render("/u.jet", vars(nil, nil), nil)
	require.ErrorIs(t, err, ErrSameLine)

	// Alone on its line, or next to blocks named by literals, a nil name is
	// the default name.
	out, err = e.render("/q.jet", vars(nil, nil), nil)
	require.NoError(t, err)
	assert.Equal(t, "A\nB", out)
	out, err = e.render("/n.jet", vars(nil, nil), nil)
	require.NoError(t, err)
	assert.Equal(t, "AB", out)
}

// execute reuses one vary_on buffer per pooled execution: nested blocks
// and the blocks after them must each key on their own values only.
func TestVaryOnNestedAndInSequence(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{
		"/t.jet": "{{ cache 300, \"outer\", .Outer }}o{{ .N }}({{ cache 300, \"inner\", .Inner, .Outer }}i{{ .N }}{{ endcache }}){{ endcache }}" +
			"|{{ cache 300, \"after\", .Outer }}a{{ .N }}{{ endcache }}|{{ cache 300, \"plain\" }}p{{ .N }}{{ endcache }}",
	})
	render := func(outer, inner, n int) string {
		out, err := e.render("/t.jet", nil, map[string]int{"Outer": outer, "Inner": inner, "N": n})
		require.NoError(t, err)
		return out
	}
	assert.Equal(t, "o1(i1)|a1|p1", render(1, 1, 1))
	assert.Equal(t, "o1(i1)|a1|p1", render(1, 1, 2), "every block hits: no key kept values of another call")
	assert.Equal(t, "o3(i3)|a3|p1", render(2, 1, 3), "the outer value varies outer, inner and after")
	assert.Equal(t, "o3(i3)|a3|p1", render(2, 5, 4), "outer hit: the inner block does not run")
}
