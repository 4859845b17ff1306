package jettag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/CloudyKit/jet/v6"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/loadername"
	"github.com/fragcache/fragcache/internal/varyon"
)

// ContextVar is the Jet variable the cache blocks take their
// context.Context from (for backend calls and for waiting on another
// goroutine's render of the same fragment). Set it per execution, e.g. with
// WithContext; without it blocks use context.Background().
const ContextVar = "fragcacheContext"

// WithContext returns vars (a new VarMap if vars is nil) with ContextVar set
// to ctx, for Template.Execute.
func WithContext(vars jet.VarMap, ctx context.Context) jet.VarMap {
	if vars == nil {
		vars = make(jet.VarMap, 1)
	}
	return vars.Set(ContextVar, ctx)
}

// ErrDelims is returned by Bind and NewSet when the Set's delimiters are not
// the ones Options names: the rewrite would not see the Set's tags.
var ErrDelims = errors.New("jettag: the Set's delimiters differ from Options")

// Options describe the Set the templates run in. Jet does not expose a
// Set's delimiters, so a Set made with jet.WithDelims or
// jet.WithCommentDelims needs the same values here (Bind checks them).
type Options struct {
	// LeftDelim and RightDelim are the action delimiters; "" means Jet's
	// "{{" and "}}".
	LeftDelim, RightDelim string
	// LeftComment and RightComment are the comment delimiters; "" means
	// Jet's "{*" and "*}".
	LeftComment, RightComment string
}

// site is a cache block as the rewrite registered it.
type site struct {
	fragment.Site
	block string // the Jet block holding the body

	// Literal timeout and name arguments, evaluated at rewrite time so a
	// hit does not box them again.
	timeout, name           any
	constTimeout, constName bool

	lineMate string // "path:line:col" of another block on the same line, if any
}

// siteKey identifies a site across parses of the same source; args is part
// of it because the literal arguments are folded into the site.
type siteKey struct {
	path      string
	line, col int
	digest    string
	args      string
	lineMate  string
}

// Tags binds a fragment.Cache to Jet templates: it rewrites the cache tags
// of every template it loads or is given, and executes them. One Tags
// serves one Set (or several Sets with the same delimiters); it is safe for
// concurrent use.
type Tags struct {
	fc                     *fragment.Cache
	ld, rd, lc, rc, trimRD string

	mu    sync.Mutex // serialises registrations
	index map[siteKey]int
	sites atomic.Pointer[[]*site] // read without locking on every execution
}

// New returns Tags that render cache blocks with fc.
func New(fc *fragment.Cache, opts Options) *Tags {
	t := &Tags{fc: fc, ld: "{{", rd: "}}", lc: "{*", rc: "*}", index: make(map[siteKey]int)}
	if opts.LeftDelim != "" {
		t.ld = opts.LeftDelim
	}
	if opts.RightDelim != "" {
		t.rd = opts.RightDelim
	}
	if opts.LeftComment != "" {
		t.lc = opts.LeftComment
	}
	if opts.RightComment != "" {
		t.rc = opts.RightComment
	}
	t.trimRD = rightTrimMarker + t.rd
	t.sites.Store(new([]*site))
	return t
}

// register returns the index of the site for k, adding it if it is new.
// Sites are never removed: a template parsed again (concurrent first loads,
// jet.DevelopmentMode) finds its sites again, so the table only grows with
// distinct block sources.
func (t *Tags) register(k siteKey) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[k]; ok {
		return i
	}
	old := *t.sites.Load()
	i := len(old)
	s := &site{
		Site:     fragment.Site{Path: k.path, Line: k.line, Col: k.col, Digest: k.digest},
		block:    fmt.Sprintf("%s%d", blockPrefix, i),
		lineMate: k.lineMate,
	}
	if args := splitArgs(k.args); len(args) > 0 {
		s.timeout, s.constTimeout = constant(args[0])
		if len(args) > 1 {
			s.name, s.constName = constant(args[1])
		}
	}
	// Appending past len never touches elements a reader can see, and the
	// new header is published atomically.
	grown := append(old, s)
	t.sites.Store(&grown)
	t.index[k] = i
	return i
}

// Rewrite returns src with its cache tags rewritten into what Jet can parse,
// for code that calls Set.Parse directly (the Loader rewrites everything
// else). path is the template's path as given to Set.Parse; keys and
// errors use it cleaned and without its leading slash ("/views/a.jet" →
// "views/a.jet"), so an unnamed block's key is
// keys.FragmentName("views/a.jet", line). No loader name goes before it,
// since no loader loaded the template: give templates of different roots
// different paths. Line numbers are unchanged. Errors are *ParseError
// wrapping one of the Err* sentinels.
func (t *Tags) Rewrite(path, src string) (string, error) {
	return t.rewrite(normalisePath(path), src)
}

