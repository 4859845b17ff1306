package backends_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/fragcache/fragcache/backends"
)

// rawCache returns a Cache without a key prefix over a Simple backend, so
// that tests can read and write the exact bytes the Cache stores.
func rawCache(opts backends.CacheOptions) (*backends.Cache, *backends.Simple) {
	s := backends.NewSimple(0)
	return backends.New(s, opts), s
}

func rawGet(t testing.TB, s *backends.Simple, key string) []byte {
	t.Helper()
	b, found, err := s.Get(context.Background(), key)
	require.NoError(t, err)
	require.True(t, found, "backend has no %q", key)
	return b
}

func TestSetStoresEveryIntegerKindAsDecimalText(t *testing.T) {
	ctx := context.Background()
	values := []any{
		int(-42), int8(math.MinInt8), int16(math.MaxInt16), int32(math.MinInt32), int64(math.MinInt64),
		uint(7), uint8(math.MaxUint8), uint16(math.MaxUint16), uint32(math.MaxUint32), uint64(math.MaxUint64),
		int(0),
	}
	c, s := rawCache(backends.CacheOptions{})
	for _, v := range values {
		t.Run(fmt.Sprintf("%T(%v)", v, v), func(t *testing.T) {
			require.NoError(t, c.Set(ctx, "n", v))
			assert.Equal(t, fmt.Sprint(v), string(rawGet(t, s, "n")), "stored bytes")

			// It decodes back into its own kind unchanged.
			dst := reflect.New(reflect.TypeOf(v))
			found, err := c.Get(ctx, "n", dst.Interface())
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, v, dst.Elem().Interface())
		})
	}
}

func TestSetIntegerThenIncWorksOnTheStoredText(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	require.NoError(t, c.Set(ctx, "n", uint16(41)))
	n, err := c.Inc(ctx, "n", 1)
	require.NoError(t, err)
	assert.Equal(t, int64(42), n)
}

func TestStringsAndBytesRoundTripVerbatim(t *testing.T) {
	ctx := context.Background()
	texts := []string{"", "42", "-7", "!not codec bytes", "s", "b", "héllo wörld", "\x00\xff"}
	c, s := rawCache(backends.CacheOptions{})
	for _, text := range texts {
		t.Run(fmt.Sprintf("%q", text), func(t *testing.T) {
			require.NoError(t, c.Set(ctx, "str", text))
			require.NoError(t, c.Set(ctx, "bin", []byte(text)))
			assert.Equal(t, "\xf5"+text, string(rawGet(t, s, "str")), "a string is 0xF5 + its text")
			assert.Equal(t, "\xf6"+text, string(rawGet(t, s, "bin")), "a []byte is 0xF6 + its bytes")

			var str string
			_, err := c.Get(ctx, "str", &str)
			require.NoError(t, err)
			assert.Equal(t, text, str)

			var bin []byte
			_, err = c.Get(ctx, "bin", &bin)
			require.NoError(t, err)
			assert.Equal(t, []byte(text), bin, "a found []byte is never nil, even when empty")

			// Decoding into any keeps the stored type: text that looks
			// like an integer or codec bytes stays text.
			var anyStr, anyBin any
			_, err = c.Get(ctx, "str", &anyStr)
			require.NoError(t, err)
			assert.Equal(t, text, anyStr)
			_, err = c.Get(ctx, "bin", &anyBin)
			require.NoError(t, err)
			assert.Equal(t, []byte(text), anyBin)
		})
	}
}

func TestStringThatLooksLikeAnIntegerIsNotAnInteger(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	require.NoError(t, c.Set(ctx, "n", "42"))
	_, err := c.Inc(ctx, "n", 1)
	assert.ErrorIs(t, err, backends.ErrNotInteger)
}

type decodePoint struct {
	X, Y int
	Name string
}

