package htmltemplate

import (
	"context"
	"io"
)

// batches reports whether executions go through fragment.Cache.Page, which
// batches the blocks' lookups of a page on networked backends.
func (t *Template) batches() bool {
	return t.set.fc != nil && t.set.fc.Batches()
}

// page runs one execution with ctx: through fragment.Cache.Page when the
// cache batches (then run may run more than once, into Page's buffer, with
// Page's ctx), straight into w otherwise.
func (t *Template) page(ctx context.Context, w io.Writer, name string, run func(ctx context.Context, w io.Writer) error) error {
	if !t.batches() {
		return run(ctx, w)
	}
	return t.set.fc.Page(ctx, w, pageID{t.set, name}, run)
}

// pageID identifies a template of a set to fragment.Cache.Page.
type pageID struct {
	set  *set
	name string
}
