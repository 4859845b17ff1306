package backends

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// Stored values carry a one-byte envelope so that every backend agrees on the
// bytes, and so that values other programs wrote read back as they are.
// Integers are bare decimal text, which is what Redis INCRBY and memcached
// incr operate on. Strings, byte slices and codec values start with a byte
// that never occurs in valid UTF-8 (0xF5–0xF7 would begin code points above
// U+10FFFF), so no text another program wrote can be taken for one of them.
// A value starting with '!' is cachelib's (Flask-Caching's) marker for a
// pickle: it is not ours, and reading it is an error rather than a guess.
// Anything else is foreign and reads back byte for byte.
const (
	markString = 0xF5 // 0xF5 + UTF-8 text, for string values
	markBytes  = 0xF6 // 0xF6 + raw bytes, for []byte values
	markCodec  = 0xF7 // 0xF7 + codec bytes, for everything else
	markPickle = '!'  // cachelib's '!' + pickle: not ours
)

// encode turns v into stored bytes.
func encode(codec Codec, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return append(append(make([]byte, 0, 1+len(x)), markString), x...), nil
	case []byte:
		return append(append(make([]byte, 0, 1+len(x)), markBytes), x...), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case uint:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(nil, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	}
	b, err := codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("backends: encode %T: %w", v, err)
	}
	out := make([]byte, 1+len(b))
	out[0] = markCodec
	copy(out[1:], b)
	return out, nil
}

// kind is what a stored value holds, read from its envelope.
type kind uint8

const (
	kindMiss    kind = iota
	kindString       // stored by Set from a string
	kindBytes        // stored by Set from a []byte
	kindCodec        // stored by Set through the codec
	kindInteger      // decimal text within int64 or uint64 range
	kindPickle       // cachelib's '!' + pickle
	kindForeign      // anything else: bytes another program wrote
)

func (v Value) kind() kind {
	switch {
	case v.data == nil:
		return kindMiss
	case len(v.data) == 0:
		return kindForeign
	}
	switch v.data[0] {
	case markString:
		return kindString
	case markBytes:
		return kindBytes
	case markCodec:
		return kindCodec
	case markPickle:
		return kindPickle
	}
	if isInteger(v.data) {
		return kindInteger
	}
	return kindForeign
}

// Value is one stored value as returned by [Cache.GetValue], [Cache.GetMany]
// and [Cache.GetDict]. The zero Value is a miss.
type Value struct {
	data  []byte
	codec Codec
}

// Found reports whether the key held a live entry.
func (v Value) Found() bool { return v.data != nil }

// Text returns the text of a value stored from a string or a []byte, or of
// a value another program wrote (foreign bytes), without copying it: what a
// template fragment is. The slice shares memory with the backend and must
// not be modified. An integer, a codec value, cachelib's pickle and a miss
// give nil, false.
func (v Value) Text() (b []byte, ok bool) {
	if d := v.data; len(d) > 0 && d[0]-markString < 2 { // markString, markBytes
		return d[1:], true
	}
	if v.kind() == kindForeign {
		return v.data, true
	}
	return nil, false
}

// Bytes is Text, but an integer gives its decimal text too.
func (v Value) Bytes() (b []byte, ok bool) {
	if v.kind() == kindInteger {
		return v.data, true
	}
	return v.Text()
}

// Decode stores the value into dst, which must be a non-nil pointer.
// Integers decode into any integer or float kind (range-checked), into a
// string or []byte as their decimal text, and into `any` as int64 (uint64
// above MaxInt64). Strings and byte slices decode into string, []byte or
// `any` (as the type they were stored with). Foreign bytes, written by
// another program, decode byte for byte into string or []byte, and into
// `any` as a string when they are valid UTF-8, a []byte otherwise. Codec
// values go through the cache's codec. A value starting with '!' (a pickle
// Flask-Caching wrote) is never decoded. Every failure, including a miss
// and a dst that is not a non-nil pointer, is an error wrapping ErrDecode.
func (v Value) Decode(dst any) error {
	k := v.kind()
	if k == kindMiss {
		return fmt.Errorf("%w: no value (cache miss)", ErrDecode)
	}
	if rv := reflect.ValueOf(dst); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: destination %T is not a non-nil pointer", ErrDecode, dst)
	}
	var err error
	switch k {
	case kindCodec:
		err = unmarshal(v.codec, v.data[1:], dst)
	case kindString:
		err = decodeText(v.data[1:], dst, kindString)
	case kindBytes:
		err = decodeText(v.data[1:], dst, kindBytes)
	case kindForeign:
		err = decodeText(v.data, dst, kindForeign)
	case kindInteger:
		err = decodeInt(v.data, dst)
	case kindPickle:
		err = errors.New("stored value starts with '!', a Flask-Caching (cachelib) pickle, which fragcache never reads")
	}
	if err != nil {
		return fmt.Errorf("%w into %T: %w", ErrDecode, dst, err)
	}
	return nil
}

