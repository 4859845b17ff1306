package htmltemplate

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/template/parse"

	"github.com/fragcache/fragcache/fragment"
)

// Template is an html/template Template whose templates may contain cache
// blocks. Its methods behave as html/template's do; the Parse methods also
// hoist every cache block out of the templates they add, and Execute and
// ExecuteTemplate check, on the first execution of each template, that its
// blocks are in HTML element content. All templates associated with one
// another (through New, Parse, Lookup...) share one fragment cache.
//
// The underlying *template.Template is deliberately not exposed: executing
// it directly would skip the context check.
type Template struct {
	tmpl *template.Template
	set  *set
}

// set is what all associated templates share: the cache, the hoisted
// blocks and the context check's state.
type set struct {
	fc   *fragment.Cache
	root *template.Template // any template of the namespace, for Clone and AddParseTree

	mu      sync.Mutex // serialises rewriting and checking
	blocks  []*block   // by id; func "_fragcache_<id>" renders blocks[id]
	hoisted map[string]*block
	done    map[*parse.Tree]bool      // trees already rewritten
	unnamed map[string]*fragment.Site // "path\x00line" → unnamed block there, per rewrite
	lines   map[string][]*block       // "path\x00line" → every block there, per rewrite

	// pristine is an unexecuted clone of the namespace taken before its
	// first execution; the context check clones it once per entry
	// template, because html/template cannot clone a namespace it has
	// executed. Parsing more templates drops it.
	pristine *template.Template
	// checked maps entry template names to the context check's result.
	// It is replaced, never modified, so Execute reads it without a lock.
	checked atomic.Pointer[map[string]error]
	// executed is set by the first execution; html/template then refuses
	// to parse more, so the check's state stays valid.
	executed atomic.Bool
	// execs holds the context.Context and data of each execution
	// running, by goroutine (see ctx.go).
	execs executions

	// finalized is set, under mu, by finalize. options (under mu) and
	// missingKeyOpt are what Option set, for the blocks evaluating their
	// arguments; sinks receives the values of the arguments text/template
	// evaluates for them (native.go).
	finalized     bool
	options       []string
	missingKeyOpt atomic.Uint32 // a missingKeyAction
	sinks         sinks
}

// New allocates a new, undefined template with the given name whose cache
// blocks store fragments in fc. A nil fc renders every block's body
// uncached, which is handy in tests and development.
func New(name string, fc *fragment.Cache) *Template {
	tmpl := template.New(name).Funcs(template.FuncMap{
		"cache":    placeholder,
		"endcache": placeholder,
	})
	s := &set{
		fc:      fc,
		root:    tmpl,
		hoisted: make(map[string]*block),
		done:    make(map[*parse.Tree]bool),
	}
	tmpl.Funcs(template.FuncMap{rootFunc: s.boundRoot})
	return &Template{tmpl: tmpl, set: s}
}

// placeholder lets the parser accept cache and endcache; the rewrite
// replaces every use, so it only runs for a template whose rewrite failed.
func placeholder(...any) (string, error) {
	return "", fmt.Errorf("%w: a cache or endcache tag was not rewritten (its template failed to parse)", ErrSyntax)
}

// Must is a helper that wraps a call to a function returning (*Template,
// error) and panics if the error is non-nil, like template.Must.
func Must(t *Template, err error) *Template {
	if err != nil {
		panic(err)
	}
	return t
}

// ParseFiles creates a new Template bound to fc and parses the named files
// into it, as template.ParseFiles does: each template is named by its
// file's base name, and the returned one by the first file's.
func ParseFiles(fc *fragment.Cache, filenames ...string) (*Template, error) {
	if len(filenames) == 0 {
		return nil, errors.New("htmltemplate: no files named in call to ParseFiles")
	}
	return New(filepath.Base(filenames[0]), fc).ParseFiles(filenames...)
}

// ParseGlob creates a new Template bound to fc and parses the files
// matching pattern into it, as template.ParseGlob does.
func ParseGlob(fc *fragment.Cache, pattern string) (*Template, error) {
	filenames, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	if len(filenames) == 0 {
		return nil, fmt.Errorf("htmltemplate: pattern matches no files: %#q", pattern)
	}
	return ParseFiles(fc, filenames...)
}