func TestDecodeConvertsBetweenStoredAndDestinationTypes(t *testing.T) {
	tests := []struct {
		name   string
		stored any
		dst    any // a pointer to a zero value
		want   any // what dst points to afterwards; nil when an error is expected
	}{
		{"int into a smaller int in range", 100, new(int8), int8(100)},
		{"int into a smaller int out of range is an error", 300, new(int8), nil},
		{"negative int into an unsigned int is an error", -1, new(uint), nil},
		{"int into float64", 7, new(float64), float64(7)},
		{"int into float32", -7, new(float32), float32(-7)},
		{"int into any is int64", int8(7), new(any), int64(7)},
		{"uint64 above MaxInt64 into any is uint64", uint64(math.MaxUint64), new(any), uint64(math.MaxUint64)},
		{"int into string is its decimal text", -12, new(string), "-12"},
		{"int into []byte is its decimal text", 12, new([]byte), []byte("12")},
		{"int into bool is an error", 1, new(bool), nil},
		{"string into []byte", "text", new([]byte), []byte("text")},
		{"string into any is a string", "text", new(any), "text"},
		{"string into int is an error", "12", new(int), nil},
		{"[]byte into string", []byte("text"), new(string), "text"},
		{"[]byte into any is a []byte", []byte("text"), new(any), []byte("text")},
		{"[]byte into a struct is an error", []byte("text"), new(decodePoint), nil},
		{"struct through the codec", decodePoint{1, 2, "p"}, new(decodePoint), decodePoint{1, 2, "p"}},
		{"struct into int is an error", decodePoint{1, 2, "p"}, new(int), nil},
		{"float through the codec", 1.5, new(float64), 1.5},
		{"bool through the codec", true, new(bool), true},
		{
			"map into any decodes numbers loosely as int64 and float64",
			map[string]any{"i": 1, "u": uint8(2), "f": float32(1.5), "s": "x", "l": []any{int16(-3)}, "n": nil},
			new(any),
			map[string]any{"i": int64(1), "u": uint64(2), "f": float64(1.5), "s": "x", "l": []any{int64(-3)}, "n": nil},
		},
	}
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Set(ctx, "k", tt.stored))
			v, err := c.GetValue(ctx, "k")
			require.NoError(t, err)
			err = v.Decode(tt.dst)
			if tt.want == nil {
				require.ErrorIs(t, err, backends.ErrDecode)
				assert.Contains(t, err.Error(), fmt.Sprintf("%T", tt.dst), "the error names the destination type")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, reflect.ValueOf(tt.dst).Elem().Interface())
		})
	}
}

func TestDecodeRejectsABadDestinationWithoutPanicking(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	stored := []any{7, "text", []byte("bytes"), decodePoint{X: 1}}
	dsts := []any{nil, 0, "", (*string)(nil), (*[]byte)(nil), (*any)(nil), (*int)(nil), (*decodePoint)(nil)}
	for _, s := range stored {
		for _, dst := range dsts {
			t.Run(fmt.Sprintf("%T into %T", s, dst), func(t *testing.T) {
				require.NoError(t, c.Set(ctx, "k", s))
				v, err := c.GetValue(ctx, "k")
				require.NoError(t, err)
				assert.ErrorIs(t, v.Decode(dst), backends.ErrDecode)
			})
		}
	}
}

func TestDecodeOfAMissIsErrDecode(t *testing.T) {
	var v backends.Value
	assert.False(t, v.Found())
	var s string
	assert.ErrorIs(t, v.Decode(&s), backends.ErrDecode)
}

func TestGetOfAMissLeavesTheDestinationAlone(t *testing.T) {
	c, _ := rawCache(backends.CacheOptions{})
	dst := "unchanged"
	found, err := c.Get(context.Background(), "missing", &dst)
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, "unchanged", dst)
}

type nestedDoc struct {
	Title  string
	Inner  *decodePoint
	Points []decodePoint
	Counts map[string]int
	Raw    []byte
	Any    any
}

// assertPlainData fails unless v is built only from the types msgpack's
// loose interface decoding produces: no struct, pointer or named type.
func assertPlainData(t *testing.T, path string, v any) {
	t.Helper()
	switch x := v.(type) {
	case nil, bool, string, []byte, int64, uint64, float64:
	case map[string]any:
		for k, e := range x {
			assertPlainData(t, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			assertPlainData(t, fmt.Sprintf("%s[%d]", path, i), e)
		}
	default:
		t.Errorf("%s: decoded a %T", path, v)
	}
}

func TestCodecBlobDecodesIntoAnyAsPlainDataOnly(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	doc := nestedDoc{
		Title:  "t",
		Inner:  &decodePoint{X: 1},
		Points: []decodePoint{{Y: 2}},
		Counts: map[string]int{"a": 1},
		Raw:    []byte{1, 2},
		Any:    decodePoint{Name: "inner"},
	}
	require.NoError(t, c.Set(ctx, "doc", doc))
	var got any
	_, err := c.Get(ctx, "doc", &got)
	require.NoError(t, err)
	assertPlainData(t, "doc", got)
	require.IsType(t, map[string]any{}, got)
	assert.Equal(t, "t", got.(map[string]any)["Title"])
}

func TestCodecBlobWithAnUnknownExtensionTypeIsErrDecode(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	// fixext1 with application type 42: msgpack would instantiate whatever
	// Go type was registered for 42; nothing is, so it must fail cleanly.
	require.NoError(t, s.Set(ctx, "k", []byte("\xf7\xd4\x2a\x00"), backends.NoExpiry))
	var got any
	_, err := c.Get(ctx, "k", &got)
	assert.ErrorIs(t, err, backends.ErrDecode)
	assert.Nil(t, got)
}

func TestJSONCodecIsPluggable(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{Codec: backends.JSONCodec{}})
	p := decodePoint{X: 1, Y: -2, Name: "p"}
	require.NoError(t, c.Set(ctx, "p", p))

	want, err := json.Marshal(p)
	require.NoError(t, err)
	assert.Equal(t, "\xf7"+string(want), string(rawGet(t, s, "p")), "0xF7 + the codec's bytes")

	var got decodePoint
	_, err = c.Get(ctx, "p", &got)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	var loose any
	_, err = c.Get(ctx, "p", &loose)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"X": float64(1), "Y": float64(-2), "Name": "p"}, loose)

	// Integers, strings and []byte bypass the codec.
	require.NoError(t, c.Set(ctx, "n", 5))
	assert.Equal(t, "5", string(rawGet(t, s, "n")))
}

