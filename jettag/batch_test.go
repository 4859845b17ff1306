package jettag

import (
	"reflect"
	"strings"
	"testing"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/redistest"
)

// batchFiles have blocks in a loop (whose bodies read the loop
// variables), in an included template, in a block yielded twice, and
// nested two deep.
var batchFiles = map[string]string{
	"/page.jet": `{{ block m(a="z") }}{{ cache 300, "m", a }}<m>{{ a }}</m>{{ endcache }}{{ end }}` +
		`<ul>{{ range i, it := items }}{{ cache 300, "row", it }}<li>{{ it }} {{ i }}</li>{{ endcache }}{{ end }}</ul>` +
		`{{ cache 300, "outer" }}<div>{{ cache 300, "inner", user }}{{ user }}{{ endcache }}` +
		`{{ x := upper(user) }}{{ cache 300, "w", x }}{{ x }}{{ endcache }}</div>{{ endcache }}` +
		`{{ yield m(a="q") }}{{ yield m(a="r") }}{{ include "/part.jet" }}`,
	"/part.jet": `{{ cache 300, "part", user }}<p>{{ user }}</p>{{ endcache }}`,
}

// Tags.Execute on Redis: the page equals the plain Jet page, cold and
// warm; a warm page costs one round trip, a cold one 2 + 1 (two levels of
// blocks, one pipelined store), counted by a go-redis hook.
func TestExecuteBatchedRoundTrips(t *testing.T) {
	store, rt := redistest.CountedRedis(t)
	fc := fragment.New(store, fragment.Options{})
	require.True(t, fc.Batches())
	tags := New(fc, Options{})
	mem := jet.NewInMemLoader()
	for p, src := range batchFiles {
		mem.Set(p, src)
	}
	set, err := tags.NewSet("batch", mem)
	require.NoError(t, err)
	set.AddGlobal("upper", strings.ToUpper)
	tpl, err := set.GetTemplate("/page.jet")
	require.NoError(t, err)
	vars := jet.VarMap{}.Set("items", []string{"a", "b", "c", "d", "e", "f", "g", "h"}).Set("user", "ann").Set("upper", strings.ToUpper)

	want, err := renderPlain(t, batchFiles, "/page.jet", vars, nil)
	require.NoError(t, err)
	require.Contains(t, want, "<li>h 7</li>")

	for i, wantTrips := range []int{3, 1, 1, 1, 1} { // from the fourth, the page's keys are looked up before its one pass
		rt.Take()
		var b strings.Builder
		require.NoError(t, tags.Execute(t.Context(), tpl, &b, vars, nil))
		assert.Equal(t, want, b.String(), "render %d", i)
		n, sent := rt.Take()
		assert.Equal(t, wantTrips, n, "render %d: %v", i, sent)
	}
	assert.EqualValues(t, 8+2+1+1+3+1, fc.Stats().Renders,
		"8 rows, outer twice (once to reach its nested blocks, once for real), inner, w, m defined and yielded twice, part")
}

// A failed body fails Execute, writes nothing and stores nothing.
func TestExecuteBatchedError(t *testing.T) {
	e := newEnv(t, envConfig{fragment: fragment.Options{Batch: fragment.BatchOn}}, map[string]string{
		"/e.jet": `{{ cache 300, "ok" }}ok{{ endcache }}{{ cache 300, "bad" }}{{ f() }}{{ endcache }}`,
	})
	tpl, err := e.set.GetTemplate("/e.jet")
	require.NoError(t, err)
	var b strings.Builder
	err = e.tags.Execute(t.Context(), tpl, &b, jet.VarMap{}.Set("f", jet.Func(func(a jet.Arguments) reflect.Value { a.Panicf("bad"); return reflect.Value{} })), nil)
	require.Error(t, err)
	assert.Empty(t, b.String())
	has, err := e.store.Has(t.Context(), e.fc.Key("ok"))
	require.NoError(t, err)
	assert.False(t, has, "a failed page stores nothing")
}
