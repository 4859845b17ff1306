package varystack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A block's values stay what it pushed while nested blocks push and pop
// theirs above them, through the stack's growth to a new array.
func TestNestedBlocksKeepTheirValues(t *testing.T) {
	s := Get()
	defer s.Put()
	outer := s.Len()
	for _, v := range []any{"a", "b", "c"} {
		s.Push(v)
	}
	outerVals := s.Since(outer)

	inner := s.Len()
	for i := range 3 * len(s.buf) { // past the first array
		s.Push(i)
	}
	innerVals := s.Since(inner)
	require.Len(t, innerVals, 3*len(s.buf))
	assert.Equal(t, []any{"a", "b", "c"}, outerVals)
	assert.Equal(t, []any{"a", "b", "c"}, s.Since(outer)[:3])

	innerVals = append(innerVals, "appended") // a copy: Since leaves no room
	s.Push("next")
	assert.Equal(t, "next", s.v[len(s.v)-1])
	assert.Equal(t, "appended", innerVals[len(innerVals)-1])

	s.Pop(inner)
	assert.Equal(t, 3, s.Len())
	for _, v := range s.v[3:cap(s.v)] {
		assert.Nil(t, v, "a popped value is still referenced")
	}
	s.Pop(outer)
	assert.Equal(t, 0, s.Len())
}

// Put gives back an empty stack, without the values it held, and without
// the large array a deep page grew.
func TestPutEmpties(t *testing.T) {
	s := Get()
	for i := range 10 * len(s.buf) {
		s.Push(i)
	}
	s.Put()
	assert.Empty(t, s.v)
	assert.Equal(t, len(s.buf), cap(s.v))
	for _, v := range s.buf {
		assert.Nil(t, v)
	}
}
