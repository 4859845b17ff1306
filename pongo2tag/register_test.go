package pongo2tag

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

func TestRegisterIsIdempotent(t *testing.T) {
	require.NoError(t, registerOnce())
	require.NoError(t, Register(Options{}))
	require.NoError(t, Register(Options{}))
	// Still one working tag.
	_, err := newSet(t).FromCache("shop/item.html")
	require.NoError(t, err)
}

// foreignTagEnv makes TestRegisterReportsAForeignCacheTag act as its own
// child process: pongo2 cannot unregister a tag, so the foreign "cache" tag
// lives in a fresh process.
const foreignTagEnv = "PONGO2TAG_FOREIGN_TAG_CHILD"

func TestRegisterReportsAForeignCacheTag(t *testing.T) {
	if os.Getenv(foreignTagEnv) == "1" {
		require.NoError(t, pongo2.RegisterTag(TagName, func(*pongo2.Parser, *pongo2.Token, *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
			return nil, nil
		}))
		err := Register(Options{})
		require.ErrorIs(t, err, ErrTagExists)
		require.Contains(t, err.Error(), "already registered")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRegisterReportsAForeignCacheTag$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), foreignTagEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child process:\n%s", out)
	assert.Contains(t, string(out), "--- PASS: TestRegisterReportsAForeignCacheTag")
}

func TestNewLoaderRejectsBadNames(t *testing.T) {
	local := pongo2.MustNewLocalFileSystemLoader(tplDir)
	for _, name := range []string{"", ".", "..", "a/b", "a b", "é", `a\b`, "a:b"} {
		_, err := NewLoader(name, local)
		require.ErrorIs(t, err, ErrLoaderName, "%q", name)
		assert.Contains(t, err.Error(), "letters")
	}
	_, err := NewLoader("ok", nil)
	require.Error(t, err)
}

// TestLoaderNameNamesOneDirectory: a name given again for another directory
// would give two files one path, so NewLoader refuses it; for the same
// directory it is fine (sets made per test or per start). Loaders of
// relative names have no directory to compare.
func TestLoaderNameNamesOneDirectory(t *testing.T) {
	name := uniqueName("one")
	_, err := NewLoader(name, pongo2.MustNewLocalFileSystemLoader(tplDir))
	require.NoError(t, err)
	abs, err := filepath.Abs(tplDir)
	require.NoError(t, err)
	_, err = NewLoader(name, pongo2.MustNewLocalFileSystemLoader(abs))
	require.NoError(t, err, "the same directory, spelled differently")

	for _, other := range []pongo2.TemplateLoader{
		pongo2.MustNewLocalFileSystemLoader(t.TempDir()),
		pongo2.NewFSLoader(fstest.MapFS{}),
	} {
		_, err = NewLoader(name, other)
		require.ErrorIs(t, err, ErrLoaderName)
		assert.Contains(t, err.Error(), abs)
	}

	fsName := uniqueName("fs")
	for range 2 { // an app making its loader again at every start
		_, err = NewLoader(fsName, pongo2.NewFSLoader(fstest.MapFS{}))
		require.NoError(t, err)
	}
	_, err = NewLoader(fsName, pongo2.MustNewLocalFileSystemLoader(tplDir))
	require.ErrorIs(t, err, ErrLoaderName)
}

// TestLoaderPath: the path of a template is the loader's name and the
// template's path relative to the loader's root, whichever way the name was
// spelled; nothing outside the root has one.
func TestLoaderPath(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	absTpl, err := filepath.Abs(tplDir)
	require.NoError(t, err)
	local := newLoader(t, tplLoader, pongo2.MustNewLocalFileSystemLoader(tplDir))
	cwd := newLoader(t, uniqueName("cwd"), pongo2.MustNewLocalFileSystemLoader(""))
	fsys := newLoader(t, uniqueName("fs"), pongo2.NewFSLoader(fstest.MapFS{}))
	cases := []struct {
		name   string
		loader *Loader
		tpl    string
		want   string // "" when an error is expected
	}{
		{"relative name", local, "shop/a.html", "shop/a.html"},
		{"relative name cleaned", local, "./shop//x/../a.html", "shop/a.html"},
		{"absolute name under the root", local, filepath.Join(absTpl, "shop", "a.html"), "shop/a.html"},
		{"absolute name outside the root", local, filepath.Join(wd, "a.html"), ""},
		{"relative name leaving the root", local, "../a.html", ""},
		{"the root itself", local, absTpl, ""},
		{"a sibling sharing the root's prefix", local, absTpl + "x/a.html", ""},
		{"loader without a base: the working directory", cwd, "testdata/tpl/a.html", "testdata/tpl/a.html"},
		{"fs.FS loader", fsys, "shop/a.html", "shop/a.html"},
		{"fs.FS loader, cleaned", fsys, "shop/../a.html", "a.html"},
		{"fs.FS loader, leaving the root", fsys, "../a.html", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.loader.Path(tc.tpl)
			if tc.want == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "outside the root")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.loader.Name()+"/"+tc.want, got)
		})
	}
}

// TestFSLoaderPaths: templates from an fs.FS are named by their path in it,
// included ones too.
func TestFSLoaderPaths(t *testing.T) {
	require.NoError(t, registerOnce())
	bSrc := "\n{% cache 300 %}b{% endcache %}"
	fsys := fstest.MapFS{
		"shop/a.html": {Data: []byte(`{% include "b.html" %}`)}, // FSLoader resolves against the includer's directory
		"shop/b.html": {Data: []byte(bSrc)},
	}
	loader := newLoader(t, uniqueName("fs"), pongo2.NewFSLoader(fsys))
	set := pongo2.NewSet(t.Name(), loader)
	fc, _ := newCache(fragment.Options{})
	for _, name := range []string{"shop/a.html", "shop/b.html"} {
		tpl, err := set.FromCache(name)
		require.NoError(t, err)
		_, err = render(tpl, fc, nil)
		require.NoError(t, err)
	}
	path, err := loader.Path("shop/b.html")
	require.NoError(t, err)
	ok, err := fc.Store().Has(context.Background(),
		keys.MakeTemplateFragmentKey(keys.FragmentName(path, positionOf(t, bSrc, "cache").line)))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint64(1), fc.Stats().Hits, "include and FromCache must share the fragment")
}
