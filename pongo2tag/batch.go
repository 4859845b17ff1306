package pongo2tag

import (
	"context"
	"io"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
)

// Execute renders tpl with data into w, with ctx (typically the request's)
// for the cache blocks' backend calls, as
// tpl.ExecuteWriter(WithContext(data, ctx), w) does, but through
// fc.Page: on a networked backend the lookups of every block the page
// reaches go out in one round trip per level of nesting, and the stores
// of the fragments it renders in one pipeline (see fragment.Cache.Page;
// the template then runs more than once, into a buffer). fc is the cache
// the template's blocks are bound to (Bind, With); blocks bound to another
// cache look themselves up. Nothing is written to w when the render fails.
func Execute(ctx context.Context, fc *fragment.Cache, tpl *pongo2.Template, data pongo2.Context, w io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if !fc.Batches() {
		return tpl.ExecuteWriter(WithContext(data, ctx), w)
	}
	return fc.Page(ctx, w, tpl, func(ctx context.Context, w io.Writer) error {
		return tpl.ExecuteWriterUnbuffered(WithContext(data, ctx), w)
	})
}
