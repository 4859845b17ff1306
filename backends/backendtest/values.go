package backendtest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// record is a struct value that goes through the codec.
type record struct {
	Name  string
	Count int
	Tags  []string
	Attrs map[string]string
}

// roundTrips cover every stored form of a value: decimal integers, marked
// strings and byte slices (including ones that look like integers or codec
// data), and codec values.
var roundTrips = []struct {
	name  string
	value any
}{
	{"int", 42},
	{"negative int", -42},
	{"zero int", 0},
	{"int8 minimum", int8(math.MinInt8)},
	{"uint16 maximum", uint16(math.MaxUint16)},
	{"int64 maximum", int64(math.MaxInt64)},
	{"int64 minimum", int64(math.MinInt64)},
	{"uint64 maximum", uint64(math.MaxUint64)},
	{"string", "hello"},
	{"empty string", ""},
	{"unicode string", "héllo, 世界 🌍"},
	{"string of digits", "12345"},
	{"string starting with !", "!not codec data"},
	{"string with NULs", "a\x00b\x00"},
	{"byte slice", []byte("raw bytes")},
	{"empty byte slice", []byte{}},
	{"binary byte slice with NULs", []byte{0, 1, 2, 0, 0xff, 0xfe, 0}},
	{"byte slice starting with !", []byte("!\x01\x02")},
	{"byte slice of digits", []byte("12345")},
	{"byte slice of a negative number", []byte("-7")},
	{"struct", record{Name: "n", Count: 3, Tags: []string{"a", "b"}, Attrs: map[string]string{"k": "v"}}},
	{"map", map[string]int{"a": 1, "b": 2}},
	{"slice", []string{"x", "y"}},
	{"bool", true},
	{"float", 2.5},
	{"nil", nil},
}

// foreignValues are bytes another program (redis-cli, a Python app) may
// write under a key: text whose first byte older envelopes took for their
// markers, text that only looks like an integer, binary and empty values.
var foreignValues = []string{"bacon", "spam", "sausage", "", "héllo, 世界", "1.5", "12abc", "\x00\x01binary\xff"}

func (s *suite) testForeign(t *testing.T) {
	s.runRules(t, []rule{
		{"a value written through Backend.Set reads back byte-identical into string, []byte and Text", func(t *testing.T, e *env) {
			for i, raw := range foreignValues {
				key := fmt.Sprint("foreign ", i)
				require.NoError(t, e.b.Set(e.ctx, key, []byte(raw), backends.NoExpiry))
				var str string
				found, err := e.c.Get(e.ctx, key, &str)
				require.NoError(t, err, "Get(%q) of %q", key, raw)
				require.True(t, found, "Get(%q)", key)
				assert.Equal(t, raw, str, "Get into string")
				var bin []byte
				_, err = e.c.Get(e.ctx, key, &bin)
				require.NoError(t, err)
				assert.Equal(t, []byte(raw), bin, "Get into []byte")
				v, err := e.c.GetValue(e.ctx, key)
				require.NoError(t, err)
				text, ok := v.Text()
				assert.True(t, ok, "Text of %q", raw)
				assert.Equal(t, raw, string(text), "Text")
			}
		}},
		{"a value starting with '!' (Flask's pickle) is ErrDecode, not text", func(t *testing.T, e *env) {
			require.NoError(t, e.b.Set(e.ctx, "pickle", []byte("!\x80\x04K*."), backends.NoExpiry))
			var str string
			found, err := e.c.Get(e.ctx, "pickle", &str)
			assert.ErrorIs(t, err, backends.ErrDecode)
			assert.False(t, found)
			v, err := e.c.GetValue(e.ctx, "pickle")
			require.NoError(t, err)
			_, ok := v.Text()
			assert.False(t, ok, "Text of a pickle")
		}},
	})
}

func (s *suite) testGetMiss(t *testing.T) {
	s.runRules(t, []rule{
		{"Get of a missing key is a miss, not an error, and leaves dst alone", func(t *testing.T, e *env) {
			dst := "untouched"
			found, err := e.c.Get(e.ctx, "missing", &dst)
			require.NoError(t, err)
			assert.False(t, found)
			assert.Equal(t, "untouched", dst)
		}},
		{"GetValue of a missing key is the zero Value", func(t *testing.T, e *env) {
			v, err := e.c.GetValue(e.ctx, "missing")
			require.NoError(t, err)
			assert.False(t, v.Found())
		}},
		{"Backend.Get of a missing key is found=false without an error", func(t *testing.T, e *env) {
			_, found, err := e.b.Get(e.ctx, "missing")
			require.NoError(t, err)
			assert.False(t, found)
		}},
		{"Get of a deleted key is a miss", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", "v"))
			_, err := e.c.Delete(e.ctx, "k")
			require.NoError(t, err)
			requireMiss(t, e, e.c, "k")
		}},
	})
}

