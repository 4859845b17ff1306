package pongo2tag

import "sync"

// varyOn holds the vary_on values of one execution of a block for
// fragment.Render, which keeps no reference to them after it returns but
// lets the slice escape: pooled, a hit allocates nothing for them.
type varyOn struct{ v []any }

type varyOnPool struct{ pool sync.Pool }

var varyOns varyOnPool

func (p *varyOnPool) get() *varyOn {
	vs, _ := p.pool.Get().(*varyOn)
	if vs == nil {
		vs = new(varyOn)
	}
	return vs
}

// put returns vs to the pool once Render has returned.
func (p *varyOnPool) put(vs *varyOn) {
	clear(vs.v) // do not keep the values alive
	vs.v = vs.v[:0]
	p.pool.Put(vs)
}
