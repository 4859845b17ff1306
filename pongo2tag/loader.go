package pongo2tag

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/internal/loadername"
)

// ErrLoaderName is returned by NewLoader for a name that is not usable as a
// loader name, or that already names a loader with another root.
var ErrLoaderName = errors.New("pongo2tag: bad loader name")

// Loader is a pongo2.TemplateLoader that loads through another loader and
// tells the cache tag which loader loaded each template, so that an unnamed
// block's key names one file (see the package documentation for the rule).
// Make it with NewLoader and give it to pongo2.NewSet in place of the loader
// it wraps.
type Loader struct {
	name  string
	inner pongo2.TemplateLoader
	root  string // the directory absolute names are relative to; "" if inner resolves to relative names
}

// loaderProbe is a template name no loader is asked to open: only resolved.
const loaderProbe = "fragcache-root-probe"

// NewLoader returns a Loader named name that loads templates through inner.
// The name starts every unnamed block's path ("web" → "web/shop/a.html"),
// so that templates of different loaders never share a key: give each
// root its own name. The name is one or more ASCII letters, digits, '.',
// '_' or '-' (not "." or ".."). For loaders that resolve names to absolute
// paths (pongo2's LocalFilesystemLoader) the root is a directory, and
// NewLoader refuses a name already given to a loader of another directory
// in this process (an error wrapping ErrLoaderName; tests that make
// loaders over temporary directories give each its own name). Loaders that
// keep names relative (FSLoader, HttpFilesystemLoader) have no root to
// compare, so keeping their names apart is up to the caller.
func NewLoader(name string, inner pongo2.TemplateLoader) (*Loader, error) {
	if inner == nil {
		return nil, errors.New("pongo2tag: NewLoader needs a loader to wrap")
	}
	if err := loadername.Check(name, ErrLoaderName); err != nil {
		return nil, err
	}
	l := &Loader{name: name, inner: inner}
	if abs := inner.Abs("", loaderProbe); filepath.IsAbs(abs) {
		l.root = filepath.Dir(abs)
	}
	if err := claimLoaderName(l); err != nil {
		return nil, err
	}
	return l, nil
}

// sameRoot reports whether two loaders of one name may serve different
// files: only directory loaders have a root to compare. A loader of
// relative names (an fs.FS) has none that can be compared: apps make a new
// one over the same embed.FS at every start.
func (l *Loader) sameRoot(o *Loader) bool {
	return l.root == o.root
}

// where describes the loader's root for error messages.
func (l *Loader) where() string {
	if l.root != "" {
		return l.root
	}
	return fmt.Sprintf("a %T", l.inner)
}

// Name returns the loader's name.
func (l *Loader) Name() string { return l.name }

// Abs resolves name as the wrapped loader does.
func (l *Loader) Abs(base, name string) string { return l.inner.Abs(base, name) }

// Get returns the template at p (a name Abs resolved) as the wrapped
// loader does, with a tag appended that records its path for the cache tag.
// The tag renders nothing and adds no line, so positions in errors and the
// output are unchanged (except that pongo2's LStripBlocks option would strip
// blanks at the very end of the template). A template ending in "{" gets
// it from {% templatetag openbrace %}, so that the brace and the tag do
// not lex as "{{".
func (l *Loader) Get(p string) (io.Reader, error) {
	r, err := l.inner.Get(p)
	if err != nil {
		return nil, err
	}
	src, err := io.ReadAll(r)
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
	if err != nil {
		return nil, err
	}
	payload, perr := l.path(p)
	if perr != nil {
		payload = "!" + perr.Error() // reported by the cache tag, if the template has one
	}
	var b bytes.Buffer
	b.Grow(len(src) + len(openBrace) + len(pathTagName) + 12 + base64.RawURLEncoding.EncodedLen(len(payload)))
	// pongo2's lexer stops at a 0x01 byte (its EOF constant is 1) and
	// ignores the rest, so the tag goes before the first one.
	cut := bytes.IndexByte(src, 1)
	if cut < 0 {
		cut = len(src)
	}
	head, tail := src[:cut], src[cut:]
	if bytes.HasSuffix(head, []byte("{")) {
		// A last "{" and the appended "{%" would lex as "{{": write the
		// brace with pongo2's templatetag instead.
		b.Write(head[:len(head)-1])
		b.WriteString(openBrace)
	} else {
		b.Write(head)
	}
	b.WriteString("{% " + pathTagName + ` "`)
	b.WriteString(base64.RawURLEncoding.EncodeToString([]byte(payload)))
	b.WriteString(`" %}`)
	b.Write(tail)
	return &b, nil
}

