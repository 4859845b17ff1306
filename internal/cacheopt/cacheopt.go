// Package cacheopt reads CACHE_OPTIONS, the keyword options Flask-Caching
// passes to a backend's constructor, into a backend's typed options. Each
// backend lists the keys it accepts in a table of typed entries (a
// duration, a positive integer, a list of strings…), each writing one field
// of its options, so decoding needs no reflection and every backend reads
// the same kinds of values the same way: durations as seconds (a number), a
// Go duration string ("500ms") or a time.Duration; integers as any Go
// integer or a float64 holding one (as JSON decodes numbers); lists as
// []string or []any of strings. An unknown key is an error that lists the
// accepted ones, and every error names its key.
//
// Errors are plain: callers wrap them with backends.ErrConfig. It imports
// only the standard library.
package cacheopt

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Option is one CACHE_OPTIONS key a backend accepts and how its value is
// stored into the backend's options T.
type Option[T any] struct {
	Name string
	set  func(dst *T, v any) error
}

// Func is an option read by set, for values no other constructor reads.
func Func[T any](name string, set func(dst *T, v any) error) Option[T] {
	return Option[T]{Name: name, set: set}
}

// Decode stores the options in m into dst through table, after checking
// that every key of m is in table. backend names the backend in errors.
func Decode[T any](backend string, m map[string]any, dst *T, table []Option[T]) error {
	known := make([]string, len(table))
	for i, o := range table {
		known[i] = o.Name
	}
	if err := Check(backend, m, known...); err != nil {
		return err
	}
	for _, o := range table {
		v, ok := m[o.Name]
		if !ok {
			continue
		}
		if err := o.set(dst, v); err != nil {
			return fmt.Errorf("CACHE_OPTIONS %s: %w", o.Name, err)
		}
	}
	return nil
}

// Check returns an error naming the first key of m, in sorted order, that
// is not in known, and listing the known ones.
func Check(backend string, m map[string]any, known ...string) error {
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	accepted := "none"
	if len(known) > 0 {
		accepted = strings.Join(known, ", ")
	}
	return fmt.Errorf("CACHE_OPTIONS key %q is not an option of %s (accepted: %s)", unknown[0], backend, accepted)
}

// Duration is a duration option: seconds as a number (as redis-py's socket
// timeouts are), a Go duration string such as "500ms", or a
// time.Duration. Negative durations are refused.
func Duration[T any](name string, field func(*T) *time.Duration) Option[T] {
	return Func(name, func(dst *T, v any) error {
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		*field(dst) = d
		return nil
	})
}

// PositiveInt is an integer option that must be above 0.
func PositiveInt[T any](name string, field func(*T) *int) Option[T] {
	return Func(name, func(dst *T, v any) error {
		n, ok := AsInt(v)
		if !ok || n <= 0 {
			return fmt.Errorf("got %v (%T), want a positive integer", v, v)
		}
		*field(dst) = n
		return nil
	})
}

// Int is an integer option of at least low.
func Int[T any](name string, field func(*T) *int, low int) Option[T] {
	return Func(name, func(dst *T, v any) error {
		n, ok := AsInt(v)
		if !ok {
			return TypeError(v, "an integer")
		}
		if n < low {
			return fmt.Errorf("%d is below %d", n, low)
		}
		*field(dst) = n
		return nil
	})
}

// Bool is a boolean option.
func Bool[T any](name string, field func(*T) *bool) Option[T] {
	return Func(name, func(dst *T, v any) error {
		b, ok := v.(bool)
		if !ok {
			return TypeError(v, "a bool")
		}
		*field(dst) = b
		return nil
	})
}

// String is a string option.
func String[T any](name string, field func(*T) *string) Option[T] {
	return Func(name, func(dst *T, v any) error {
		s, ok := v.(string)
		if !ok {
			return TypeError(v, "a string")
		}
		*field(dst) = s
		return nil
	})
}

// Strings is a list-of-strings option.
func Strings[T any](name string, field func(*T) *[]string) Option[T] {
	return Func(name, func(dst *T, v any) error {
		l, err := StringList(v)
		if err != nil {
			return err
		}
		*field(dst) = l
		return nil
	})
}

// ErrNegative is wrapped by Seconds for a negative number of seconds.
var ErrNegative = errors.New("is negative")

// Seconds converts a number of seconds (any Go integer or float) or a
// time.Duration to a Duration. A positive number under a nanosecond is a
// nanosecond, never 0; a negative one is an error wrapping ErrNegative.
func Seconds(v any) (time.Duration, error) {
	var d time.Duration
	switch n := v.(type) {
	case time.Duration:
		d = n
	case float32:
		return Seconds(float64(n)) // NaN and infinities need the same checks
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%v is not a usable number of seconds", n)
		}
		if n < 0 {
			return 0, fmt.Errorf("%v seconds %w", n, ErrNegative)
		}
		d = time.Duration(n * float64(time.Second))
		if d == 0 && n > 0 {
			d = time.Nanosecond
		}
	default:
		i, ok := AsInt(v)
		if !ok {
			return 0, TypeError(v, "seconds as a number, or a time.Duration")
		}
		d = time.Duration(i) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("%v %w", d, ErrNegative)
	}
	return d, nil
}

// ParseDuration reads a duration option's value: see Duration.
func ParseDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return Seconds(v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"500ms\" or a number of seconds", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%v %w", d, ErrNegative)
	}
	return d, nil
}

// AsInt returns v as an int if it is a Go integer within range, or a
// float64 holding an integer (JSON's numbers) within ±2³¹.
func AsInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		i := reflect.ValueOf(n)
		if i.CanInt() {
			if i.Int() < math.MinInt || i.Int() > math.MaxInt {
				return 0, false
			}
			return int(i.Int()), true
		}
		if i.Uint() > math.MaxInt {
			return 0, false
		}
		return int(i.Uint()), true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// StringList accepts a []string, or a []any of strings (as JSON decodes
// lists).
func StringList(v any) ([]string, error) {
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("item %d: %w", i, TypeError(x, "a string"))
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, TypeError(v, "a list of strings")
}

// TypeError says that v is not what was wanted.
func TypeError(v any, want string) error {
	return fmt.Errorf("got %T, want %s", v, want)
}
