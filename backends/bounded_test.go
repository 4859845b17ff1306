package backends_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// warmDecodeDsts stores the zero value of every destination type and
// decodes it back, once, before any allocation is measured. The first
// decode into a type pays costs that depend on the type and the binary,
// not on the data, and are paid once per process: msgpack builds and
// caches the type's field list, encoders and decoders, and from Go 1.27 on
// reflect's first lookup of a type by name (msgpack's reflect.PointerTo of
// a field's type) builds a table of every type in the binary, a pointer a
// type, 66 KiB in a backends test binary that linked the Redis and
// memcached clients. Unwarmed, whichever hostile value first reached a
// destination's fields was charged that table (Go 1.27.3: 67,976 bytes
// for 6 stored bytes), and the check depended on the test order and on
// the size of the binary rather than on the data.
func warmDecodeDsts(t testing.TB, c *backends.Cache) {
	t.Helper()
	ctx := context.Background()
	for _, dst := range decodeDsts {
		zero := reflect.ValueOf(dst.new()).Elem().Interface()
		if zero == nil {
			zero = map[string]any{"k": []any{int64(1), "v", 1.5, nil, true}}
		}
		require.NoError(t, c.Set(ctx, "warm", zero), dst.name)
		_, err := c.Get(ctx, "warm", dst.new())
		require.NoError(t, err, dst.name)
	}
}

type timeDoc struct {
	Name string
	At   time.Time
}

type mapDoc struct {
	Name string
	M    map[string]any
}

// decodeDsts are the destination types decoding is checked against, as
// makers of fresh pointers.
var decodeDsts = []struct {
	name string
	new  func() any
}{
	{"any", func() any { return new(any) }},
	{"map[string]any", func() any { return new(map[string]any) }},
	{"[]any", func() any { return new([]any) }},
	{"map[string]string", func() any { return new(map[string]string) }},
	{"http.Header", func() any { return new(http.Header) }},
	{"map[int]int", func() any { return new(map[int]int) }},
	{"struct with time.Time", func() any { return new(timeDoc) }},
	{"struct with a map[string]any field", func() any { return new(mapDoc) }},
	{"struct with map and slice fields", func() any { return new(decodeLists) }},
	{"[]struct", func() any { return new([]decodePoint) }},
	{"[]string", func() any { return new([]string) }},
	{"[]int64", func() any { return new([]int64) }},
	{"time.Time", func() any { return new(time.Time) }},
	{"string", func() any { return new(string) }},
	{"[]byte", func() any { return new([]byte) }},
	{"map[string][]map[int]string", func() any { return new(map[string][]map[int]string) }},
	{"[]map[string]string", func() any { return new([]map[string]string) }},
	{"struct with a map[string][]int field", func() any { return new(struct{ M map[string][]int }) }},
}

// hostileValues are stored values (envelope included) that once crashed a
// process or made it allocate far more than their size.
var hostileValues = []struct{ name, raw string }{
	{"fixext1 header hiding a map32 of 4 billion entries", "\xf7\xd4\x00\xdf\xff\xff\xff\xff"},
	{"fixext1 header hiding a map32 of 808 million entries", "\xf7\xd40\xdf0000"},
	{"fixext1 header hiding a map16", "\xf7\xd40\xde\xff\xff"},
	{"ext8 header hiding a map32", "\xf7\xc7\x01\x05\xdf\xff\xff\xff\xff"},
	{"ext32 header hiding a map32", "\xf7\xc9\x00\x00\x00\x01\x05\xdf\xff\xff\xff\xff"},
	{"timestamp64 whose payload reads as a map32", "\xf7\xd7\xff\xdf\x00\x0f\x42\x40\x00\x00\x00"},
	{"map field behind an ext header", "\xf7\x81\xa1M\xd4\x00\xdf\xff\xff\xff\xff"},
	{"map in an array behind an ext header", "\xf7\x91\xd4\x00\xdf\xff\xff\xff\xff"},
	{"empty ext before a map", "\xf7\x92\xc7\x00\x05\x80"},
	{"one-byte ext payload read as a map32 header in an array", "\xf7\x92\xd4\x00\xdf\xce\xff\xff\xff\xff"},
	{"one-byte ext payload read as a map32 header in a field", "\xf7\x82\xa1M\xd4\x00\xdf\xa1N\xcc\xff"},
	{"two-byte ext payload read as a map16 header in a field", "\xf7\x82\xa1M\xd5\x00\xde\xff\xa1N\xcc\xff"},
	{"one-byte ext payload read as a fixmap header", "\xf7\x82\xa1M\xd4\x00\x8f\xa1N\xc0"},
	{"ext8 payload holding an array32 header", "\xf7\x92\xc7\x05\x00\x81\xa0\xdd\xff\xff\xc0"},
	{"nil where a struct holds a time.Time", "\xf7\x92\xa1x\xc0"},
	{"nil for a time.Time in a map", "\xf7\x82\xa4Name\xa1x\xa2At\xc0"},
	{"trailing bytes after the value", "\xf7\xc0\xdf\xff\xff\xff\xff"},
	{"array32 declaring 4 billion items", "\xf7\xdd\xff\xff\xff\xff"},
	{"str32 declaring 4 billion bytes", "\xf7\xdb\xff\xff\xff\xff"},
	{"nested arrays", "\xf7" + strings.Repeat("\x91", 20000) + "\x01"},
}

