package fragment

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/flight"
)

// Errors a block's execution can return, wrapped in a *SiteError.
var (
	// ErrTimeout is returned for a timeout argument that is not a number of
	// seconds, a time.Duration, nil or "del", or is negative (a Duration
	// may be backends.NoExpiry).
	ErrTimeout = errors.New("fragment: invalid cache timeout")
	// ErrKeyValue is returned for a name or vary_on value that has no
	// documented text form.
	ErrKeyValue = errors.New("fragment: invalid cache key value")
	// ErrAmbiguousName is returned for an unnamed block in a template
	// whose path ends in a digit: Flask's name for it, the path and line
	// run together, is another block's too (line 23 of "wizard/step1" and
	// line 3 of "wizard/step12" are both "wizard/step123"). Name the block.
	ErrAmbiguousName = errors.New("fragment: an unnamed block in a template whose path ends in a digit has a key another block can share; name the block")
	// ErrRecursive is returned when a block's key is requested while that
	// same key is being rendered by the same goroutine: a block nested,
	// directly or through other blocks and includes, in itself. (When the
	// key is being rendered by another goroutine that waits for the
	// requester, as when two pages nest two blocks in opposite orders, the
	// requesting block renders uncached instead.)
	ErrRecursive = flight.ErrRecursive
	// ErrPanicked is returned to the renders that waited for a block whose
	// body panicked; the panic itself goes on up the rendering goroutine.
	ErrPanicked = flight.ErrPanicked
)

// timeoutMode says what a block's timeout argument asks for.
type timeoutMode uint8

const (
	useDefault timeoutMode = iota // nil: the cache's default timeout
	useTTL                        // an explicit TTL: positive, or backends.NoExpiry
	deleteKey                     // "del": delete, render, do not store
)

// parseTimeout interprets a block's evaluated timeout argument. Integers
// and floats are seconds as in Flask, 0 meaning never (backends.NoExpiry);
// a time.Duration follows the Go convention of the backends package (0 is
// the default, NoExpiry never); nil is the default, "del" deletes.
func parseTimeout(v any) (timeoutMode, time.Duration, error) {
	switch t := v.(type) {
	case nil:
		return useDefault, 0, nil
	case int: // the common literal, without reflection
		if t >= 0 && int64(t) <= math.MaxInt64/int64(time.Second) {
			return useTTL, flaskSeconds(time.Duration(t) * time.Second), nil
		}
	case float64: // Jet's numbers, without reflection
		return floatSeconds(t)
	case string:
		if t == "del" {
			return deleteKey, 0, nil
		}
		return 0, 0, fmt.Errorf("%w: %q (want seconds, a time.Duration, nil or \"del\")", ErrTimeout, t)
	case time.Duration:
		switch {
		case t == 0:
			return useDefault, 0, nil
		case t < 0 && t != backends.NoExpiry:
			return 0, 0, fmt.Errorf("%w: %v is negative (backends.NoExpiry never expires)", ErrTimeout, t)
		}
		return useTTL, t, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := rv.Int()
		if n < 0 || n > math.MaxInt64/int64(time.Second) {
			return 0, 0, fmt.Errorf("%w: %d seconds is out of range", ErrTimeout, n)
		}
		return useTTL, flaskSeconds(time.Duration(n) * time.Second), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := rv.Uint()
		if n > math.MaxInt64/uint64(time.Second) {
			return 0, 0, fmt.Errorf("%w: %d seconds is out of range", ErrTimeout, n)
		}
		return useTTL, flaskSeconds(time.Duration(n) * time.Second), nil
	case reflect.Float32, reflect.Float64:
		return floatSeconds(rv.Float())
	}
	return 0, 0, fmt.Errorf("%w: %T %v (want seconds, a time.Duration, nil or \"del\")", ErrTimeout, v, v)
}

// floatSeconds is a timeout of f seconds.
func floatSeconds(f float64) (timeoutMode, time.Duration, error) {
	ns := f * float64(time.Second)
	// float64(math.MaxInt64) is 2⁶³, one past the largest Duration:
	// a product that reaches it does not convert.
	if math.IsNaN(f) || f < 0 || ns >= float64(math.MaxInt64) {
		return 0, 0, fmt.Errorf("%w: %v seconds is out of range", ErrTimeout, f)
	}
	if d := time.Duration(ns); d > 0 || f == 0 {
		return useTTL, flaskSeconds(d), nil
	}
	// A positive timeout under a nanosecond is the shortest TTL
	// there is, never 0, which would mean "never expires".
	return useTTL, time.Nanosecond, nil
}

// flaskSeconds is a TTL given in seconds as Flask reads them: 0 never
// expires.
func flaskSeconds(d time.Duration) time.Duration {
	if d == 0 {
		return backends.NoExpiry
	}
	return d
}

// AppendKeyValue appends the text form of a name or vary_on value to b, as
// every engine's block uses it in keys: strings and []byte as they are,
// integers in decimal, floats in the shortest form that round-trips
// (strconv 'g'), booleans as "true"/"false", a fmt.Stringer through its
// String method, nil as "None" (Flask's spelling). Pointers are followed; a
// nil pointer is "None" too. Any other type is an error wrapping
// ErrKeyValue: a struct or map has no stable text form, and keys must agree
// across processes.
func AppendKeyValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return append(b, x...), nil
	case []byte:
		return append(b, x...), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case nil:
		return append(b, "None"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case fmt.Stringer:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			// A nil pointer is None like any other: calling String through
			// it panics when the method has a value receiver.
			return append(b, "None"...), nil
		}
		return append(b, x.String()...), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return append(b, rv.String()...), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, rv.Uint(), 10), nil
	case reflect.Float32:
		return strconv.AppendFloat(b, rv.Float(), 'g', -1, 32), nil
	case reflect.Float64:
		return strconv.AppendFloat(b, rv.Float(), 'g', -1, 64), nil
	case reflect.Bool:
		return strconv.AppendBool(b, rv.Bool()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return append(b, "None"...), nil
		}
		return AppendKeyValue(b, rv.Elem().Interface())
	}
	return b, fmt.Errorf("%w: %T has no text form for a cache key (use a string or a number)", ErrKeyValue, v)
}