func (s *suite) testRoundTrip(t *testing.T) {
	for _, tc := range roundTrips {
		t.Run("Set then Get returns the same "+tc.name, func(t *testing.T) {
			e := s.env(t)
			require.NoError(t, e.c.Set(e.ctx, "k", tc.value))
			requireValue(t, e, e.c, "k", tc.value)

			v, err := e.c.GetValue(e.ctx, "k")
			require.NoError(t, err)
			dst := newDst(tc.value)
			require.NoError(t, v.Decode(dst), "GetValue(k).Decode")
			assertSame(t, tc.value, deref(dst), "GetValue(k).Decode")

			vs, err := e.c.GetMany(e.ctx, "k")
			require.NoError(t, err)
			require.Len(t, vs, 1)
			dst = newDst(tc.value)
			require.NoError(t, vs[0].Decode(dst), "GetMany(k)[0].Decode")
			assertSame(t, tc.value, deref(dst), "GetMany(k)[0].Decode")

			if isInteger(tc.value) {
				// Decimal text is what lets Inc (and INCRBY, incr) work on
				// values written by Set.
				raw, found, err := e.b.Get(e.ctx, "k")
				require.NoError(t, err)
				require.True(t, found)
				assert.Equal(t, fmt.Sprint(tc.value), string(raw), "an integer is stored as decimal text")
			}
		})
	}
}

func isInteger(v any) bool {
	if v == nil {
		return false
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func (s *suite) testOverwrite(t *testing.T) {
	cases := []struct {
		name          string
		first, second any
	}{
		{"Set replaces an int with another int", 1, 2},
		{"Set replaces an int with a string", 1, "one"},
		{"Set replaces a string with a struct", "x", record{Name: "r"}},
		{"Set replaces a struct with a byte slice", record{Name: "r"}, []byte("b")},
		{"Set replaces a byte slice with an int", []byte("b"), 7},
		{"Set replaces a long value with a shorter one", strings.Repeat("x", 1000), "y"},
		{"Set replaces a value with nil", "x", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := s.env(t)
			require.NoError(t, e.c.Set(e.ctx, "k", tc.first))
			require.NoError(t, e.c.Set(e.ctx, "k", tc.second))
			requireValue(t, e, e.c, "k", tc.second)
		})
	}
	// fragment hands a hit to the page (html/template as a string) without
	// copying it, so a value a backend returned must stay as it was.
	t.Run("a returned value is never modified by later calls", func(t *testing.T) {
		e := s.env(t)
		first := []byte(strings.Repeat("a", 64))
		require.NoError(t, e.b.Set(e.ctx, "k", bytes.Clone(first), 0))
		got, found, err := e.b.Get(e.ctx, "k")
		require.NoError(t, err)
		require.True(t, found)
		many, err := e.b.GetMany(e.ctx, []string{"k"})
		require.NoError(t, err)
		require.Len(t, many, 1)
		for i := range 3 { // same length, other bytes; other keys; reads in between
			require.NoError(t, e.b.Set(e.ctx, "k", bytes.Repeat([]byte{'b' + byte(i)}, len(first)), 0))
			require.NoError(t, e.b.Set(e.ctx, fmt.Sprintf("other%d", i), bytes.Repeat([]byte{'z'}, len(first)), 0))
			_, _, err := e.b.Get(e.ctx, "k")
			require.NoError(t, err)
		}
		_, err = e.b.Delete(e.ctx, "k")
		require.NoError(t, err)
		requireBytes(t, first, got, "Get's value after later calls")
		requireBytes(t, first, many[0], "GetMany's value after later calls")
	})
}

// largeSize is a moderate value size: larger than any buffer a backend might
// assume, well below memcached's default 1 MB item limit.
const largeSize = 100 << 10

func (s *suite) testLargeValues(t *testing.T) {
	big := make([]byte, largeSize)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big) // never fails
	s.runRules(t, []rule{
		{"a 100 KB byte slice round-trips", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", big))
			var got []byte
			found, err := e.c.Get(e.ctx, "k", &got)
			require.NoError(t, err)
			require.True(t, found)
			requireBytes(t, big, got, "Get")
		}},
		{"a 100 KB string round-trips", func(t *testing.T, e *env) {
			require.NoError(t, e.c.Set(e.ctx, "k", string(big)))
			var got string
			found, err := e.c.Get(e.ctx, "k", &got)
			require.NoError(t, err)
			require.True(t, found)
			requireBytes(t, big, []byte(got), "Get")
		}},
		{"a struct with a 100 KB field round-trips through the codec", func(t *testing.T, e *env) {
			want := record{Name: string(big), Count: 1}
			require.NoError(t, e.c.Set(e.ctx, "k", want))
			var got record
			found, err := e.c.Get(e.ctx, "k", &got)
			require.NoError(t, err)
			require.True(t, found)
			requireBytes(t, []byte(want.Name), []byte(got.Name), "Get(k).Name")
			assert.Equal(t, want.Count, got.Count)
		}},
		{"SetMany and GetMany carry several 100 KB values", func(t *testing.T, e *env) {
			items := map[string]any{}
			keys := []string{"a", "b", "c", "d"}
			for i, k := range keys {
				items[k] = big[i:] // distinct values, so a mix-up shows
			}
			require.NoError(t, e.c.SetMany(e.ctx, items))
			vs, err := e.c.GetMany(e.ctx, keys...)
			require.NoError(t, err)
			require.Len(t, vs, len(keys))
			for i, k := range keys {
				var got []byte
				require.NoError(t, vs[i].Decode(&got), "GetMany()[%d]", i)
				requireBytes(t, items[k].([]byte), got, "GetMany value of "+k)
			}
		}},
	})
}
