package pongo2tag

import (
	"context"
	"errors"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
)

// ContextKey is the pongo2 context key a cache block reads its
// *fragment.Cache from. Bind puts it into a set's Globals, With and Execute
// into one render's context. The value may be what those functions store,
// or a *fragment.Cache itself (its backend calls then use
// context.Background()).
// A template passes it on through {% include … only %} with
// `with _fc=_fc`.
//
// The name is short because pongo2 copies every key of a render's context
// and matches it against a regular expression before each render: about
// 95 ns per key plus 8 ns per character on a 2-CPU VM (BENCHMARKS.md).
// "_fragcache", the name until 2026-12, cost about 175 ns per page, 56 ns
// more than "_fc".
const ContextKey = "_fc"

// formerContextKey is ContextKey's former name, which a template written
// for it may still pass on: the error of an unbound block says so.
const formerContextKey = "_fragcache"

// ContextVar is the pongo2 context key a cache block reads its
// context.Context from, for backend calls and for waiting on another
// render of the same fragment; WithContext sets it. It takes precedence
// over the context of the binding (With's, or Bind's
// context.Background()), but not over Execute's: that is the render's own,
// and blocks of a render through Execute do not read ContextVar. A
// template passes it on through {% include … only %} with
// `with _fc_ctx=_fc_ctx`. (It was "_fragcache_ctx" until 2026-12; see
// ContextKey for why the names are short.)
const ContextVar = "_fc_ctx"

// ErrNotBound is the error (inside the *pongo2.Error's OrigError) of a cache
// block executed with no *fragment.Cache under ContextKey.
var ErrNotBound = errors.New("pongo2tag: no fragment cache bound; use pongo2tag.Bind(set, fc) or render with pongo2tag.With(ctx, fc, data)")

// binding is what Bind, With and Execute store under ContextKey.
type binding struct {
	ctx context.Context
	fc  *fragment.Cache
	// page marks Execute's binding: ctx is the render's, and ContextVar,
	// which Execute sets to the same ctx when data has one, is not read.
	page bool
}

// String keeps a template that prints the binding from dumping its fields.
func (b *binding) String() string { return "fragcache" }

// Bind makes every template of set render its cache blocks through fc, with
// context.Background() for backend calls unless a render passes its own
// with WithContext. It writes set.Globals, so call it before the set
// renders anything. A render's own binding (With) takes precedence.
func Bind(set *pongo2.TemplateSet, fc *fragment.Cache) {
	if set.Globals == nil {
		set.Globals = make(pongo2.Context)
	}
	set.Globals[ContextKey] = &binding{ctx: context.Background(), fc: fc}
}

// With returns a copy of data that also binds fc for one render, with ctx
// (typically the request's) for its backend calls: cancelling ctx ends
// waits for another goroutine's render of the same fragment. data is not
// modified; nil is allowed, and a nil ctx means context.Background().
func With(ctx context.Context, fc *fragment.Cache, data pongo2.Context) pongo2.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	out := make(pongo2.Context, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	out[ContextKey] = &binding{ctx: ctx, fc: fc}
	return out
}

// WithContext returns a copy of data (a new Context if data is nil) with
// ContextVar set to ctx, for one render of a template whose set is bound
// with Bind: the request's context then reaches every cache block's backend
// calls, as jettag.WithContext does for Jet. data is not modified; a nil
// ctx means context.Background().
//
//	err := tpl.ExecuteWriter(pongo2tag.WithContext(pongo2.Context{"user": u}, r.Context()), w)
func WithContext(data pongo2.Context, ctx context.Context) pongo2.Context {
	if ctx == nil {
		ctx = context.Background()
	}
	out := make(pongo2.Context, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	out[ContextVar] = &ctxValue{ctx}
	return out
}

// ctxValue carries WithContext's ctx; a template that prints it gets a
// placeholder rather than the context's fields.
type ctxValue struct{ ctx context.Context }

func (*ctxValue) String() string { return "context" }

// renderContext returns the context a block's backend calls use: the
// render's ContextVar if set, else the binding's.
func renderContext(ctx *pongo2.ExecutionContext, bctx context.Context) context.Context {
	v := ctx.Public[ContextVar]
	if pv, ok := v.(*pongo2.Value); ok {
		v = pv.Interface()
	}
	switch c := v.(type) {
	case *ctxValue:
		if c != nil && c.ctx != nil {
			return c.ctx
		}
	case context.Context:
		if c != nil {
			return c
		}
	}
	return bctx
}

// bound finds the cache bound to a render and the context its backend
// calls use (renderContext; Execute's binding is the render's own, so its
// context needs no second lookup). A value passed through
// `{% include … with _fc=_fc %}` arrives wrapped in a
// *pongo2.Value.
func bound(ctx *pongo2.ExecutionContext) (context.Context, *fragment.Cache, bool) {
	v := ctx.Public[ContextKey]
	if pv, ok := v.(*pongo2.Value); ok {
		v = pv.Interface()
	}
	switch b := v.(type) {
	case *binding:
		if b != nil && b.fc != nil {
			if b.page {
				return b.ctx, b.fc, true
			}
			return renderContext(ctx, b.ctx), b.fc, true
		}
	case *fragment.Cache:
		if b != nil {
			return renderContext(ctx, context.Background()), b, true
		}
	}
	return nil, nil, false
}
