package makecheck

import (
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// root is the module's root, relative to this package.
const root = "../.."

// makeVar returns the value of the Makefile variable name (a plain
// one-line "NAME = value" assignment).
func makeVar(t *testing.T, makefile []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `\s*=\s*(.*)$`).FindSubmatch(makefile)
	require.NotNil(t, m, "Makefile assigns %s", name)
	return strings.TrimSpace(string(m[1]))
}

// TestNoRaceTestsRunInMakeTest: make test runs the tests of files built
// only without the race detector in a pass of its own, choosing them by
// the hand-kept NORACE_PKGS and NORACE_TESTS. go test passes silently when
// -run matches nothing, so a test added to or renamed in such a file, or a
// new such file, would silently never run: every Test function of every
// //go:build !race test file in the module must be in a package of
// NORACE_PKGS and matched by NORACE_TESTS, and every package there must
// hold such a file.
func TestNoRaceTestsRunInMakeTest(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	pkgs := strings.Fields(makeVar(t, makefile, "NORACE_PKGS"))
	run, err := regexp.Compile(makeVar(t, makefile, "NORACE_TESTS"))
	require.NoError(t, err, "NORACE_TESTS is go test's -run pattern")

	found := map[string][]string{} // package dir ("./x") → its !race tests
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); path != root && err == nil {
				return filepath.SkipDir // another module: not in make test's ./...
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if !buildsOnlyWithoutRace(f) {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		dir := "./" + filepath.ToSlash(rel)
		found[dir] = append(found[dir], path)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Test") {
				continue
			}
			assert.True(t, run.MatchString(fn.Name.Name), "%s: %s is not matched by NORACE_TESTS", path, fn.Name.Name)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, found, "no //go:build !race test file found: is root right?")
	for dir, files := range found {
		assert.Contains(t, pkgs, dir, "NORACE_PKGS lacks %s (%s)", dir, files)
	}
	for _, dir := range pkgs {
		assert.Contains(t, slices.Collect(maps.Keys(found)), dir, "NORACE_PKGS names %s, which holds no //go:build !race test file", dir)
	}
}

// buildsOnlyWithoutRace reports whether f's build constraint excludes it
// from builds with the race detector.
func buildsOnlyWithoutRace(f *ast.File) bool {
	for _, g := range f.Comments {
		if g.Pos() >= f.Package {
			break
		}
		for _, c := range g.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			with := expr.Eval(func(tag string) bool { return tag == "race" || tag == "unix" || tag == "linux" || tag == "amd64" })
			without := expr.Eval(func(tag string) bool { return tag == "unix" || tag == "linux" || tag == "amd64" })
			return without && !with
		}
	}
	return false
}
