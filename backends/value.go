package backends

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
)

// Stored values carry a one-byte envelope so that every backend agrees on the
// bytes. Integers are bare decimal text (first byte a digit or '-'), which is
// what Redis INCRBY and memcached incr operate on; Flask's cachelib uses the
// same convention, with '!' before codec bytes.
const (
	markCodec  = '!' // '!' + codec bytes
	markString = 's' // 's' + UTF-8 text, for string values
	markBytes  = 'b' // 'b' + raw bytes, for []byte values
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

// Value is one stored value as returned by [Cache.GetValue], [Cache.GetMany]
// and [Cache.GetDict]. The zero Value is a miss.
type Value struct {
	data  []byte
	codec Codec
}

// Found reports whether the key held a live entry.
func (v Value) Found() bool { return v.data != nil }

// Bytes returns the text of a string or []byte value without copying it. The
// slice shares memory with the backend and must not be modified. An integer
// value gives its decimal text. A miss gives nil, false.
func (v Value) Bytes() (b []byte, ok bool) {
	if len(v.data) == 0 {
		return nil, false
	}
	switch v.data[0] {
	case markString, markBytes:
		return v.data[1:], true
	case markCodec:
		return nil, false
	}
	return v.data, true
}

// Decode stores the value into dst, which must be a non-nil pointer.
// Integers decode into any integer or float kind (range-checked), into a
// string or []byte as their decimal text, and into `any` as int64 (uint64
// above MaxInt64). Strings and byte slices decode into string, []byte or
// `any` (as the type they were stored with). Other values go through the
// cache's codec. Every failure, including a miss and a dst that is not a
// non-nil pointer, is an error wrapping ErrDecode.
func (v Value) Decode(dst any) error {
	if v.data == nil {
		return fmt.Errorf("%w: no value (cache miss)", ErrDecode)
	}
	if rv := reflect.ValueOf(dst); rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: destination %T is not a non-nil pointer", ErrDecode, dst)
	}
	if len(v.data) == 0 {
		return fmt.Errorf("%w: empty stored value", ErrDecode)
	}
	var err error
	switch v.data[0] {
	case markCodec:
		err = v.codec.Unmarshal(v.data[1:], dst)
	case markString:
		err = decodeText(v.data[1:], dst, true)
	case markBytes:
		err = decodeText(v.data[1:], dst, false)
	default:
		err = decodeInt(v.data, dst)
	}
	if err != nil {
		return fmt.Errorf("%w into %T: %w", ErrDecode, dst, err)
	}
	return nil
}

func decodeText(b []byte, dst any, isString bool) error {
	switch d := dst.(type) {
	case *string:
		*d = string(b)
	case *[]byte:
		*d = bytes.Clone(b) // non-nil even when empty: a found value is never nil
	case *any:
		if isString {
			*d = string(b)
		} else {
			*d = bytes.Clone(b)
		}
	default:
		return fmt.Errorf("stored value is a %s", map[bool]string{true: "string", false: "[]byte"}[isString])
	}
	return nil
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
