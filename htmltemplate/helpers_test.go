package htmltemplate

import (
	"bytes"
	"html/template"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"text/template/parse"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// deadline bounds every wait in these tests, so a deadlock fails instead of
// hanging.
const deadline = 10 * time.Second

// newCache returns a fragment cache over a fresh SimpleCache, and the
// SimpleCache so tests can count entries.
func newCache(opts fragment.Options) (*fragment.Cache, *backends.Simple) {
	simple := backends.NewSimple(0)
	return fragment.New(backends.New(simple, backends.CacheOptions{}), opts), simple
}

// parseT parses src as a template named name bound to fc, with funcs.
func parseT(t testing.TB, fc *fragment.Cache, name, src string, funcs template.FuncMap) *Template {
	t.Helper()
	tpl, err := New(name, fc).Funcs(funcs).Parse(src)
	require.NoError(t, err)
	return tpl
}

// run executes tpl into a string.
func run(tpl *Template, data any) (string, error) {
	var buf bytes.Buffer
	err := tpl.Execute(&buf, data)
	return buf.String(), err
}

// tagRE matches cache and endcache tags, keeping their trim markers.
var tagRE = regexp.MustCompile(`\{\{(-?)\s*(?:cache\s[^}]*?|endcache)\s*?(-?)\}\}`)

// uncached parses src with plain html/template after replacing every cache
// and endcache tag by an empty comment with the same trim markers: the
// output our blocks must reproduce byte for byte.
func uncached(t testing.TB, name, src string, funcs template.FuncMap) *template.Template {
	t.Helper()
	plain := tagRE.ReplaceAllStringFunc(src, func(tag string) string {
		m := tagRE.FindStringSubmatch(tag)
		comment := "{{/* */"
		if m[1] != "" {
			comment = "{{- /* */"
		}
		if m[2] != "" {
			return comment + " -}}"
		}
		return comment + "}}"
	})
	tpl, err := template.New(name).Funcs(funcs).Parse(plain)
	require.NoError(t, err, plain)
	return tpl
}

func runPlain(t testing.TB, tpl *template.Template, data any) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, tpl.Execute(&buf, data))
	return buf.String()
}

// position is where text/template places a node: a 1-based line and the
// byte offset within that line (parse.Tree.ErrorContext).
type position struct{ line, col int }

// positionOf finds the n-th (0-based) occurrence of what in src.
func positionOf(t testing.TB, src, what string, n int) position {
	t.Helper()
	i := -1
	for range n + 1 {
		j := strings.Index(src[i+1:], what)
		require.GreaterOrEqual(t, j, 0, "%q not in %q", what, src)
		i += 1 + j
	}
	return position{line: strings.Count(src[:i], "\n") + 1, col: i - strings.LastIndex(src[:i], "\n") - 1}
}

// siteError asserts that err holds a *fragment.SiteError and returns it.
func siteError(t testing.TB, err error) *fragment.SiteError {
	t.Helper()
	var se *fragment.SiteError
	require.ErrorAs(t, err, &se)
	return se
}

// counter is a template function counting its calls.
type counter struct{ n atomic.Int64 }

func (c *counter) inc() int64 { return c.n.Add(1) }

// brokenBackend is a store that cannot be reached: every call fails with
// errBroken.
type brokenBackend = testkit.Failing

var errBroken = testkit.ErrDown

// parseTrees parses src as text/template's parser would for a Template, with
// cache and endcache defined.
func parseTrees(name, src string) (map[string]*parse.Tree, error) {
	return parse.Parse(name, src, "", "", map[string]any{"cache": placeholder, "endcache": placeholder})
}
