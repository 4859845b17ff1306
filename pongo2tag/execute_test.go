package pongo2tag

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// simpleFC is a fragment cache over an in-process SimpleCache.
func simpleFC() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
}

// On an in-process backend, Execute costs what rendering straight into w
// costs: pongo2's ExecuteWriter, which it used to call, allocates a buffer
// of 1.3× the template's source on every call (26 KB on the 10-block page
// of internal/enginebench), whatever the page's size. Here the source is
// 64 KB, most of it a comment, and the page a few bytes.
func TestExecuteInProcessAllocatesLikeUnbuffered(t *testing.T) {
	fc := simpleFC()
	set := newSet(t)
	Bind(set, fc)
	pad := "{% comment %}" + strings.Repeat("<p>static text</p>\n", (64<<10)/19) + "{% endcomment %}"
	tpl := fromString(t, set, pad+`<h1>{% cache 300, "f", user %}<b>{{ user }}</b>{% endcache %}</h1>`)
	data := pongo2.Context{"user": "ann"}
	var b bytes.Buffer
	require.NoError(t, tpl.ExecuteWriterUnbuffered(With(context.Background(), fc, data), &b))
	want := b.String()

	// perPage is what one render allocates, the page's own bytes excluded:
	// render gets a writer that has room for the page.
	const runs = 50
	perPage := func(render func()) uint64 {
		render()
		return testkit.Allocated(func() {
			for range runs {
				render()
			}
		}) / runs
	}
	ref := bytes.NewBuffer(make([]byte, 0, len(want)))
	unbuffered := perPage(func() {
		ref.Reset()
		require.NoError(t, tpl.ExecuteWriterUnbuffered(With(context.Background(), fc, data), ref))
	})
	b.Reset()
	toBuffer := perPage(func() {
		b.Reset()
		require.NoError(t, Execute(context.Background(), fc, tpl, data, &b))
	})
	assert.Equal(t, want, b.String())
	var sb strings.Builder
	toBuilder := perPage(func() {
		sb.Reset()
		sb.Grow(len(want))
		require.NoError(t, Execute(context.Background(), fc, tpl, data, &sb))
	}) - uint64(sb.Cap()) // the Builder's own page (Reset drops it)
	assert.Equal(t, want, sb.String())
	const slack = 1 << 10
	assert.LessOrEqual(t, toBuffer, unbuffered+slack, "into a bytes.Buffer: Execute %d B per page, ExecuteWriterUnbuffered %d B", toBuffer, unbuffered)
	assert.LessOrEqual(t, toBuilder, unbuffered+slack, "into a strings.Builder: Execute %d B per page, ExecuteWriterUnbuffered %d B", toBuilder, unbuffered)
}

// A render that fails leaves w as it was on an in-process backend too:
// a bytes.Buffer keeps what it held before, another writer gets nothing.
func TestExecuteInProcessError(t *testing.T) {
	fc := simpleFC()
	set := newSet(t)
	Bind(set, fc)
	tpl := fromString(t, set, `{% cache 300, "ok" %}ok{% endcache %}{% cache 300, "bad" %}{{ f() }}{% endcache %}`)
	data := pongo2.Context{"f": func() (string, error) { return "", assert.AnError }}

	b := bytes.NewBufferString("before|")
	require.Error(t, Execute(t.Context(), fc, tpl, data, b))
	assert.Equal(t, "before|", b.String())

	var sb strings.Builder
	sb.WriteString("before|")
	require.Error(t, Execute(t.Context(), fc, tpl, data, &sb))
	assert.Equal(t, "before|", sb.String())

	has, err := fc.Store().Has(t.Context(), fc.Key("bad"))
	require.NoError(t, err)
	assert.False(t, has, "a failed block stores nothing")

	// A page that renders after one that failed is whole.
	b.Reset()
	require.NoError(t, Execute(t.Context(), fc, tpl, pongo2.Context{"f": func() string { return "fine" }}, b))
	assert.Equal(t, "okfine", b.String())
}

// Execute binds its cache and context for the render: a set without Bind
// works, every block (nested, and included with `only` passing
// _fc on) uses Execute's ctx, and Execute's cache and ctx take
// precedence over Bind's, over a With binding in data and over a
// ContextVar in data.
func TestExecuteBindsCacheAndContext(t *testing.T) {
	other, otherStore := newCache(fragment.Options{})
	const src = `{% cache 60, "outer" %}<p>{% cache 60, "inner", n %}{{ n }}{% endcache %}</p>{% endcache %}` +
		`{% include "shop/passon.html" with item=n %}` // it includes shop/item.html with only, passing _fc on
	req := func(name string) context.Context {
		return context.WithValue(context.Background(), testkit.RequestKey{}, name)
	}
	bindings := []struct {
		name string
		bind func(*pongo2.TemplateSet)
		data func(n int) pongo2.Context
	}{
		{"no Bind", func(*pongo2.TemplateSet) {}, func(n int) pongo2.Context { return pongo2.Context{"n": n} }},
		{"Bind to another cache", func(s *pongo2.TemplateSet) { Bind(s, other) }, func(n int) pongo2.Context { return pongo2.Context{"n": n} }},
		{"With another cache in data", func(*pongo2.TemplateSet) {}, func(n int) pongo2.Context {
			return With(req("with"), other, pongo2.Context{"n": n})
		}},
		{"ContextVar in data", func(*pongo2.TemplateSet) {}, func(n int) pongo2.Context {
			return WithContext(pongo2.Context{"n": n}, req("stale"))
		}},
	}
	for i, tc := range bindings {
		t.Run(tc.name, func(t *testing.T) {
			spy := &testkit.CtxSpy{Backend: backends.NewSimple(0)}
			fc := fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{})
			set := newSet(t)
			tc.bind(set)
			tpl := fromString(t, set, src)
			for j, name := range []string{"cold", "warm"} {
				spy.Reset()
				var b bytes.Buffer
				data := tc.data(i)
				require.NoError(t, Execute(req(name), fc, tpl, data, &b), "render %d", j)
				assert.Equal(t, fmt.Sprintf("<p>%d</p><div>\n<b>%d</b>\n</div>", i, i), strings.TrimSpace(b.String()), "render %d", j)
				calls := spy.Calls()
				require.NotEmpty(t, calls, "render %d: no backend call went to Execute's cache", j)
				for k, got := range calls {
					assert.Equal(t, name, got, "render %d, backend call %d", j, k)
				}
				assert.Len(t, data, len(tc.data(i)), "data is not modified")
			}
			assert.Zero(t, otherStore.Len(), "a fragment went to the other cache")
		})
	}
}

// The pooled context Execute fills holds one render's data only: a key of
// one render is not in the next.
func TestExecuteContextHoldsOneRender(t *testing.T) {
	fc := simpleFC()
	tpl := fromString(t, newSet(t), `{% cache 60, "x", a, b %}[{{ a }}|{{ b }}]{% endcache %}`)
	for _, tc := range []struct {
		data pongo2.Context
		want string
	}{
		{pongo2.Context{"a": "1", "b": "2"}, "[1|2]"},
		{pongo2.Context{"a": "3"}, "[3|]"},
		{nil, "[|]"},
		{pongo2.Context{"b": "4"}, "[|4]"},
	} {
		var b bytes.Buffer
		require.NoError(t, Execute(context.Background(), fc, tpl, tc.data, &b))
		assert.Equal(t, tc.want, b.String(), "data %v", tc.data)
	}
}