// rewrite is Rewrite for a template whose key path is keyPath.
func (t *Tags) rewrite(keyPath, src string) (string, error) {
	if !strings.Contains(src, "cache") {
		return src, nil
	}
	r := &rewriter{
		tags: t, path: keyPath, src: src,
		ld: t.ld, rd: t.rd, lc: t.lc, rc: t.rc, trimRD: t.trimRD,
		line: 1, comment: -2, // -2: not searched yet
	}
	if err := r.scan(); err != nil {
		return "", err
	}
	if len(r.edits) == 0 {
		return src, nil
	}
	return r.emit(), nil
}

// Parse rewrites src and parses it with set.Parse: use it instead of
// set.Parse, which bypasses the Loader.
func (t *Tags) Parse(set *jet.Set, path, src string) (*jet.Template, error) {
	out, err := t.Rewrite(path, src)
	if err != nil {
		return nil, err
	}
	return set.Parse(path, out)
}

// ErrLoaderName is returned by Loader and NewSet for a name that is not
// usable as a loader name.
var ErrLoaderName = errors.New("jettag: bad loader name")

// Loader returns a jet.Loader named name that rewrites the cache tags of
// every template inner loads, including those reached through extends,
// import and include. The name starts the path of every unnamed block of
// those templates ("web" and "/shop/a.jet" → "web/shop/a.jet"), so that
// two Sets served by one Tags, whose roots may both hold /welcome.jet,
// never share a key: give each root its own name, the same one on every
// host sharing the cache (pongo2tag.NewLoader follows the same rule). The
// name is one or more ASCII letters, digits, '.', '_' or '-' (not "." or
// ".."); any other is an error wrapping ErrLoaderName.
func (t *Tags) Loader(name string, inner jet.Loader) (jet.Loader, error) {
	if inner == nil {
		return nil, errors.New("jettag: Loader needs a loader to wrap")
	}
	if err := loadername.Check(name, ErrLoaderName); err != nil {
		return nil, err
	}
	return &loader{name: name, inner: inner, tags: t}, nil
}

type loader struct {
	name  string
	inner jet.Loader
	tags  *Tags
}

// Exists reports whether the inner loader has the template.
func (l *loader) Exists(path string) bool { return l.inner.Exists(path) }

// Open returns the template's source with its cache tags rewritten.
func (l *loader) Open(path string) (io.ReadCloser, error) {
	rc, err := l.inner.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("jettag: reading %s: %w", path, err)
	}
	out, err := l.tags.rewrite(l.name+"/"+normalisePath(path), string(src))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(strings.NewReader(out)), nil
}

// NewSet returns a Set whose templates may use cache blocks: it wraps
// loader with Loader under name, applies the Options' delimiters (before
// opts) and calls Bind. The returned error is Loader's or Bind's.
func (t *Tags) NewSet(name string, loader jet.Loader, opts ...jet.Option) (*jet.Set, error) {
	ld, err := t.Loader(name, loader)
	if err != nil {
		return nil, err
	}
	all := make([]jet.Option, 0, len(opts)+2)
	all = append(all, jet.WithDelims(t.ld, t.rd), jet.WithCommentDelims(t.lc, t.rc))
	set := jet.NewSet(ld, append(all, opts...)...)
	if err := t.Bind(set); err != nil {
		return nil, err
	}
	return set, nil
}

// Bind adds what rewritten templates call to set: the global function
// "__fragcache" and a default ContextVar. The Set must load templates
// through t.Loader (or have them rewritten by t.Parse), and be bound to this
// Tags only: binding another Tags replaces the function, and the sites its
// rewrite numbered would be looked up in the wrong table. Bind first checks
// that the Set uses the delimiters of the Options t was made with, and
// returns an error wrapping ErrDelims if not.
func (t *Tags) Bind(set *jet.Set) error {
	// Jet does not export a Set's delimiters, so ask the Set to parse a
	// probe: text written around a comment and an action renders as "ABC"
	// only if both pairs of delimiters are the Set's. (The comment comes
	// first because Jet only looks for comments before an action.) Text is
	// not escaped, so the Set's SafeWriter does not matter.
	probe := "A" + t.lc + "x" + t.rc + "B" + t.ld + " if false " + t.rd + "x" + t.ld + " end " + t.rd + "C"
	var out bytes.Buffer
	tpl, err := set.Parse("/__fragcache_probe.jet", probe)
	if err == nil {
		err = tpl.Execute(&out, nil, nil)
	}
	if err != nil || out.String() != "ABC" {
		return fmt.Errorf("%w: Options say %s %s and comments %s %s (pass the same jet.WithDelims and jet.WithCommentDelims values to both)",
			ErrDelims, t.ld, t.rd, t.lc, t.rc)
	}
	set.AddGlobalFunc(funcName, t.execute)
	set.AddGlobal(ContextVar, context.Background())
	return nil
}