func TestSetOfAValueTheCodecCannotEncodeIsAnErrorNamingTheKey(t *testing.T) {
	c, _ := rawCache(backends.CacheOptions{})
	err := c.Set(context.Background(), "fn", func() {})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"fn"`)
	assert.Contains(t, err.Error(), "func()")
}

type decodeLists struct {
	L []int64
	M map[string]any
	S []string
	P []decodePoint
}

func TestCorruptCodecBytesAreErrDecodeNotACrash(t *testing.T) {
	deep := strings.Repeat("\x91", 20000) + "\x01" // 20000 nested one-element arrays
	corrupt := []struct{ name, raw string }{
		{"no codec bytes", "\xf7"},
		{"reserved byte", "\xf7\xc1"},
		{"array shorter than declared", "\xf7\x92\x01"},
		{"array32 declaring 4 billion items", "\xf7\xdd\xff\xff\xff\xff"},
		{"array32 declaring more items than bytes", "\xf7\xdd\x00\x00\x01\x00\x01\x01\x01"},
		{"map32 declaring 4 billion entries", "\xf7\xdf\xff\xff\xff\xff"},
		{"map16 declaring more entries than bytes", "\xf7\xde\xff\xff\xa1a\x01"},
		{"str32 declaring 4 billion bytes", "\xf7\xdb\xff\xff\xff\xff"},
		{"bin32 declaring 4 billion bytes", "\xf7\xc6\xff\xff\xff\xff"},
		{"ext32 declaring 4 billion bytes", "\xf7\xc9\xff\xff\xff\xff\x05"},
		{"truncated float64", "\xf7\xcb\x00\x00"},
		{"field value missing", "\xf7\x81\xa1L"},
		{"list field declaring 4 billion items", "\xf7\x81\xa1L\xdd\xff\xff\xff\xff"},
		{"map field declaring 4 billion entries", "\xf7\x81\xa1M\xdf\xff\xff\xff\xff"},
		{"nesting too deep", "\xf7" + deep},
	}
	dsts := []func() any{
		func() any { return new(any) },
		func() any { return new(map[string]any) },
		func() any { return new([]int64) },
		func() any { return new([]decodePoint) },
		func() any { return new(decodeLists) },
	}
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, tt := range corrupt {
		for _, dst := range dsts {
			d := dst()
			t.Run(fmt.Sprintf("%s into %T", tt.name, d), func(t *testing.T) {
				require.NoError(t, s.Set(ctx, "k", []byte(tt.raw), backends.NoExpiry))
				found, err := c.Get(ctx, "k", d)
				assert.False(t, found)
				assert.ErrorIs(t, err, backends.ErrDecode)
			})
		}
	}
}

func TestMsgpackCodecAcceptsEveryWellFormedValue(t *testing.T) {
	// The length checks must not reject what msgpack itself writes:
	// every container size class and every scalar width.
	values := []any{
		nil, true, false, int64(-1), int64(-33), int64(200), int64(-200), int64(70000), int64(-70000),
		int64(math.MaxInt64), uint64(math.MaxUint64), float32(1.5), 2.5,
		"", strings.Repeat("s", 31), strings.Repeat("s", 200), strings.Repeat("s", 70000),
		[]byte{}, make([]byte, 300), make([]byte, 70000),
		[]any{}, make([]any, 15), make([]any, 16), make([]any, 70000),
		map[string]any{}, map[string]any{"a": []any{map[string]any{"b": nil}}},
		time.Unix(1700000000, 935500000).UTC(), time.Unix(1<<35, 1).UTC(),
		nestedDoc{Title: "t", Inner: &decodePoint{}, Points: make([]decodePoint, 20), Counts: map[string]int{}},
	}
	big := map[string]any{}
	for i := range 70000 {
		big[fmt.Sprint(i)] = i
	}
	values = append(values, big)
	for _, v := range values {
		t.Run(fmt.Sprintf("%T", v), func(t *testing.T) {
			b, err := msgpack.Marshal(v)
			require.NoError(t, err)
			dst := reflect.New(reflect.TypeOf(&v).Elem())
			if v != nil {
				dst = reflect.New(reflect.TypeOf(v))
			}
			require.NoError(t, backends.MsgpackCodec{}.Unmarshal(b, dst.Interface()))
		})
	}
}

func TestValueBytesSharesTheBackendsMemory(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, v := range []any{"fragment", []byte("fragment")} {
		t.Run(fmt.Sprintf("%T", v), func(t *testing.T) {
			require.NoError(t, c.Set(ctx, "k", v))
			val, err := c.GetValue(ctx, "k")
			require.NoError(t, err)
			b, ok := val.Bytes()
			require.True(t, ok)
			assert.Equal(t, "fragment", string(b))
			raw := rawGet(t, s, "k")
			assert.Equal(t, unsafe.Pointer(&raw[1]), unsafe.Pointer(&b[0]), "Bytes must not copy")
		})
	}
}

func TestValueBytesOfEachKind(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	tests := []struct {
		name   string
		stored any
		want   []byte
		ok     bool
	}{
		{"an integer gives its decimal text", -5, []byte("-5"), true},
		{"an empty string gives an empty slice", "", []byte{}, true},
		{"codec bytes give nothing", decodePoint{}, nil, false},
		{"a string gives its text", "text", []byte("text"), true},
		{"a []byte gives its bytes", []byte{0xf7, 1}, []byte{0xf7, 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Set(ctx, "k", tt.stored))
			v, err := c.GetValue(ctx, "k")
			require.NoError(t, err)
			require.True(t, v.Found())
			b, ok := v.Bytes()
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, b)

			// Text is Bytes without integers: a fragment is never a number.
			text, ok := v.Text()
			if isInt := tt.name == "an integer gives its decimal text"; isInt {
				assert.False(t, ok, "Text of an integer")
				assert.Nil(t, text)
			} else {
				assert.Equal(t, tt.ok, ok, "Text")
				assert.Equal(t, tt.want, text, "Text")
			}
		})
	}
	t.Run("a miss gives nothing", func(t *testing.T) {
		v, err := c.GetValue(ctx, "missing")
		require.NoError(t, err)
		assert.False(t, v.Found())
		b, ok := v.Bytes()
		assert.False(t, ok)
		assert.Nil(t, b)
		b, ok = v.Text()
		assert.False(t, ok)
		assert.Nil(t, b)
	})
}

// Decimal text is an integer only within int64 or uint64 range, as
// strconv reads it; beyond, or with a sign strconv would accept but
// INCRBY would not, it is foreign text and reads back as it is.
func TestIntegerTextAtTheEdgesOfItsRange(t *testing.T) {
	tests := []struct {
		raw  string
		want any // what it decodes to in `any`
	}{
		{"0", int64(0)},
		{"-0", int64(0)},
		{"007", int64(7)},
		{"9223372036854775807", int64(math.MaxInt64)},
		{"9223372036854775808", uint64(math.MaxInt64) + 1},
		{"18446744073709551615", uint64(math.MaxUint64)},
		{"000000000000000000018446744073709551615", uint64(math.MaxUint64)},
		{"18446744073709551616", "18446744073709551616"},
		{"-9223372036854775808", int64(math.MinInt64)},
		{"-9223372036854775809", "-9223372036854775809"},
		{"+5", "+5"},
		{"-", "-"},
		{"1_000", "1_000"},
		{"٣", "٣"}, // an Arabic-Indic digit: not decimal for INCRBY either
	}
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			require.NoError(t, s.Set(ctx, "k", []byte(tt.raw), backends.NoExpiry))
			var got any
			_, err := c.Get(ctx, "k", &got)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			v, err := c.GetValue(ctx, "k")
			require.NoError(t, err)
			_, isText := v.Text()
			_, isString := tt.want.(string)
			assert.Equal(t, isString, isText, "Text is for text, never for an integer")
		})
	}
}
