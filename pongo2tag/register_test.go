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
	require.NoError(t, Register(Options{BaseDirs: []string{tplDir}}))
	// Still one working tag with the directories of the first call.
	_, err := newSet(t).FromCache("shop/item.html")
	require.NoError(t, err)
}

func TestRegisterRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		msg  string
	}{
		{"empty base directory", Options{BaseDirs: []string{tplDir, ""}}, "BaseDirs[1] is empty"},
		{"nil loader", Options{Loaders: []pongo2.TemplateLoader{nil}}, "Loaders[0] is nil"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Register(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
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

func TestSitePath(t *testing.T) {
	root := t.TempDir()
	tpl := filepath.Join(root, "tpl")
	cases := []struct {
		name     string
		baseDirs []string
		filename string
		want     string // "" when an error is expected
	}{
		{"string template", nil, "<string>", "<string>"},
		{"relative name as given", nil, "shop/a.html", "shop/a.html"},
		{"relative name cleaned", nil, "./shop//x/../a.html", "shop/a.html"},
		{"relative name slash-separated", nil, filepath.Join("shop", "a.html"), "shop/a.html"},
		{"absolute under a base", []string{tpl}, filepath.Join(tpl, "shop", "a.html"), "shop/a.html"},
		{"absolute under the second base", []string{filepath.Join(root, "x"), tpl}, filepath.Join(tpl, "a.html"), "a.html"},
		{"nested bases: the longest wins", []string{tpl, filepath.Join(tpl, "shop")}, filepath.Join(tpl, "shop", "a.html"), "a.html"},
		{"absolute without bases", nil, filepath.Join(tpl, "a.html"), ""},
		{"absolute outside the bases", []string{tpl}, filepath.Join(root, "other", "a.html"), ""},
		{"a sibling sharing the prefix", []string{tpl}, filepath.Join(root, "tplx", "a.html"), ""},
		{"the base itself", []string{tpl}, tpl, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := newConfig(Options{BaseDirs: tc.baseDirs})
			require.NoError(t, err)
			got, err := cfg.sitePath(tc.filename)
			if tc.want == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "Options.BaseDirs")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestOptionsBaseDirs(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	absTpl, err := filepath.Abs(tplDir)
	require.NoError(t, err)
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"relative base made absolute", Options{BaseDirs: []string{tplDir}}, []string{absTpl}},
		{"local loader with a base", Options{Loaders: []pongo2.TemplateLoader{pongo2.MustNewLocalFileSystemLoader(tplDir)}}, []string{absTpl}},
		{"local loader without a base resolves against the working directory",
			Options{Loaders: []pongo2.TemplateLoader{pongo2.MustNewLocalFileSystemLoader("")}}, []string{wd}},
		{"fs.FS loader needs none", Options{Loaders: []pongo2.TemplateLoader{pongo2.NewFSLoader(fstest.MapFS{})}}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := newConfig(tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg.baseDirs)
		})
	}
}

// TestFSLoaderNamesAreRelative: templates from an fs.FS are named by their
// path in it, included ones too, so they need no base directory.
func TestFSLoaderNamesAreRelative(t *testing.T) {
	require.NoError(t, registerOnce())
	bSrc := "\n{% cache 300 %}b{% endcache %}"
	fsys := fstest.MapFS{
		"shop/a.html": {Data: []byte(`{% include "b.html" %}`)}, // FSLoader resolves against the includer's directory
		"shop/b.html": {Data: []byte(bSrc)},
	}
	set := pongo2.NewSet(t.Name(), pongo2.NewFSLoader(fsys))
	fc, _ := newCache(fragment.Options{})
	for _, name := range []string{"shop/a.html", "shop/b.html"} {
		tpl, err := set.FromCache(name)
		require.NoError(t, err)
		_, err = render(tpl, fc, nil)
		require.NoError(t, err)
	}
	ok, err := fc.Store().Has(context.Background(),
		keys.MakeTemplateFragmentKey(keys.FragmentName("shop/b.html", positionOf(t, bSrc, "cache").line)))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, uint64(1), fc.Stats().Hits, "include and FromCache must share the fragment")
}
