package pongo2tag

import (
	"context"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// With a set bound by Bind, WithContext gives every block of one render,
// nested ones included, the request's context.
func TestWithContextReachesEveryBackendCall(t *testing.T) {
	const src = `{% cache 60, "outer" %}<p>{% cache 60, "inner", n %}{{ n }}{% endcache %}</p>{% endcache %}`
	spy := &testkit.CtxSpy{Backend: backends.NewSimple(0)}
	fc := fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{})
	set := newSet(t)
	Bind(set, fc)
	tpl := fromString(t, set, src)
	for i, req := range []string{"cold", "warm"} {
		out, err := tpl.Execute(WithContext(pongo2.Context{"n": 1}, context.WithValue(context.Background(), testkit.RequestKey{}, req)))
		require.NoError(t, err)
		assert.Equal(t, "<p>1</p>", out, "render %d", i)
	}
	calls := spy.Calls()
	require.NotEmpty(t, calls)
	for i, got := range calls {
		assert.NotNil(t, got, "backend call %d ran without the request's context", i)
	}
	assert.Equal(t, "warm", calls[len(calls)-1], "the second render's hit used its own context")

	// WithContext takes precedence over With's context too, and a nil ctx
	// is context.Background().
	spy.Reset()
	_, err := tpl.Execute(WithContext(With(context.Background(), fc, pongo2.Context{"n": 2}), context.WithValue(context.Background(), testkit.RequestKey{}, "mine")))
	require.NoError(t, err)
	for i, got := range spy.Calls() {
		assert.Equal(t, "mine", got, "backend call %d", i)
	}
	spy.Reset()
	_, err = tpl.Execute(WithContext(pongo2.Context{"n": 3}, nil))
	require.NoError(t, err)
	for i, got := range spy.Calls() {
		assert.Nil(t, got, "backend call %d", i)
	}
}
