package htmltemplate

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/keys"
)

func TestStampedeRendersOnce(t *testing.T) {
	const n = 32
	errBody := errors.New("body failed")
	cases := []struct {
		name string
		fail error
	}{
		{"successful render is shared", nil},
		{"failed render is shared, not stored, retried", errBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			g := &testkit.Gate{Waiting: func() uint64 { return fc.Stats().Waiting }, Want: n - 1, Fail: tc.fail}
			g.Armed.Store(true)
			src := `<p>{{ cache 300 "hot" }}{{ gate }}{{ endcache }}</p>`
			tpl := parseT(t, fc, "page.html", src, template.FuncMap{"gate": g.Call})

			outs := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = run(tpl, nil)
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * deadline):
				t.Fatal("renders did not return: deadlock")
			}

			assert.Equal(t, int64(1), g.Calls.Load(), "body evaluations")
			st := fc.Stats()
			assert.Equal(t, uint64(1), st.Renders)
			assert.Equal(t, uint64(n-1), st.Waits)
			for i := range n {
				if tc.fail == nil {
					require.NoError(t, errs[i])
					assert.Equal(t, "<p>body</p>", outs[i])
					continue
				}
				require.ErrorIs(t, errs[i], errBody, "goroutine %d", i)
			}
			if tc.fail == nil {
				assert.Equal(t, 1, simple.Len())
				return
			}
			assert.Zero(t, simple.Len(), "a failed render was stored")

			g.Armed.Store(false)
			g.Fail = nil // no goroutine uses g now
			out, err := run(tpl, nil)
			require.NoError(t, err)
			assert.Equal(t, "<p>body</p>", out)
			ok, err := fc.Store().Has(context.Background(), keys.MakeTemplateFragmentKey("hot"))
			require.NoError(t, err)
			assert.True(t, ok, "the retry was not stored")
		})
	}
}

// TestConcurrentFirstExecutions runs the first executions of several
// templates of one set at once, so the race detector sees the context
// check, html/template's lazy escaping and the hoisted bodies together.
func TestConcurrentFirstExecutions(t *testing.T) {
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "set", `{{ define "part" }}{{ cache 1 "part" . }}<b>{{ . }}</b>{{ endcache }}{{ end }}`+
		`{{ define "a" }}<a>{{ template "part" "a" }}{{ cache 1 "a" }}{{ template "part" "x" }}{{ endcache }}</a>{{ end }}`+
		`{{ define "b" }}<b>{{ template "part" "b" }}</b>{{ end }}`+
		`{{ define "c" }}<c>{{ cache 1 "c" }}{{ template "part" "c" }}{{ endcache }}</c>{{ end }}`, nil)
	want := map[string]string{"a": "<a><b>a</b><b>x</b></a>", "b": "<b><b>b</b></b>", "c": "<c><b>c</b></c>"}
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		name := string(rune('a' + i%3))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf stringWriter
			if err := tpl.ExecuteTemplate(&buf, name, nil); err != nil {
				errs <- err
				return
			}
			if buf.s != want[name] {
				errs <- errors.New(name + ": " + buf.s)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

type stringWriter struct{ s string }

func (w *stringWriter) Write(p []byte) (int, error) {
	w.s += string(p)
	return len(p), nil
}

// TestBoundBlocksNeverSeeAnotherExecutionsData: blocks that read their dot
// from the record each execution keeps under its goroutine see their own
// execution's data, with executions on many goroutines at once and
// executions nested in a template function of another, on hits and
// misses alike: one user's fragment never lands in another user's page.
func TestBoundBlocksNeverSeeAnotherExecutionsData(t *testing.T) {
	const goroutines, rounds = 8, 40
	var tpl *Template
	funcs := template.FuncMap{
		// inner executes the set's "inner" template for another user in
		// the middle of the page.
		"inner": func(user string) (template.HTML, error) {
			var b strings.Builder
			err := tpl.ExecuteTemplate(&b, "inner", map[string]any{"User": user})
			return template.HTML(b.String()), err
		},
	}
	src := `{{ define "inner" }}{{ cache 300 "in" .User }}<i>{{ .User }}</i>{{ endcache }}{{ end }}` +
		`{{ cache 300 "page" .User }}[{{ .User }}{{ inner (printf "%s-nested" .User) }}` +
		`{{ cache 300 "deep" .User }}({{ .User }}){{ endcache }}]{{ endcache }}` +
		`{{ inner .User }}{{ cache 300 "after" .User }}<{{ .User }}>{{ endcache }}`
	fc, _ := newCache(fragment.Options{})
	tpl = parseT(t, fc, "page.html", src, funcs)
	want := func(u string) string {
		return "[" + u + "<i>" + u + "-nested</i>(" + u + ")]<i>" + u + "</i>&lt;" + u + ">"
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*rounds)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				user := fmt.Sprintf("u%d-%d", g, r%5) // repeats: hits and misses
				var b strings.Builder
				ctx := context.Background()
				if err := tpl.ExecuteContext(ctx, &b, map[string]any{"User": user}); err != nil {
					errs <- err
					return
				}
				if got := b.String(); got != want(user) {
					errs <- fmt.Errorf("user %s got %q", user, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, b := range tpl.set.blocks {
		assert.True(t, b.bound, "block at %s is bound", b.site)
	}
}