// ParseFS creates a new Template bound to fc and parses the files of fsys
// matching the patterns into it, as template.ParseFS does: templates are
// named by base name. Use ParseFSPaths when files in different directories
// share a base name.
func ParseFS(fc *fragment.Cache, fsys fs.FS, patterns ...string) (*Template, error) {
	first, err := firstMatch(fsys, patterns)
	if err != nil {
		return nil, err
	}
	return New(path.Base(first), fc).ParseFS(fsys, patterns...)
}

// ParseFSPaths creates a new Template bound to fc and parses the files of
// fsys matching the patterns into it, naming each template by its
// slash-separated path within fsys (see Template.ParseFSPaths). The
// returned template is named by the first file's path.
func ParseFSPaths(fc *fragment.Cache, fsys fs.FS, patterns ...string) (*Template, error) {
	first, err := firstMatch(fsys, patterns)
	if err != nil {
		return nil, err
	}
	return New(first, fc).ParseFSPaths(fsys, patterns...)
}

func firstMatch(fsys fs.FS, patterns []string) (string, error) {
	for _, p := range patterns {
		list, err := fs.Glob(fsys, p)
		if err != nil {
			return "", err
		}
		if len(list) > 0 {
			return list[0], nil
		}
	}
	return "", fmt.Errorf("htmltemplate: patterns match no files: %q", patterns)
}

// Name returns the name of the template.
func (t *Template) Name() string { return t.tmpl.Name() }

// Cache returns the fragment cache the templates store fragments in, for
// instance to delete a fragment after the data behind it changed.
func (t *Template) Cache() *fragment.Cache { return t.set.fc }

// New allocates a new template associated with t, with the same
// delimiters and fragment cache, as template.Template.New does.
func (t *Template) New(name string) *Template {
	return &Template{tmpl: t.tmpl.New(name), set: t.set}
}

// reservedFunc reports whether a FuncMap name belongs to this package.
func reservedFunc(name string) bool {
	return name == "cache" || name == "endcache" || strings.HasPrefix(name, funcPrefix)
}

// Funcs adds the elements of the argument map to the template's function
// map, as template.Template.Funcs does. Like it, Funcs panics on a value
// that is not a suitable function; it also panics on the names cache and
// endcache, and on names starting with "_fragcache_", which this package
// uses.
func (t *Template) Funcs(funcMap template.FuncMap) *Template {
	for name := range funcMap {
		if reservedFunc(name) {
			panic(fmt.Sprintf("htmltemplate: function name %q is reserved for cache blocks", name))
		}
	}
	t.tmpl.Funcs(funcMap)
	return t
}

// Delims sets the action delimiters for subsequent Parse calls, as
// template.Template.Delims does.
func (t *Template) Delims(left, right string) *Template {
	t.tmpl.Delims(left, right)
	return t
}

// Option sets options for the template, as template.Template.Option does;
// block bodies follow them too.
func (t *Template) Option(opt ...string) *Template {
	t.tmpl.Option(opt...)
	t.set.mu.Lock()
	t.set.recordOptions(opt)
	t.set.mu.Unlock()
	return t
}