// renderBlock runs the Jet block named block with the Runtime's output sent
// to w. Jet reports template errors by panicking with an error;
// renderBlock turns those into its result so Render can hand them to every
// waiter and store nothing. Other panics (runtime errors, non-error values)
// go on, as Jet itself lets them.
func renderBlock(rt *jet.Runtime, block string, w io.Writer) (err error) {
	saved := rt.Writer
	rt.Writer = w
	defer func() {
		rt.Writer = saved
		if r := recover(); r != nil {
			e, ok := r.(error)
			if _, isRuntime := r.(runtime.Error); !ok || isRuntime {
				panic(r)
			}
			err = e
		}
	}()
	rt.YieldBlock(block, nil)
	return nil
}

// execute is the Func behind {{ if __fragcache(site, timeout[, name[, vary_on…]]) }}.
// Errors are panics, which Template.Execute returns.
func (t *Tags) execute(a jet.Arguments) reflect.Value {
	s := t.site(a.Get(0))
	call := fragment.Call{Site: &s.Site}
	n := a.NumOfArguments()
	if s.constTimeout {
		call.Timeout = s.timeout
	} else {
		call.Timeout = s.value(a.Get(1), fragment.ErrTimeout)
	}
	if n > 2 {
		if s.constName {
			call.Name = s.name
		} else {
			call.Name = s.value(a.Get(2), fragment.ErrKeyValue)
		}
		if call.Name == nil && s.lineMate != "" {
			panic(&fragment.SiteError{Site: &s.Site, Err: fmt.Errorf(
				"%w: the name evaluated to nil, so the block is keyed by template and line, which it shares with the block at %s: give it a name that is not nil",
				ErrSameLine, s.lineMate)})
		}
	}
	var vary *varyon.List
	if n > 3 {
		vary = varyon.Get()
		for i := 3; i < n; i++ {
			vary.Values = append(vary.Values, s.value(a.Get(i), fragment.ErrKeyValue))
		}
		call.VaryOn = vary.Values
	}
	rt, block := a.Runtime(), s.block
	// Render does not keep body, so this closure stays on the stack: a
	// hit allocates nothing here.
	body := func(w io.Writer) error { return renderBlock(rt, block, w) }
	err := t.fc.Render(contextOf(rt), call, rt.Writer, body)
	if vary != nil {
		vary.Put()
	}
	if err != nil {
		panic(err)
	}
	return valueFalse // Render wrote the output: skip the block in place
}

var valueFalse = reflect.ValueOf(false)

// site returns the site a rewritten tag passes as its first argument.
func (t *Tags) site(v reflect.Value) *site {
	sites := *t.sites.Load()
	if v.IsValid() && v.Kind() == reflect.Float64 {
		if f := v.Float(); f >= 0 && f < float64(len(sites)) && f == float64(int(f)) {
			return sites[int(f)]
		}
	}
	panic(fmt.Errorf("jettag: %s called with an unknown site %v: call it only through {{ cache }}, with the Set bound to the Tags whose Loader rewrote the template", funcName, v))
}

// value unwraps an evaluated argument into a plain Go value; sentinel says
// which argument fails if it cannot be read.
func (s *site) value(v reflect.Value, sentinel error) any {
	if !v.IsValid() {
		return nil
	}
	if !v.CanInterface() {
		panic(&fragment.SiteError{Site: &s.Site, Err: fmt.Errorf("%w: a value of type %s from an unexported field", sentinel, v.Type())})
	}
	return v.Interface()
}

// contextOf returns the execution's ContextVar, or context.Background().
func contextOf(rt *jet.Runtime) context.Context {
	if v := rt.Resolve(ContextVar); v.IsValid() && v.CanInterface() {
		if ctx, ok := v.Interface().(context.Context); ok && ctx != nil {
			return ctx
		}
	}
	return context.Background()
}
