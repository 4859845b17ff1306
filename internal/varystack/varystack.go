// Package varystack keeps the vary_on values of the cache blocks of one
// render while fragment.Cache renders each block.
//
// fragment.Cache.Render and Fragment read fragment.Call.VaryOn only while
// they run, yet the slice escapes to the heap, so a block that built it on
// its own would allocate on every hit. A render's blocks run one at a time
// on its goroutine, and those rendered inside a block's body (on a miss)
// run while their parent's values are still in use: so one Stack per
// render serves them all, each block pushing its values above its parent's
// and popping them when Render returns. pongo2tag keeps one in the binding
// of a render through Execute, htmltemplate in the record of an execution;
// a block without such a render (jettag's; pongo2's through Bind or With,
// whose bindings renders on many goroutines share) takes a Stack of its own
// for the call, which costs what a pooled slice per block did.
package varystack

import "sync"

// Stack is a stack of vary_on values. The zero value is not ready: use Get.
type Stack struct {
	v   []any
	buf [8]any // v's first array: most pages need no other
}

var pool = sync.Pool{New: func() any {
	s := new(Stack)
	s.v = s.buf[:0]
	return s
}}

// Get returns an empty Stack from the pool.
func Get() *Stack { return pool.Get().(*Stack) }

// Put empties s and returns it to the pool; s must not be used after.
// A stack that a deep page grew is given back with its first array only.
func (s *Stack) Put() {
	clear(s.v)
	clear(s.buf[:]) // the values v held before it grew
	if cap(s.v) > 4*len(s.buf) {
		s.v = s.buf[:0]
	}
	s.v = s.v[:0]
	pool.Put(s)
}

// Len returns the number of values on s: a block's start, for Since and
// Pop.
func (s *Stack) Len() int { return len(s.v) }

// Push puts v on top of s.
func (s *Stack) Push(v any) { s.v = append(s.v, v) }

// Since returns the values pushed since s had n, as a slice that nothing
// can append to in place (for fragment.Call.VaryOn). It stays valid until
// Pop(n), even if later pushes move s to another array.
func (s *Stack) Since(n int) []any { return s.v[n:len(s.v):len(s.v)] }

// Pop drops the values pushed since s had n, keeping none of them alive.
func (s *Stack) Pop(n int) {
	clear(s.v[n:])
	s.v = s.v[:n]
}