// Path returns the path unnamed blocks of the template name use in their
// keys, as when a set whose first loader is l loads name with FromFile or
// FromCache: the loader's name, "/", and the template's slash-separated
// path relative to the loader's root. App code passes it to
// keys.FragmentName to rebuild an unnamed block's key.
func (l *Loader) Path(name string) (string, error) { return l.path(l.inner.Abs("", name)) }

// path is the key path of a template the inner loader resolved to p.
func (l *Loader) path(p string) (string, error) {
	var rel string
	if l.root != "" && filepath.IsAbs(p) {
		rel = ".."
		if r, err := filepath.Rel(l.root, p); err == nil {
			rel = filepath.ToSlash(r)
		}
	} else {
		// A loader of relative names (fs.FS, http.FileSystem) names a
		// template by its path in the file system, where a leading slash
		// names the same file.
		rel = strings.TrimPrefix(path.Clean(filepath.ToSlash(p)), "/")
	}
	if rel == "." || rel == "" || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("template %q is outside the root (%s) of pongo2tag loader %q, so it has no path for unnamed blocks", p, l.where(), l.name)
	}
	return l.name + "/" + rel, nil
}

// pathTagName is the tag Loader.Get appends to every template.
const pathTagName = "fragcachepath"

// openBrace renders "{".
const openBrace = "{% templatetag openbrace %}"

// pathNode is the appended tag: it renders nothing.
type pathNode struct{}

func (pathNode) Execute(*pongo2.ExecutionContext, pongo2.TemplateWriter) *pongo2.Error { return nil }

// parsePath is the pongo2.TagParser of the appended tag. It only checks that
// the tag is where Loader.Get puts it; the cache tag reads it (pathOf).
func parsePath(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	if args.MatchType(pongo2.TokenString) == nil || args.Remaining() > 0 || doc.Remaining() > trailing(doc) {
		e := doc.Error("{% "+pathTagName+" %} is reserved: pongo2tag.Loader appends it to every template it loads", start)
		e.Sender = sender
		return nil, e
	}
	return pathNode{}, nil
}

// trailing returns 1 if the document ends in what pongo2's lexer makes of
// a 0x01 byte, which it takes for the end of the input: a text token
// starting with it, after the tag Loader.Get put before it; else 0.
func trailing(doc *pongo2.Parser) int {
	if t := doc.Get(doc.Count() - 1); t != nil && t.Typ == pongo2.TokenHTML && strings.HasPrefix(t.Val, "\x01") {
		return 1
	}
	return 0
}

// templatePath returns the path the unnamed blocks of doc's template use:
// what Loader.Get recorded at the end of the template, "<string>" for
// templates made by FromString or FromBytes, and an error for a template
// loaded through another loader.
func templatePath(doc *pongo2.Parser, start *pongo2.Token) (string, error) {
	n := doc.Count() - trailing(doc)
	if n >= 4 && isSymbol(doc.Get(n-4), "{%") && isSymbol(doc.Get(n-1), "%}") {
		if t := doc.Get(n - 3); t.Typ == pongo2.TokenIdentifier && t.Val == pathTagName {
			if s := doc.Get(n - 2); s.Typ == pongo2.TokenString {
				b, err := base64.RawURLEncoding.DecodeString(s.Val)
				switch {
				case err != nil || len(b) == 0:
					return "", fmt.Errorf("malformed {%% %s %%} tag at the end of the template", pathTagName)
				case b[0] == '!':
					return "", errors.New(string(b[1:]))
				}
				return string(b), nil
			}
		}
	}
	if start.Filename == stringTemplate {
		return stringTemplate, nil
	}
	return "", fmt.Errorf("template %q was not loaded through a pongo2tag.Loader, so it has no path for unnamed blocks; "+
		"wrap the set's loader with pongo2tag.NewLoader", start.Filename)
}

// stringTemplate is the name pongo2 gives every FromString/FromBytes template.
const stringTemplate = "<string>"
