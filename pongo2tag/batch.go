package pongo2tag

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
)

// Execute renders tpl with data into w, with ctx (typically the request's)
// for the cache blocks' backend calls, as
// tpl.ExecuteWriterUnbuffered(WithContext(data, ctx), w) does. Nothing is
// written to w when the render fails: a *bytes.Buffer gets the page
// straight away and is cut back to its previous length on failure, any
// other writer gets the page in one Write once it is complete (rendered
// into a pooled buffer, not pongo2's ExecuteWriter, which allocates a
// buffer of 1.3× the template's source on every call).
//
// On a cache that batches (a networked backend), the page goes through
// fc.Page: the lookups of every block the page reaches go out in one
// round trip per level of nesting, and the stores of the fragments it
// renders in one pipeline (see fragment.Cache.Page; the template then runs
// more than once, into a buffer). fc is the cache the template's blocks
// are bound to (Bind, With); blocks bound to another cache look themselves
// up.
func Execute(ctx context.Context, fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if fc.Batches() {
		return fc.Page(ctx, w, tpl, func(ctx context.Context, w io.Writer) error {
			return tpl.ExecuteWriterUnbuffered(WithContext(data, ctx), w)
		})
	}
	data = WithContext(data, ctx)
	if b, ok := w.(*bytes.Buffer); ok {
		n := b.Len()
		if err := tpl.ExecuteWriterUnbuffered(data, b); err != nil {
			b.Truncate(n)
			return err
		}
		return nil
	}
	buf := pageBufs.Get().(*bytes.Buffer)
	defer putPageBuf(buf)
	if err := tpl.ExecuteWriterUnbuffered(data, buf); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

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