// Parse parses text as the body of t, as template.Template.Parse does, and
// hoists the cache blocks of every template it defined. A template parsed
// from a string is named (and its unnamed fragments keyed) by t's name.
func (t *Template) Parse(text string) (*Template, error) {
	if _, err := t.tmpl.Parse(text); err != nil {
		return nil, errors.Join(err, t.set.rewrite())
	}
	if err := t.set.rewrite(); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseFiles parses the named files, as template.Template.ParseFiles
// does: each file's template is named by its base name.
func (t *Template) ParseFiles(filenames ...string) (*Template, error) {
	return t.afterParse(t.tmpl.ParseFiles(filenames...))
}

// ParseGlob parses the files matching pattern, as
// template.Template.ParseGlob does: templates are named by base name.
func (t *Template) ParseGlob(pattern string) (*Template, error) {
	return t.afterParse(t.tmpl.ParseGlob(pattern))
}

// ParseFS parses the files of fsys matching the patterns, as
// template.Template.ParseFS does: templates are named by base name, so
// files in different directories with one base name replace each other.
// ParseFSPaths avoids that.
func (t *Template) ParseFS(fsys fs.FS, patterns ...string) (*Template, error) {
	return t.afterParse(t.tmpl.ParseFS(fsys, patterns...))
}

// ParseFSPaths is ParseFS naming each template by its slash-separated path
// within fsys ("shop/index.html") instead of its base name, so files in
// different directories can share a base name, and unnamed fragments are
// keyed by that path, as Flask keys them by the loader-relative template
// name. Patterns are those of fs.Glob; each must match at least one file.
// A file whose path is t's name becomes t's body.
func (t *Template) ParseFSPaths(fsys fs.FS, patterns ...string) (*Template, error) {
	var files []string
	for _, p := range patterns {
		list, err := fs.Glob(fsys, p)
		if err != nil {
			return nil, err
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("htmltemplate: pattern matches no files: %#q", p)
		}
		files = append(files, list...)
	}
	for _, name := range files {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, errors.Join(err, t.set.rewrite())
		}
		tmpl := t.tmpl
		if name != t.Name() {
			tmpl = t.tmpl.New(name)
		}
		if _, err := tmpl.Parse(string(b)); err != nil {
			return nil, errors.Join(err, t.set.rewrite())
		}
	}
	if err := t.set.rewrite(); err != nil {
		return nil, err
	}
	return t, nil
}

// AddParseTree associates tree with t under name, as
// template.Template.AddParseTree does, and hoists its cache blocks. The
// tree must have been parsed with the cache and endcache functions
// defined (for instance by parse.Parse with a map holding them).
func (t *Template) AddParseTree(name string, tree *parse.Tree) (*Template, error) {
	nt, err := t.tmpl.AddParseTree(name, tree)
	if err != nil {
		return nil, err
	}
	if err := t.set.rewrite(); err != nil {
		return nil, err
	}
	return &Template{tmpl: nt, set: t.set}, nil
}

// afterParse rewrites whatever an html/template Parse method added, even
// when it failed part-way, so no unrewritten tag is left behind.
func (t *Template) afterParse(_ *template.Template, err error) (*Template, error) {
	if rerr := t.set.rewrite(); err != nil || rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	return t, nil
}

// Lookup returns the template with the given name associated with t, or
// nil if there is none.
func (t *Template) Lookup(name string) *Template {
	tmpl := t.tmpl.Lookup(name)
	if tmpl == nil {
		return nil
	}
	return &Template{tmpl: tmpl, set: t.set}
}

