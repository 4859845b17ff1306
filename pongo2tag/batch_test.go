package pongo2tag

import (
	"context"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/redistest"
)

// batchPage has blocks in a loop (whose bodies read the loop variables),
// in a macro, under {% with %}, and nested two deep.
const batchPage = `{% macro m(a) %}{% cache 300, "m", a %}<m>{{ a }}</m>{% endcache %}{% endmacro %}` +
	`<ul>{% for it in items %}{% cache 300, "row", it %}<li>{{ it }} {{ forloop.Counter }}</li>{% endcache %}{% endfor %}</ul>` +
	`{% cache 300, "outer" %}<div>{% cache 300, "inner", user %}{{ user }}{% endcache %}` +
	`{% with x=user|upper %}{% cache 300, "w", x %}{{ x }}{% endcache %}{% endwith %}</div>{% endcache %}` +
	`{{ m("q") }}{{ m("r") }}`

// Execute on Redis: the page equals the uncached page, cold and warm, a
// warm page costs one round trip and a cold one 2 + 1 (two levels of
// blocks, one pipelined store), counted by a go-redis hook.
func TestExecuteBatchedRoundTrips(t *testing.T) {
	require.NoError(t, registerOnce())
	store, rt := redistest.CountedRedis(t)
	fc := fragment.New(store, fragment.Options{})
	require.True(t, fc.Batches())
	set := pongo2.NewSet(t.Name(), pongo2.MustNewLocalFileSystemLoader(""))
	tpl, err := set.FromString(batchPage)
	require.NoError(t, err)
	data := pongo2.Context{"items": []string{"a", "b", "c", "d", "e", "f", "g", "h"}, "user": "ann"}

	null := fragment.New(backends.New(backends.NewNull(), backends.CacheOptions{}), fragment.Options{})
	want, err := tpl.Execute(With(context.Background(), null, data))
	require.NoError(t, err)
	require.Contains(t, want, "<li>h 8</li>")

	for i, wantTrips := range []int{3, 1, 1, 1, 1} { // from the fourth, the page's keys are looked up before its one pass
		rt.Take()
		var b strings.Builder
		require.NoError(t, Execute(t.Context(), fc, tpl, With(context.Background(), fc, data), &b))
		assert.Equal(t, want, b.String(), "render %d", i)
		n, sent := rt.Take()
		assert.Equal(t, wantTrips, n, "render %d: %v", i, sent)
	}
	assert.EqualValues(t, 8+2+1+1+2, fc.Stats().Renders,
		"8 rows, outer twice (once to reach its nested blocks, once for real), inner, w, two macro calls")
}

// A failed body fails Execute, writes nothing and stores nothing.
func TestExecuteBatchedError(t *testing.T) {
	require.NoError(t, registerOnce())
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{Batch: fragment.BatchOn})
	set := pongo2.NewSet(t.Name(), pongo2.MustNewLocalFileSystemLoader(""))
	tpl, err := set.FromString(`{% cache 300, "ok" %}ok{% endcache %}{% cache 300, "bad" %}{{ f() }}{% endcache %}`)
	require.NoError(t, err)
	var b strings.Builder
	err = Execute(t.Context(), fc, tpl, With(context.Background(), fc, pongo2.Context{"f": func() (string, error) { return "", assert.AnError }}), &b)
	require.Error(t, err)
	assert.Empty(t, b.String())
	has, err := fc.Store().Has(t.Context(), fc.Key("ok"))
	require.NoError(t, err)
	assert.False(t, has, "a failed page stores nothing")
}
