package varyon

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Put empties the list and drops the values it held, short or long, so
// that the pool keeps none of them alive.
func TestPutDropsTheValues(t *testing.T) {
	for _, n := range []int{3, maxPooled, maxPooled + 1} {
		l := Get()
		for i := range n {
			l.Values = append(l.Values, i)
		}
		all := l.Values[:cap(l.Values)]
		l.Put()
		assert.Empty(t, l.Values)
		for _, v := range all {
			assert.Nil(t, v, "%d values: one is still referenced", n)
		}
	}
}
