package pongo2tag

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

// nestedTree writes the templates of issue 12 item 9 under a new directory:
// root/welcome.html and root/emails/welcome.html, each with an unnamed
// block on line 2, and templates of root that reach emails/welcome.html
// through include and extends.
func nestedTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"welcome.html":         "W\n{% cache 300 %}root welcome {{ n }}{% endcache %}",
		"emails/welcome.html":  "E\n{% cache 300 %}email welcome {{ n }}{% endcache %}{% block b %}{% endblock %}",
		"includer.html":        `{% include "emails/welcome.html" %}`,
		"child.html":           `{% extends "emails/welcome.html" %}{% block b %}!{% endblock %}`,
		"emails/includer.html": `{% include "welcome.html" %}`,
	}
	for name, src := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, writeFile(p, src))
	}
	return root
}

// TestNestedSetsKeepFilesApart: a set loading root and another loading
// root/emails, both in use. Two files never share an unnamed key, and one
// file gets one key whichever way its set loads it.
func TestNestedSetsKeepFilesApart(t *testing.T) {
	root := nestedTree(t)
	web, emails := nestedSets(t, root)
	fc, simple := newCache(fragment.Options{})
	get := func(set *pongo2.TemplateSet, load func(*pongo2.TemplateSet) (*pongo2.Template, error), n int) string {
		t.Helper()
		tpl, err := load(set)
		require.NoError(t, err)
		out, err := render(tpl, fc, pongo2.Context{"n": n})
		require.NoError(t, err)
		return out
	}
	fromCache := func(name string) func(*pongo2.TemplateSet) (*pongo2.Template, error) {
		return func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromCache(name) }
	}
	fromFile := func(name string) func(*pongo2.TemplateSet) (*pongo2.Template, error) {
		return func(s *pongo2.TemplateSet) (*pongo2.Template, error) { return s.FromFile(name) }
	}

	// Two files, same base name, same line: two fragments.
	assert.Equal(t, "W\nroot welcome 1", get(web, fromCache("welcome.html"), 1))
	assert.Equal(t, "E\nemail welcome 2", get(emails, fromCache("welcome.html"), 2))
	assert.Equal(t, "E\nemail welcome 2", get(emails, fromFile("welcome.html"), 3), "FromFile and FromCache share the fragment")
	assert.Equal(t, "E\nemail welcome 2", get(emails, fromFile("includer.html"), 4), "include shares it")
	assert.Equal(t, 2, simple.Len())

	// One file through the outer set: FromFile, FromCache, include and
	// extends give one key.
	before := simple.Len()
	assert.Equal(t, "E\nemail welcome 5", get(web, fromFile("emails/welcome.html"), 5))
	assert.Equal(t, "E\nemail welcome 5", get(web, fromCache("emails/welcome.html"), 6))
	assert.Equal(t, "E\nemail welcome 5", get(web, fromFile("includer.html"), 7))
	assert.Equal(t, "E\nemail welcome 5!", get(web, fromCache("child.html"), 8))
	abs := filepath.Join(root, "emails", "welcome.html")
	assert.Equal(t, "E\nemail welcome 5", get(web, fromFile(abs), 9))
	assert.Equal(t, before+1, simple.Len(), "one file, one key")
}

// nestedSets returns the two sets of the issue, each through its own
// Loader.
func nestedSets(t *testing.T, root string) (web, emails *pongo2.TemplateSet) {
	require.NoError(t, registerOnce())
	web = pongo2.NewSet(t.Name()+"-web", newLoader(t, uniqueName("web"), pongo2.MustNewLocalFileSystemLoader(root)))
	emails = pongo2.NewSet(t.Name()+"-emails", newLoader(t, uniqueName("emails"), pongo2.MustNewLocalFileSystemLoader(filepath.Join(root, "emails"))))
	return web, emails
}

// TestImportedMacroBlocksUseTheMacroFile: a block in a macro is keyed by
// the file that defines the macro, whichever template imports it.
func TestImportedMacroBlocksUseTheMacroFile(t *testing.T) {
	require.NoError(t, registerOnce())
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "lib"), 0o755))
	require.NoError(t, writeFile(filepath.Join(root, "lib", "macros.html"), "{% macro m() export %}\n{% cache 300 %}macro{% endcache %}{% endmacro %}"))
	require.NoError(t, writeFile(filepath.Join(root, "a.html"), `{% import "lib/macros.html" m %}{{ m() }}`))
	require.NoError(t, writeFile(filepath.Join(root, "b.html"), "\n\n"+`{% import "lib/macros.html" m %}{{ m() }}`))
	loader := newLoader(t, uniqueName("macros"), pongo2.MustNewLocalFileSystemLoader(root))
	set := pongo2.NewSet(t.Name(), loader)
	fc, simple := newCache(fragment.Options{})
	for _, name := range []string{"a.html", "b.html"} {
		tpl, err := set.FromFile(name)
		require.NoError(t, err)
		out, err := render(tpl, fc, nil)
		require.NoError(t, err)
		assert.Equal(t, "\nmacro", out[strings.LastIndex(out, "\n"):])
	}
	path, err := loader.Path("lib/macros.html")
	require.NoError(t, err)
	ok, err := fc.Store().Has(context.Background(), keys.MakeTemplateFragmentKey(keys.FragmentName(path, 2)))
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, 1, simple.Len())
}
