package memoize

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encode returns the key bytes of one argument.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	var e argEncoder
	require.NoError(t, e.arg(v))
	return e.buf
}

type point struct{ X, Y int }

type secret struct {
	name string
	n    int
}

type node struct {
	Val  int
	Next *node
}

type user struct {
	ID      string
	Session map[string]string // differs between equal users; CacheID hides it
}

func (u user) CacheID() string { return u.ID }

type badMarshaler struct{}

func (badMarshaler) MarshalBinary() ([]byte, error) { return nil, errors.New("no binary form") }

type withTime struct{ at time.Time }

type label string

func TestArgumentEncodingTellsValuesApart(t *testing.T) {
	var zero *point
	tests := []struct {
		name string
		a, b any
	}{
		{"int and string", 1, "1"},
		{"int and int64 behind an interface", []any{1}, []any{int64(1)}},
		{"int and float", []any{1}, []any{1.0}},
		{"string and named string", []any{"x"}, []any{label("x")}},
		{"nil and empty slice", []int(nil), []int{}},
		{"nil and empty map", map[string]int(nil), map[string]int{}},
		{"nil and empty string behind an interface", []any{nil}, []any{""}},
		{"nil pointer and pointer to zero", zero, &point{}},
		{"slice elements do not run together", []string{"a", "bc"}, []string{"ab", "c"}},
		{"string and its bytes in a list", []any{"ab"}, []any{[]byte("ab")}},
		{"array order", [2]int{1, 2}, [2]int{2, 1}},
		{"struct fields", point{1, 2}, point{2, 1}},
		{"unexported fields count", secret{"a", 1}, secret{"a", 2}},
		{"map values", map[string]int{"a": 1}, map[string]int{"a": 2}},
		{"map keys", map[string]int{"a": 1}, map[string]int{"b": 1}},
		{"pointed-to values", &point{1, 2}, &point{1, 3}},
		{"booleans", true, false},
		{"identifiers by id", user{ID: "1"}, user{ID: "2"}},
		{"times by instant", time.Unix(1, 0).UTC(), time.Unix(2, 0).UTC()},
		{"big and small uints", uint64(math.MaxUint64), uint64(1)},
		{"negative ints", -1, 1},
		{"complex numbers", complex(1, 2), complex(2, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NotEqual(t, encode(t, tt.a), encode(t, tt.b))
		})
	}
}

func TestArgumentEncodingIsDeterministic(t *testing.T) {
	big := map[string]int{}
	reversed := map[string]int{}
	for i := range 64 {
		big[fmt.Sprint("k", i)] = i
	}
	for i := 63; i >= 0; i-- {
		reversed[fmt.Sprint("k", i)] = i
	}
	now := time.Now() // carries a monotonic clock reading
	tests := []struct {
		name string
		a, b any
	}{
		{"maps regardless of insertion order", big, reversed},
		{"nested maps", map[int]map[string]bool{1: {"a": true, "b": false}}, map[int]map[string]bool{1: {"b": false, "a": true}}},
		{"distinct pointers to equal values", &point{1, 2}, &point{1, 2}},
		{"identifiers by id alone", user{ID: "7", Session: map[string]string{"a": "1"}}, user{ID: "7"}},
		{"times without their monotonic reading", now, now.Round(0)},
		{"NaN keys", map[float64]int{math.NaN(): 1, math.NaN(): 2}, map[float64]int{math.NaN(): 2, math.NaN(): 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := encode(t, tt.a)
			assert.Equal(t, first, encode(t, tt.b))
			for range 20 { // map iteration order changes between runs
				require.Equal(t, first, encode(t, tt.a))
			}
		})
	}
}

func TestUnsupportedArgumentsAreErrors(t *testing.T) {
	cyclic := &node{Val: 1}
	cyclic.Next = cyclic
	x := 1
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"func", func() {}, "func()"},
		{"channel", make(chan int), "chan int"},
		{"unsafe pointer", unsafe.Pointer(&x), "unsafe.Pointer"},
		{"func inside a struct", struct{ F func() }{}, "func()"},
		{"cycle", cyclic, "deeper than"},
		{"time in an unexported field", withTime{time.Unix(0, 0)}, "unexported field of type time.Time"},
		{"failing MarshalBinary", badMarshaler{}, "no binary form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e argEncoder
			err := e.arg(tt.v)
			require.ErrorIs(t, err, ErrUnsupportedArg)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
