package pongo2tag

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// tplDir is the loader base directory of the file-based tests.
var tplDir = filepath.Join("testdata", "tpl")

// tplLoader is the name of the loader over tplDir: it starts the path of
// every template under tplDir in keys.
const tplLoader = "tpl"

// tplPath is the key path of a template under tplDir.
func tplPath(name string) string { return tplLoader + "/" + name }

var registerOnce = sync.OnceValue(func() error { return Register(Options{}) })

// newSet registers the tag (once per process) and returns a set loading
// from tplDir through a Loader named tplLoader.
func newSet(t testing.TB) *pongo2.TemplateSet {
	t.Helper()
	require.NoError(t, registerOnce())
	return pongo2.NewSet(t.Name(), newLoader(t, tplLoader, pongo2.MustNewLocalFileSystemLoader(tplDir)))
}

// newLoader wraps inner, failing the test on an error.
func newLoader(t testing.TB, name string, inner pongo2.TemplateLoader) *Loader {
	t.Helper()
	l, err := NewLoader(name, inner)
	require.NoError(t, err)
	return l
}

// loaderSeq makes loader names unique in the process: a name may not be
// reused for another root, and tests make roots with t.TempDir.
var loaderSeq atomic.Int64

// uniqueName returns prefix followed by a number not used before.
func uniqueName(prefix string) string { return prefix + strconv.FormatInt(loaderSeq.Add(1), 10) }

// captureTag parses like the cache tag and keeps the node, so that tests
// and benchmarks can execute one block on its own.
const captureTag = "fragcachetestcapture"

var (
	captureMu       sync.Mutex
	captured        *cacheNode
	registerCapture = sync.OnceValue(func() error {
		return pongo2.RegisterTag(captureTag, func(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
			n, err := parseCache(doc, start, args)
			if err == nil {
				captured = n.(*cacheNode)
			}
			return n, err
		})
	})
)

// parseNode parses {% cache args %}body{% endcache %} and returns its node.
func parseNode(t testing.TB, args, body string) *cacheNode {
	t.Helper()
	require.NoError(t, registerOnce())
	require.NoError(t, registerCapture())
	captureMu.Lock()
	defer captureMu.Unlock()
	_, err := pongo2.FromString("{% " + captureTag + " " + args + " %}" + body + "{% " + EndTagName + " %}")
	require.NoError(t, err)
	return captured
}

// newCache returns a fragment cache over a fresh SimpleCache, and the
// SimpleCache so tests can count entries.
func newCache(opts fragment.Options) (*fragment.Cache, *backends.Simple) {
	simple := backends.NewSimple(0)
	return fragment.New(backends.New(simple, backends.CacheOptions{}), opts), simple
}

// fromString parses src in set, failing the test on a parse error.
func fromString(t testing.TB, set *pongo2.TemplateSet, src string) *pongo2.Template {
	t.Helper()
	tpl, err := set.FromString(src)
	require.NoError(t, err)
	return tpl
}

// render executes tpl with fc bound for this render.
func render(tpl *pongo2.Template, fc *fragment.Cache, data pongo2.Context) (string, error) {
	return tpl.Execute(With(context.Background(), fc, data))
}

// position is where a token starts, 1-based, as pongo2 reports it.
type position struct{ line, col int }

// positionOf finds the first occurrence of what in src.
func positionOf(t testing.TB, src, what string) position {
	t.Helper()
	i := strings.Index(src, what)
	require.GreaterOrEqual(t, i, 0, "%q not in %q", what, src)
	line := strings.Count(src[:i], "\n") + 1
	return position{line: line, col: i - strings.LastIndex(src[:i], "\n")}
}

// lineOf is the line of the first occurrence of what in the file at path.
func lineOf(t testing.TB, path, what string) int {
	t.Helper()
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	return positionOf(t, string(src), what).line
}

// fileAbs is the absolute path of a template under tplDir.
func fileAbs(name string) (string, error) { return filepath.Abs(filepath.Join(tplDir, name)) }

// writeFile writes a template file for a test.
func writeFile(path, src string) error { return os.WriteFile(path, []byte(src), 0o600) }

// pongoError asserts that err is a *pongo2.Error and returns it.
func pongoError(t testing.TB, err error) *pongo2.Error {
	t.Helper()
	var pe *pongo2.Error
	require.ErrorAs(t, err, &pe)
	return pe
}

// brokenBackend is a store that cannot be reached: every call fails with
// errBroken.
type brokenBackend = testkit.Failing

var errBroken = testkit.ErrDown
