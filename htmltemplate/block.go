package htmltemplate

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"reflect"
	"sync"
	"unsafe"

	"github.com/fragcache/fragcache/fragment"
)

// block is one hoisted cache block: what its opening tag said, fixed at
// parse time, and the template holding its body.
type block struct {
	id          int
	site        *fragment.Site
	set         *set
	tmpl        *template.Template // the hoisted body
	hoistedName string
	usesRoot    bool // the call passes $ after the dot
	rootIsDot   bool // the dot is $ at the block (see rewriteList)

	// native is set by set.finalize when the block's arguments are field
	// chains of its dot and the block can evaluate them exactly as
	// text/template would: its call then passes the dot only (and $ if
	// the body uses it), or nothing at all when it is bound: its dot is
	// then always the data of the execution running it.
	native   []*chainArg
	bound    bool
	rootArgs bool // some of native are chains of $, the execution's data

	// The tag's arguments: constants are kept here, the others are passed
	// to the block's function in order (nArgs of them).
	nArgs     int
	timeout   argRef
	hasName   bool
	name      argRef
	vary      []argRef
	constVary []any // vary_on values when they are all constant

	// lineMate is a block on the same line that may have the
	// template-and-line key, when this block's name is dynamic: it must
	// then not evaluate to nil.
	lineMate *fragment.Site
}

// mayBeUnnamed reports whether the block can have the template-and-line
// key: it has no name, the constant name nil, or a dynamic name.
func (b *block) mayBeUnnamed() bool { return !b.hasName || b.name.dyn >= 0 || b.name.val == nil }

// argRef is a tag argument: a constant value, or the index of a dynamic
// argument among those passed to the block's function.
type argRef struct {
	dyn int // -1 for a constant
	val any
}

func (r argRef) get(dyn []any) any {
	if r.dyn < 0 {
		return r.val
	}
	return dyn[r.dyn]
}

func (b *block) constantVaryOn() []any {
	vals := make([]any, len(b.vary))
	for i, r := range b.vary {
		if r.dyn >= 0 {
			return nil
		}
		vals[i] = r.val
	}
	return vals
}

// fn returns the function the rewritten tag calls. Its parameters are
// fixed for up to three passed values ($ counts as one), because
// text/template calls a variadic function through a freshly allocated
// slice. The dot is a reflect.Value, the one text/template holds (an
// addressable range element shows its pointer methods to the body, as it
// does to the template without cache tags), except where the dot is $:
// there it may be invalid (nil data), which text/template passes only to
// an interface{}. The function has no error result: it panics with its
// error instead, which text/template's call of a template function
// recovers and reports exactly as a returned error ("error calling NAME:
// …", wrapped with %w), and a hit saves reflect's copy of a second result.
func (b *block) fn() any {
	switch {
	case b.bound:
		return b.callBound
	case b.native != nil && b.usesRoot:
		return func(dot reflect.Value, root any) template.HTML { return b.callNative(dot, root) }
	case b.native != nil:
		return func(dot reflect.Value) template.HTML { return b.callNative(dot, nil) }
	}
	n := b.nArgs
	if b.rootIsDot {
		switch n {
		case 0:
			return func(dot any) template.HTML { return b.callArgs(anyDot(dot), nil, nil) }
		case 1:
			return func(dot, a any) template.HTML { return b.callArgs(anyDot(dot), nil, []any{a}) }
		case 2:
			return func(dot, a, c any) template.HTML { return b.callArgs(anyDot(dot), nil, []any{a, c}) }
		case 3:
			return func(dot, a, c, d any) template.HTML { return b.callArgs(anyDot(dot), nil, []any{a, c, d}) }
		}
		return func(dot any, args ...any) template.HTML { return b.callArgs(anyDot(dot), nil, args) }
	}
	if b.usesRoot {
		switch n {
		case 0:
			return func(dot reflect.Value, root any) template.HTML { return b.callArgs(valueDot(dot), root, nil) }
		case 1:
			return func(dot reflect.Value, root, a any) template.HTML { return b.callArgs(valueDot(dot), root, []any{a}) }
		case 2:
			return func(dot reflect.Value, root, a, c any) template.HTML {
				return b.callArgs(valueDot(dot), root, []any{a, c})
			}
		}
		return func(dot reflect.Value, root any, args ...any) template.HTML {
			return b.callArgs(valueDot(dot), root, args)
		}
	}
	switch n {
	case 0:
		return func(dot reflect.Value) template.HTML { return b.callArgs(valueDot(dot), nil, nil) }
	case 1:
		return func(dot reflect.Value, a any) template.HTML { return b.callArgs(valueDot(dot), nil, []any{a}) }
	case 2:
		return func(dot reflect.Value, a, c any) template.HTML { return b.callArgs(valueDot(dot), nil, []any{a, c}) }
	case 3:
		return func(dot reflect.Value, a, c, d any) template.HTML {
			return b.callArgs(valueDot(dot), nil, []any{a, c, d})
		}
	}
	return func(dot reflect.Value, args ...any) template.HTML { return b.callArgs(valueDot(dot), nil, args) }
}

