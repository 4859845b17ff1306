package pongo2tag

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
)

// Execute renders tpl with data into w, its cache blocks through fc with
// ctx (typically the request's) for their backend calls: the page entry
// point. It binds fc and ctx under ContextKey for the render, in a pooled
// copy of data (data is not modified), so the template's set needs no
// Bind. This binding takes precedence over Bind's and over one in data,
// and its ctx over ContextVar, which its blocks do not read (ctx replaces
// a ContextVar in data, for templates that pass it on). A template that
// passes the binding through {% include … only %} does it with
// `with _fc=_fc`.
//
// Nothing is written to w when the render fails: a *bytes.Buffer gets the
// page straight away and is cut back to its previous length on failure,
// any other writer gets the page in one Write once it is complete
// (rendered into a pooled buffer, not pongo2's ExecuteWriter, which
// allocates a buffer of 1.3× the template's source on every call).
//
// On a cache that batches (a networked backend), the page goes through
// fc.Page: the lookups of every block the page reaches go out in one
// round trip per level of nesting, and the stores of the fragments it
// renders in one pipeline (see fragment.Cache.Page; the template then runs
// more than once, into a buffer).
func Execute(ctx context.Context, fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if fc.Batches() {
		return fc.Page(ctx, w, tpl, func(ctx context.Context, w io.Writer) error {
			return executeBound(ctx, fc, tpl, data, w)
		})
	}
	if b, ok := w.(*bytes.Buffer); ok {
		n := b.Len()
		if err := executeBound(ctx, fc, tpl, data, b); err != nil {
			b.Truncate(n)
			return err
		}
		return nil
	}
	buf := pageBufs.Get().(*bytes.Buffer)
	defer putPageBuf(buf)
	if err := executeBound(ctx, fc, tpl, data, buf); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// executeBound renders tpl into w with data and the binding of fc and ctx,
// in a context map taken from a pool: pongo2 copies the map it is given
// into its own before the render starts and keeps no reference to it.
func executeBound(ctx context.Context, fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context, w io.Writer) error {
	c := pageContexts.Get().(pongo2.Context)
	defer func() {
		if len(c) <= maxPooledKeys { // clear costs a map's capacity, not its length
			clear(c)
			pageContexts.Put(c)
		}
	}()
	for k, v := range data {
		c[k] = v
	}
	c[ContextKey] = &binding{ctx: ctx, fc: fc, page: true}
	if _, ok := c[ContextVar]; ok {
		c[ContextVar] = &ctxValue{ctx}
	}
	return tpl.ExecuteWriterUnbuffered(c, w)
}

// pageContexts holds the context maps executeBound fills.
var pageContexts = sync.Pool{New: func() any { return make(pongo2.Context, 8) }}

// maxPooledKeys is the most keys a context map put back into pageContexts
// held: a rare huge context should not make every page's clear slow.
const maxPooledKeys = 64

// pageBufs holds the buffers Execute renders pages into for writers that
// are not a *bytes.Buffer.
var pageBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledPage is the largest buffer put back into pageBufs: a rare huge
// page should not stay in memory.
const maxPooledPage = 1 << 20

func putPageBuf(b *bytes.Buffer) {
	if b.Cap() > maxPooledPage {
		return
	}
	b.Reset()
	pageBufs.Put(b)
}
