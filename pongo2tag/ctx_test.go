package pongo2tag

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

type requestKey struct{}

// ctxSpy records, for every Get and Set, the requestKey value of the
// context the backend was called with.
type ctxSpy struct {
	backends.Backend
	mu   sync.Mutex
	seen []any
}

func (s *ctxSpy) note(ctx context.Context) {
	s.mu.Lock()
	s.seen = append(s.seen, ctx.Value(requestKey{}))
	s.mu.Unlock()
}

func (s *ctxSpy) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.note(ctx)
	return s.Backend.Get(ctx, key)
}

func (s *ctxSpy) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.note(ctx)
	return s.Backend.Set(ctx, key, value, ttl)
}

func (s *ctxSpy) calls() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]any(nil), s.seen...)
}

// With a set bound by Bind, WithContext gives every block of one render,
// nested ones included, the request's context.
func TestWithContextReachesEveryBackendCall(t *testing.T) {
	const src = `{% cache 60, "outer" %}<p>{% cache 60, "inner", n %}{{ n }}{% endcache %}</p>{% endcache %}`
	spy := &ctxSpy{Backend: backends.NewSimple(0)}
	fc := fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{})
	set := newSet(t)
	Bind(set, fc)
	tpl := fromString(t, set, src)
	for i, req := range []string{"cold", "warm"} {
		out, err := tpl.Execute(WithContext(pongo2.Context{"n": 1}, context.WithValue(context.Background(), requestKey{}, req)))
		require.NoError(t, err)
		assert.Equal(t, "<p>1</p>", out, "render %d", i)
	}
	calls := spy.calls()
	require.NotEmpty(t, calls)
	for i, got := range calls {
		assert.NotNil(t, got, "backend call %d ran without the request's context", i)
	}
	assert.Equal(t, "warm", calls[len(calls)-1], "the second render's hit used its own context")

	// WithContext takes precedence over With's context too, and a nil ctx
	// is context.Background().
	spy.seen = nil
	_, err := tpl.Execute(WithContext(With(context.Background(), fc, pongo2.Context{"n": 2}), context.WithValue(context.Background(), requestKey{}, "mine")))
	require.NoError(t, err)
	for i, got := range spy.calls() {
		assert.Equal(t, "mine", got, "backend call %d", i)
	}
	spy.seen = nil
	_, err = tpl.Execute(WithContext(pongo2.Context{"n": 3}, nil))
	require.NoError(t, err)
	for i, got := range spy.calls() {
		assert.Nil(t, got, "backend call %d", i)
	}
}
