package htmltemplate

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// Every backend call of every block, nested ones and those in templates
// called with {{ template }}, gets the context ExecuteContext was given.
func TestExecuteContextReachesEveryBackendCall(t *testing.T) {
	const src = `{{ define "side" }}{{ cache 60 "side" }}<i>side</i>{{ endcache }}{{ end -}}
{{ cache 60 "outer" }}<p>{{ cache 60 "inner" .N }}{{ .N }}{{ endcache }}</p>{{ template "side" }}{{ endcache }}`
	tests := []struct {
		name string
		exec func(tpl *Template, ctx context.Context, w *bytes.Buffer) error
	}{
		{"ExecuteContext", func(tpl *Template, ctx context.Context, w *bytes.Buffer) error {
			return tpl.ExecuteContext(ctx, w, map[string]int{"N": 1})
		}},
		{"ExecuteTemplateContext", func(tpl *Template, ctx context.Context, w *bytes.Buffer) error {
			return tpl.ExecuteTemplateContext(ctx, w, "page", map[string]int{"N": 1})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy := &testkit.CtxSpy{Backend: backends.NewSimple(0)}
			fc := fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{})
			tpl := parseT(t, fc, "page", src, nil)
			for i, req := range []string{"cold", "warm"} {
				var buf bytes.Buffer
				ctx := context.WithValue(context.Background(), testkit.RequestKey{}, req)
				require.NoError(t, tt.exec(tpl, ctx, &buf))
				assert.Equal(t, "<p>1</p><i>side</i>", buf.String(), "render %d", i)
			}
			calls := spy.Calls()
			require.NotEmpty(t, calls)
			for i, got := range calls {
				assert.NotNil(t, got, "backend call %d ran without the request's context", i)
			}
			assert.Equal(t, "warm", calls[len(calls)-1], "the second execution's hit used its own context")
		})
	}
}

// Execute keeps using context.Background(), and an ExecuteContext running
// on one goroutine does not leak its context into an Execute on another.
func TestExecuteWithoutContextUsesBackground(t *testing.T) {
	spy, otherSpy := &testkit.CtxSpy{Backend: backends.NewSimple(0)}, &testkit.CtxSpy{Backend: backends.NewSimple(0)}
	tpl := parseT(t, fragment.New(backends.New(spy, backends.CacheOptions{}), fragment.Options{}),
		"page", `{{ cache 60 "x" .N }}{{ .N }}{{ endcache }}`, nil)
	release := make(chan struct{})
	other := parseT(t, fragment.New(backends.New(otherSpy, backends.CacheOptions{}), fragment.Options{}),
		"other", `{{ cache 60 "w" }}{{ wait }}{{ endcache }}`, map[string]any{"wait": func() string { <-release; return "" }})
	done := make(chan error, 1)
	go func() {
		done <- other.ExecuteContext(context.WithValue(context.Background(), testkit.RequestKey{}, "other"), &bytes.Buffer{}, nil)
	}()
	for i := range 3 {
		out, err := run(tpl, map[string]int{"N": i})
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint(i), out)
	}
	close(release)
	require.NoError(t, <-done)
	require.NotEmpty(t, spy.Calls())
	for i, c := range spy.Calls() {
		assert.Nil(t, c, "Execute's backend call %d", i)
	}
	require.NotEmpty(t, otherSpy.Calls())
	for i, c := range otherSpy.Calls() {
		assert.Equal(t, "other", c, "ExecuteContext's backend call %d", i)
	}
}
