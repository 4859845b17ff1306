package stalecopy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func byteCost(b []byte) int { return len(b) }

func TestCopiesAreBoundedByCost(t *testing.T) {
	// Room for 10 bytes of values under one-byte keys, beside two entries'
	// overhead.
	cp := New(10+2*(1+EntryOverhead), byteCost, bytes.Clone)
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
	keep("huge", 1, 0, bytes.Repeat([]byte("x"), 11+2*(1+EntryOverhead)))
	_, ok = cp.Get("huge", 0)
	assert.False(t, ok, "a value costing more than the bound is not kept")
	cp.Clear()
	_, ok = cp.Get("c", 0)
	assert.False(t, ok)
}

func TestKeepCopiesOnlyAVersionNotKeptYet(t *testing.T) {
	calls := 0
	cp := New(100+EntryOverhead, byteCost, func(b []byte) []byte { calls++; return bytes.Clone(b) })
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

// TestKeysAndEntriesCount: a value that costs nothing still costs its key
// and EntryOverhead, so keys chosen by clients cannot grow the copies past
// the bound, and the bound caps their number.
func TestKeysAndEntriesCount(t *testing.T) {
	const bound = 4 << 10
	cp := New(bound, byteCost, bytes.Clone)
	key := string(bytes.Repeat([]byte("k"), 1000))
	for i := range 100 {
		cp.Keep(fmt.Sprint(key, i), 1, 0, nil)
	}
	assert.LessOrEqual(t, cp.n, bound)
	assert.Equal(t, bound/(len(key)+2+EntryOverhead), cp.age.Len(), "as many as fit, keys and overhead counted")
	for i := range 100 {
		cp.Keep(fmt.Sprint(i), 1, 0, nil)
	}
	assert.LessOrEqual(t, cp.age.Len(), bound/EntryOverhead, "the bound caps the number of entries")
}

func TestLimitCount(t *testing.T) {
	cp := New(1<<20, byteCost, bytes.Clone).LimitCount(3)
	for i := range 5 {
		cp.Keep(fmt.Sprint(i), 1, 0, []byte("v"))
	}
	assert.Equal(t, 3, cp.age.Len())
	for i, want := range []bool{false, false, true, true, true} {
		_, ok := cp.Get(fmt.Sprint(i), 0)
		assert.Equal(t, want, ok, "the oldest go first: %d", i)
	}
}
