// Package varyon pools the slices pongo2tag and jettag pass a block's
// vary_on values to fragment.Cache.Render in. Render keeps no reference to
// Call.VaryOn after it returns, but the slice escapes (Call's other fields
// do), so a slice of its own would be an allocation on every hit. A block
// nested in another's body takes a slice of its own: its parent's is not
// back in the pool yet. (htmltemplate keeps its values in the pooled record
// that also holds the block's body.)
package varyon

import "sync"

// List is one block call's vary_on values.
type List struct {
	// Values are the values, appended by the caller.
	Values []any
}

var pool = sync.Pool{New: func() any { return new(List) }}

// maxPooled is the largest capacity Put keeps: a rare long vary_on list is
// not worth keeping pooled.
const maxPooled = 16

// Get returns an empty List from the pool.
func Get() *List { return pool.Get().(*List) }

// Put empties l, dropping its values so the pool keeps none alive, and
// returns it to the pool once Render has returned; l must not be used
// after.
func (l *List) Put() {
	clear(l.Values)
	l.Values = l.Values[:0]
	if cap(l.Values) <= maxPooled {
		pool.Put(l)
	}
}