func TestHostileValuesDecodeWithinBoundsOrFail(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	warmDecodeDsts(t, c)
	for _, hv := range hostileValues {
		for _, dst := range decodeDsts {
			t.Run(hv.name+" into "+dst.name, func(t *testing.T) {
				require.NoError(t, s.Set(ctx, "k", []byte(hv.raw), backends.NoExpiry))
				d := dst.new()
				var err error
				n := testkit.Allocated(func() { _, err = c.Get(ctx, "k", d) })
				if err != nil {
					assert.ErrorIs(t, err, backends.ErrDecode)
				}
				assert.LessOrEqual(t, n, testkit.DecodeBudget(len(hv.raw)), "bytes allocated decoding %d stored bytes", len(hv.raw))
			})
		}
	}
}

func TestExtHeaderHidingAMapIsErrDecode(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	require.NoError(t, s.Set(ctx, "k", []byte("\xf7\xd4\x00\xdf\xff\xff\xff\xff"), backends.NoExpiry))
	for _, dst := range []any{new(map[string]any), new(mapDoc), new(map[string]string), new(http.Header), new(map[int]int)} {
		_, err := c.Get(ctx, "k", dst)
		assert.ErrorIs(t, err, backends.ErrDecode, "into %T", dst)
	}
}

func TestNilForATimeIsErrDecodeNotAPanic(t *testing.T) {
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, raw := range []string{"\xf7\x92\xa1x\xc0", "\xf7\x82\xa4Name\xa1x\xa2At\xc0"} {
		require.NoError(t, s.Set(ctx, "k", []byte(raw), backends.NoExpiry))
		var doc timeDoc
		var err error
		require.NotPanics(t, func() { _, err = c.Get(ctx, "k", &doc) })
		assert.ErrorIs(t, err, backends.ErrDecode)
	}
}

// A codec that panics is a decode error, not a crash of the caller.
type panickyCodec struct{ backends.MsgpackCodec }

func (panickyCodec) Unmarshal([]byte, any) error { panic("boom") }

func TestACodecPanicIsErrDecode(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{Codec: panickyCodec{}})
	require.NoError(t, c.Set(ctx, "k", decodePoint{X: 1}))
	var p decodePoint
	var err error
	require.NotPanics(t, func() { _, err = c.Get(ctx, "k", &p) })
	assert.ErrorIs(t, err, backends.ErrDecode)
	assert.ErrorContains(t, err, "boom")
}

// The guards must not refuse what msgpack itself writes: times (whose
// payloads may begin with any byte) in every destination that holds them,
// and maps next to them.
func TestWellFormedTimesAndMapsStillDecode(t *testing.T) {
	ctx := context.Background()
	c, _ := rawCache(backends.CacheOptions{})
	type doc struct {
		At    time.Time
		Times []time.Time
		ByKey map[string]time.Time
		M     map[string]any
		H     http.Header
	}
	var times []time.Time
	for _, sec := range []int64{0, 1, 0x80000000, 0x8f000000, 0xdf000000, 0xde000000, 0xc0000000, 1 << 33, -1} {
		for _, nsec := range []int64{0, 1, 0x20000000, 536870912, 600000000, 999999999} {
			times = append(times, time.Unix(sec, nsec).UTC())
		}
	}
	for i, at := range times {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			want := doc{
				At: at, Times: times[:i], ByKey: map[string]time.Time{"k": at},
				M: map[string]any{"at": at, "n": int64(1)}, H: http.Header{"X": {"y"}},
			}
			require.NoError(t, c.Set(ctx, "k", want))
			var got doc
			_, err := c.Get(ctx, "k", &got)
			require.NoError(t, err)
			assert.Equal(t, want.At, got.At.UTC())
			assert.Len(t, got.Times, i)
			assert.Equal(t, at, got.ByKey["k"].UTC())
			assert.Equal(t, at, got.M["at"].(time.Time).UTC())
			assert.Equal(t, want.H, got.H)
		})
	}
}

// FuzzDecode stores arbitrary bytes under a key and decodes them into every
// destination type: no input may panic, fail with anything but ErrDecode,
// or allocate more than testkit.DecodeBudget of its size.
func FuzzDecode(f *testing.F) {
	for _, hv := range hostileValues {
		f.Add([]byte(hv.raw))
	}
	wellFormed := []any{
		decodePoint{1, 2, "p"}, map[string]any{"a": []any{int64(1), "x"}}, []int64{1, 2}, []string{"a"},
		timeDoc{Name: "t", At: time.Unix(1700000000, 5)}, mapDoc{M: map[string]any{"k": time.Unix(0xdf000000, 0)}},
		http.Header{"A": {"b"}}, map[int]int{1: 2}, map[string]string{"k": "v"},
		decodeLists{L: []int64{1}, M: map[string]any{"x": nil}, S: []string{"s"}, P: []decodePoint{{X: 1}}},
		[]internedName{{"interned"}, {"interned"}},
	}
	ctx := context.Background()
	c, s := rawCache(backends.CacheOptions{})
	for _, v := range wellFormed {
		require.NoError(f, c.Set(ctx, "k", v))
		f.Add(rawGet(f, s, "k"))
	}
	for _, v := range []any{"text", []byte("bytes"), 42, "bacon"} {
		require.NoError(f, c.Set(ctx, "k", v))
		f.Add(rawGet(f, s, "k"))
	}
	warmDecodeDsts(f, c)
	f.Fuzz(func(t *testing.T, raw []byte) {
		require.NoError(t, s.Set(ctx, "k", raw, backends.NoExpiry))
		budget := testkit.DecodeBudget(len(raw))
		for _, dst := range decodeDsts {
			d := dst.new()
			var err error
			if n := testkit.Allocated(func() { _, err = c.Get(ctx, "k", d) }); n > budget {
				t.Fatalf("decoding %d bytes into %s allocated %d bytes, more than %d", len(raw), dst.name, n, budget)
			}
			if err != nil && !errors.Is(err, backends.ErrDecode) {
				t.Fatalf("decoding into %s: %v does not wrap ErrDecode", dst.name, err)
			}
		}
	})
}