// Templates returns the templates associated with t, t included, sorted by
// name. The templates holding hoisted block bodies are left out.
func (t *Template) Templates() []*Template {
	t.set.mu.Lock()
	defer t.set.mu.Unlock()
	var out []*Template
	for _, tmpl := range t.tmpl.Templates() {
		if t.set.hoisted[tmpl.Name()] == nil {
			out = append(out, &Template{tmpl: tmpl, set: t.set})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// DefinedTemplates returns a string listing the defined templates,
// prefixed by "; defined templates are: ", or "" if there are none, as
// template.Template.DefinedTemplates does (but sorted, and without the
// hoisted block bodies).
func (t *Template) DefinedTemplates() string {
	var names []string
	for _, tmpl := range t.Templates() {
		if tmpl.tmpl.Tree != nil && tmpl.tmpl.Tree.Root != nil {
			names = append(names, fmt.Sprintf("%q", tmpl.Name()))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; defined templates are: " + strings.Join(names, ", ")
}

// Clone returns a duplicate of the template and all its associated
// templates, bound to the same fragment cache, as template.Template.Clone
// does; like it, Clone fails once the template has been executed (here
// also after an execution that failed before html/template escaped
// anything, such as one of an undefined name). The clone's blocks render
// the clone's bodies, so templates redefined in the clone are the ones its
// blocks call.
func (t *Template) Clone() (*Template, error) {
	s := t.set
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finalized {
		// html/template refuses a Clone once a template of the set was
		// escaped, but not after an execution that failed before that
		// (an undefined name): finalize has by then fitted the blocks'
		// calls to the set as it is, which a clone may change by
		// redefining a template ({{template "p" .X}} where it was .).
		return nil, fmt.Errorf("htmltemplate: cannot Clone %q after it has executed", t.Name())
	}
	c, err := t.tmpl.Clone()
	if err != nil {
		return nil, err
	}
	ns := &set{
		fc:      s.fc,
		root:    c,
		blocks:  make([]*block, len(s.blocks)),
		hoisted: make(map[string]*block, len(s.hoisted)),
		done:    make(map[*parse.Tree]bool, len(s.done)),
		options: slices.Clone(s.options), // the clone keeps them, as text/template's does
	}
	ns.missingKeyOpt.Store(s.missingKeyOpt.Load())
	funcs := template.FuncMap{rootFunc: ns.boundRoot}
	for i, b := range s.blocks {
		nb := *b
		nb.set = ns
		nb.tmpl = c.Lookup(b.hoistedName)
		ns.blocks[i] = &nb
		funcs[funcName(nb.id)] = nb.fn()
		if s.hoisted[b.hoistedName] == b {
			ns.hoisted[b.hoistedName] = &nb
		}
	}
	c.Funcs(funcs)
	for _, ct := range c.Templates() {
		if orig := t.tmpl.Lookup(ct.Name()); orig != nil && s.done[orig.Tree] {
			ns.done[ct.Tree] = true
		}
	}
	return &Template{tmpl: c, set: ns}, nil
}

// Execute applies the template to data and writes the output to w, as
// template.Template.Execute does. On the first execution of each template
// name it checks that every cache block the template can reach is in HTML
// element content; if one is not, it returns an error wrapping ErrContext
// that names the block's position, and writes nothing. Blocks reach the
// backend with context.Background(); use ExecuteContext to give them the
// request's context.
func (t *Template) Execute(w io.Writer, data any) error {
	if t.batches() {
		return t.ExecuteContext(context.Background(), w, data)
	}
	return t.execute(context.Background(), w, data)
}

func (t *Template) execute(ctx context.Context, w io.Writer, data any) error {
	if err := t.set.check(t.Name()); err != nil {
		return err
	}
	t.set.markExecuted()
	if len(t.set.blocks) == 0 { // fixed since the first execution
		return t.tmpl.Execute(w, data)
	}
	id, prev := t.set.execs.bind(ctx, data, nil)
	defer t.set.execs.unbind(id, prev)
	return unwrapArgError(t.tmpl.Execute(w, data))
}

// ExecuteTemplate applies the template associated with t that has the
// given name to data and writes the output to w, as
// template.Template.ExecuteTemplate does, with Execute's context check.
// Blocks reach the backend with context.Background(); use
// ExecuteTemplateContext to give them the request's context.
func (t *Template) ExecuteTemplate(w io.Writer, name string, data any) error {
	if t.batches() {
		return t.ExecuteTemplateContext(context.Background(), w, name, data)
	}
	return t.executeTemplate(context.Background(), w, name, data)
}

func (t *Template) executeTemplate(ctx context.Context, w io.Writer, name string, data any) error {
	if err := t.set.check(name); err != nil {
		return err
	}
	t.set.markExecuted()
	if len(t.set.blocks) == 0 {
		return t.tmpl.ExecuteTemplate(w, name, data)
	}
	id, prev := t.set.execs.bind(ctx, data, nil)
	defer t.set.execs.unbind(id, prev)
	return unwrapArgError(t.tmpl.ExecuteTemplate(w, name, data))
}

// markExecuted records the first execution, reading before writing so
// that executions do not contend on the flag's cache line.
func (s *set) markExecuted() {
	if !s.executed.Load() {
		s.finalize()
		s.executed.Store(true)
	}
}

// Check runs, without executing anything, the context check Execute runs
// on a template's first execution, for the named templates (t itself if
// none are named), and returns the first error. Call it at startup or in a
// test to find misplaced blocks before serving a page.
func (t *Template) Check(names ...string) error {
	if len(names) == 0 {
		names = []string{t.Name()}
	}
	for _, name := range names {
		if err := t.set.check(name); err != nil {
			return err
		}
	}
	return nil
}
