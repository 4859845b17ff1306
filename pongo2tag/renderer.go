package pongo2tag

import (
	"io"
	"sync"

	"github.com/flosch/pongo2/v6"
)

// renderer holds what one execution passes to fragment.Render that would
// otherwise be allocated on every execution, hits included: the body
// callback (a closure over the context; a pooled renderer keeps its method
// value) and the vary_on slice. Render keeps neither after it returns.
type renderer struct {
	n      *cacheNode
	ctx    *pongo2.ExecutionContext
	body   func(io.Writer) error // r.render, bound once per renderer
	varyOn []any
}

func (r *renderer) render(w io.Writer) error { return r.n.renderBody(r.ctx, w) }

type rendererPool struct{ pool sync.Pool }

var renderers rendererPool

func (p *rendererPool) get(n *cacheNode, ctx *pongo2.ExecutionContext) *renderer {
	r, _ := p.pool.Get().(*renderer)
	if r == nil {
		r = new(renderer)
		r.body = r.render
	}
	r.n, r.ctx = n, ctx
	return r
}

// put returns r to the pool once Render has returned.
func (p *rendererPool) put(r *renderer) {
	clear(r.varyOn) // do not keep the values alive
	r.n, r.ctx, r.varyOn = nil, nil, r.varyOn[:0]
	p.pool.Put(r)
}
