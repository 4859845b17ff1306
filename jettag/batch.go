package jettag

import (
	"context"
	"io"
	"maps"

	"github.com/CloudyKit/jet/v6"
)

// Execute runs tpl with vars and data into w, with ctx (typically the
// request's) as the ContextVar of its cache blocks, as
// tpl.Execute(w, WithContext(vars, ctx), data) does, but through
// fragment.Cache.Page: on a networked backend the lookups of every block
// the page reaches go out in one round trip per level of nesting, and the
// stores of the fragments it renders in one pipeline (the template then
// runs more than once, into a buffer; nothing is written to w when it
// fails). vars is not modified.
func (t *Tags) Execute(ctx context.Context, tpl *jet.Template, w io.Writer, vars jet.VarMap, data any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	run := func(ctx context.Context, w io.Writer) error {
		v := make(jet.VarMap, len(vars)+1)
		maps.Copy(v, vars)
		return tpl.Execute(w, WithContext(v, ctx), data)
	}
	if !t.fc.Batches() {
		return run(ctx, w)
	}
	return t.fc.Page(ctx, w, tpl, run)
}