// unmarshal runs the codec, turning a panic into an error: stored bytes
// are untrusted, and a codec's bug must not take the process down with
// them.
func unmarshal(codec Codec, b []byte, dst any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("codec %T panicked: %v", codec, p)
		}
	}()
	return codec.Unmarshal(b, dst)
}

func decodeText(b []byte, dst any, k kind) error {
	switch d := dst.(type) {
	case *string:
		*d = string(b)
	case *[]byte:
		*d = bytes.Clone(b)
		if *d == nil {
			*d = []byte{} // a found value is never nil
		}
	case *any:
		if k == kindString || k == kindForeign && utf8.Valid(b) {
			*d = string(b)
		} else {
			*d = append([]byte{}, b...)
		}
	default:
		return fmt.Errorf("stored value is a %s", map[kind]string{kindString: "string", kindBytes: "[]byte", kindForeign: "foreign byte string"}[k])
	}
	return nil
}

// isInteger reports whether b is decimal text ('-'? digit+) of a number
// that fits an int64 or a uint64, without allocating: fragment hits ask.
func isInteger(b []byte) bool {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	limit := "18446744073709551615" // MaxUint64
	if neg {
		limit = "9223372036854775808" // -MinInt64
	}
	return len(b) < len(limit) || len(b) == len(limit) && string(b) <= limit
}

func decodeInt(b []byte, dst any) error {
	switch d := dst.(type) {
	case *string:
		*d = string(b)
		return nil
	case *[]byte:
		*d = bytes.Clone(b)
		return nil
	case *any:
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			u, uerr := strconv.ParseUint(string(b), 10, 64)
			if uerr != nil {
				return fmt.Errorf("stored value %q is not an integer", b)
			}
			*d = u
			return nil
		}
		*d = n
		return nil
	}
	e := reflect.ValueOf(dst).Elem() // Decode checked for a non-nil pointer
	switch e.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(string(b), 10, e.Type().Bits())
		if err != nil {
			return fmt.Errorf("stored integer %q: %w", b, err)
		}
		e.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := strconv.ParseUint(string(b), 10, e.Type().Bits())
		if err != nil {
			return fmt.Errorf("stored integer %q: %w", b, err)
		}
		e.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(string(b), e.Type().Bits())
		if err != nil {
			return fmt.Errorf("stored integer %q: %w", b, err)
		}
		e.SetFloat(n)
	default:
		return fmt.Errorf("stored value is an integer")
	}
	return nil
}

// parseStoredInt parses the decimal integer a backend holds for Inc; anything
// else is ErrNotInteger.
func parseStoredInt(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", ErrNotInteger, truncate(b))
	}
	return n, nil
}

// addInt64 adds with overflow detection.
func addInt64(a, b int64) (int64, error) {
	c := a + b
	if (c > a) != (b > 0) {
		return 0, fmt.Errorf("%w: %d%+d overflows int64", ErrNotInteger, a, b)
	}
	return c, nil
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// formatInt is the stored form of an integer.
func formatInt(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

// FormatInt returns the stored form of the integer n, decimal text: what
// a Backend's Inc stores for a missing key.
func FormatInt(n int64) []byte { return formatInt(n) }

// AddInt is the arithmetic of a Backend's Inc over stored bytes: it adds
// delta to the decimal integer stored in b and returns the sum and its
// stored form. It is an error wrapping ErrNotInteger when b is not the
// decimal text of an int64, or when the sum overflows.
func AddInt(b []byte, delta int64) (sum int64, stored []byte, err error) {
	n, err := parseStoredInt(b)
	if err != nil {
		return 0, nil, err
	}
	if sum, err = addInt64(n, delta); err != nil {
		return 0, nil, err
	}
	return sum, formatInt(sum), nil
}