// blockDot is the dot at a block, in the form its function received it.
type blockDot struct {
	v       reflect.Value
	iface   any
	isValue bool
}

func anyDot(d any) blockDot             { return blockDot{iface: d} }
func valueDot(v reflect.Value) blockDot { return blockDot{v: v, isValue: true} }

// data is what the body is executed with: text/template takes a
// reflect.Value as the dot itself.
func (d blockDot) data() any {
	if d.isValue {
		return d.v
	}
	return d.iface
}

// callBound is the function of a block that takes no arguments (see
// set.finalize): its dot is the data of the execution running it, and it
// evaluates its own arguments on it.
func (b *block) callBound() template.HTML {
	bd := b.set.execs.current()
	if !bd.ok { // cannot happen: every execution binds its data
		panic(fmt.Errorf("%s: cache: htmltemplate: block called outside an execution of its template", b.site))
	}
	var buf [4]any
	dyn := buf[:0]
	for _, a := range b.native {
		dyn = append(dyn, a.eval(bd.data))
	}
	return b.call(bd.ctx, anyDot(bd.data), nil, dyn)
}

// callNative is the function of a block that evaluates its arguments on
// the dot it is passed (see set.finalize).
func (b *block) callNative(v reflect.Value, root any) template.HTML {
	var data any
	if b.rootArgs {
		data = b.set.execs.current().data
	}
	var buf [4]any
	dyn := buf[:0]
	for _, a := range b.native {
		if a.onRoot {
			dyn = append(dyn, a.eval(data))
		} else {
			dyn = append(dyn, a.evalValue(v))
		}
	}
	return b.callArgs(valueDot(v), root, dyn)
}

// callArgs is call for a block passed its dot, $ and arguments.
func (b *block) callArgs(d blockDot, root any, dyn []any) template.HTML {
	return b.call(b.set.execs.current().ctx, d, root, dyn)
}

// call is render for the block's function: it panics with render's error.
func (b *block) call(ctx context.Context, d blockDot, root any, dyn []any) template.HTML {
	html, err := b.render(ctx, d, root, dyn)
	if err != nil {
		panic(err)
	}
	return html
}

// render runs the block through the fragment cache and returns the
// fragment as template.HTML: html/template escaped the body itself, in
// element content, and the context check made sure the block is there.
func (b *block) render(ctx context.Context, d blockDot, root any, dyn []any) (template.HTML, error) {
	call := fragment.Call{Site: b.site, Timeout: b.timeout.get(dyn)}
	if b.hasName {
		call.Name = b.name.get(dyn)
		if call.Name == nil && b.lineMate != nil {
			return "", &fragment.SiteError{Site: b.site, Err: fmt.Errorf(
				"%w: the name evaluated to nil, so the block is keyed by template and line, which it shares with the block at %s: give it a name that is not nil",
				ErrSameLine, b.lineMate)}
		}
	}
	x := executionPool.Get().(*execution)
	defer x.release()
	x.b, x.ctx, x.dot, x.root = b, ctx, d, root
	switch {
	case b.constVary != nil:
		call.VaryOn = b.constVary
	case len(b.vary) > 0:
		v := x.vary[:0]
		for _, r := range b.vary {
			v = append(v, r.get(dyn))
		}
		x.vary, call.VaryOn = v, v
	}
	var frag []byte
	var err error
	if fc := b.set.fc; fc != nil {
		frag, err = fc.Fragment(ctx, call, x.body)
	} else {
		var buf bytes.Buffer
		err = x.body(&buf)
		frag = buf.Bytes()
	}
	if err != nil {
		return "", err
	}
	// The fragment's bytes are never modified (fragment.Cache.Fragment
	// says so; an uncached render's buffer is this call's own), so the
	// string shares them: a hit copies the fragment once, into the page.
	return template.HTML(unsafe.String(unsafe.SliceData(frag), len(frag))), nil
}

// execution is what one call of a block hands fragment.Cache.Fragment,
// pooled so that a hit allocates neither the body's closure nor the
// vary_on slice (Fragment keeps neither after it returns).
type execution struct {
	b    *block
	ctx  context.Context
	dot  blockDot
	root any
	body func(io.Writer) error // x.render, bound once
	vary []any
}

var executionPool = sync.Pool{New: func() any {
	x := new(execution)
	x.body = x.render
	return x
}}

func (x *execution) render(w io.Writer) error { return x.b.execute(x.ctx, w, x.dot, x.root) }

func (x *execution) release() {
	clear(x.vary) // do not keep the values alive
	x.b, x.ctx, x.dot, x.root, x.vary = nil, nil, blockDot{}, nil, x.vary[:0]
	executionPool.Put(x)
}

// execute renders the body for the value of the dot and $ at the block,
// with ctx, the dot and $ bound for the blocks inside and for the body's
// own {{ $ = _fragcache_root }} (on whatever goroutine fragment.Cache runs
// it).
func (b *block) execute(ctx context.Context, w io.Writer, d blockDot, root any) error {
	data := d.data()
	id, prev := b.set.execs.bind(ctx, data, root)
	defer b.set.execs.unbind(id, prev)
	return unwrapArgError(b.tmpl.Execute(w, data))
}
