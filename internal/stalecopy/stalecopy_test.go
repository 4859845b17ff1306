package stalecopy

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func byteCost(b []byte) int { return len(b) }

func TestCopiesAreBoundedByCost(t *testing.T) {
	cp := New(10, byteCost, bytes.Clone)
	keep := cp.Keep
	keep("a", 1, 0, []byte("aaaa"))
	keep("b", 1, 0, []byte("bbbb"))
	keep("c", 1, 0, []byte("cccc")) // 12: a goes
	_, ok := cp.Get("a", 0)
	assert.False(t, ok)
	for _, k := range []string{"b", "c"} {
		got, ok := cp.Get(k, 0)
		require.True(t, ok)
		assert.Equal(t, bytes.Repeat([]byte(k), 4), got)
	}
	keep("b", 2, 5, []byte("BB")) // a new version replaces the old
	got, ok := cp.Get("b", 4)
	require.True(t, ok)
	assert.Equal(t, "BB", string(got))
	_, ok = cp.Get("b", 5)
	assert.False(t, ok, "not after its grace period")
	keep("huge", 1, 0, bytes.Repeat([]byte("x"), 11))
	_, ok = cp.Get("huge", 0)
	assert.False(t, ok, "a value costing more than the bound is not kept")
	cp.Clear()
	_, ok = cp.Get("c", 0)
	assert.False(t, ok)
}

func TestKeepCopiesOnlyAVersionNotKeptYet(t *testing.T) {
	calls := 0
	cp := New(100, byteCost, func(b []byte) []byte { calls++; return bytes.Clone(b) })
	v := []byte("v")
	cp.Keep("k", 7, 0, v)
	cp.Keep("k", 7, 0, v)
	assert.Equal(t, 1, calls)
	v[0] = 'x' // the caller's bytes change: the copy does not
	got, _ := cp.Get("k", 0)
	assert.Equal(t, "v", string(got))
	cp.Keep("k", 8, 0, v)
	assert.Equal(t, 2, calls)
}

func TestNilCopiesKeepNothing(t *testing.T) {
	var cp *Copies[int]
	cp.Keep("a", 1, 0, 1)
	_, ok := cp.Get("a", 0)
	assert.False(t, ok)
	cp.Clear()
}
