package memoize

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
)

// maxArgDepth bounds how deep the encoder follows pointers, maps, slices
// and interfaces, so that a cyclic value is an error instead of a stack
// overflow.
const maxArgDepth = 256

var (
	identifierType = reflect.TypeFor[Identifier]()
	marshalerType  = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// argEncoder appends a deterministic, type-aware encoding of argument
// values to buf. It is neither fmt's %#v (which prints pointer addresses
// and calls String methods) nor msgpack (which drops unexported fields and
// gives 1 and int64(1) in an interface the same bytes): two values get the
// same bytes only when they are equal field by field, and every variable-
// length part is length-prefixed so that no two sequences of values run
// together into the same bytes.
//
// The static types of the arguments are hashed once, in the function's
// seed; the encoder writes a type name only where the static type does not
// fix it, at interfaces.
type argEncoder struct {
	buf []byte
}

// Tags open every encoded value.
const (
	tagNil        = 'n'
	tagIgnored    = 'x'
	tagIdentifier = 'I'
	tagMarshaler  = 'M'
	tagFalse      = 'F'
	tagTrue       = 'T'
	tagInt        = 'i'
	tagUint       = 'u'
	tagFloat      = 'f'
	tagComplex    = 'c'
	tagString     = 's'
	tagList       = 'l'
	tagMap        = 'm'
	tagStruct     = 'S'
	tagPointer    = 'p'
	tagInterface  = 'e'
)

func (e *argEncoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// arg encodes one argument. The common scalar types skip reflection.
func (e *argEncoder) arg(v any) error {
	switch x := v.(type) {
	case string:
		e.buf = append(e.buf, tagString)
		e.str(x)
		return nil
	case int:
		e.buf = binary.AppendVarint(append(e.buf, tagInt), int64(x))
		return nil
	case int64:
		e.buf = binary.AppendVarint(append(e.buf, tagInt), x)
		return nil
	case int32:
		e.buf = binary.AppendVarint(append(e.buf, tagInt), int64(x))
		return nil
	case uint64:
		e.buf = binary.AppendUvarint(append(e.buf, tagUint), x)
		return nil
	case bool:
		e.bool(x)
		return nil
	case float64:
		e.buf = binary.BigEndian.AppendUint64(append(e.buf, tagFloat), math.Float64bits(x))
		return nil
	case []byte:
		if x == nil {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		e.buf = append(e.buf, tagString)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(x)))
		e.buf = append(e.buf, x...)
		return nil
	}
	return e.value(reflect.ValueOf(v), 0)
}

func (e *argEncoder) bool(b bool) {
	if b {
		e.buf = append(e.buf, tagTrue)
	} else {
		e.buf = append(e.buf, tagFalse)
	}
}

func (e *argEncoder) value(v reflect.Value, depth int) error {
	if depth > maxArgDepth {
		return fmt.Errorf("%w: nested deeper than %d levels (is it cyclic?)", ErrUnsupportedArg, maxArgDepth)
	}
	if !v.IsValid() { // a nil interface
		e.buf = append(e.buf, tagNil)
		return nil
	}
	t := v.Type()
	if t.Implements(identifierType) || t.Implements(marshalerType) {
		return e.method(v)
	}
	switch v.Kind() {
	case reflect.Bool:
		e.bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = binary.AppendVarint(append(e.buf, tagInt), v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.buf = binary.AppendUvarint(append(e.buf, tagUint), v.Uint())
	case reflect.Float32, reflect.Float64:
		e.buf = binary.BigEndian.AppendUint64(append(e.buf, tagFloat), math.Float64bits(v.Float()))
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		e.buf = binary.BigEndian.AppendUint64(append(e.buf, tagComplex), math.Float64bits(real(c)))
		e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(imag(c)))
	case reflect.String:
		e.buf = append(e.buf, tagString)
		e.str(v.String())
	case reflect.Slice:
		if v.IsNil() {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			e.buf = append(e.buf, tagString)
			e.buf = binary.AppendUvarint(e.buf, uint64(v.Len()))
			e.buf = append(e.buf, v.Bytes()...)
			return nil
		}
		return e.list(v, depth)
	case reflect.Array:
		return e.list(v, depth)
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		return e.mapValue(v, depth)
	case reflect.Struct:
		e.buf = binary.AppendUvarint(append(e.buf, tagStruct), uint64(v.NumField()))
		for i := range v.NumField() {
			if err := e.value(v.Field(i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		e.buf = append(e.buf, tagPointer)
		return e.value(v.Elem(), depth+1)
	case reflect.Interface:
		if v.IsNil() {
			e.buf = append(e.buf, tagNil)
			return nil
		}
		inner := v.Elem()
		e.buf = append(e.buf, tagInterface)
		e.str(typeName(inner.Type()))
		return e.value(inner, depth+1)
	default: // func, chan, unsafe.Pointer: no value to compare, only an address
		return fmt.Errorf("%w: a %s has no value that can be part of a key", ErrUnsupportedArg, t)
	}
	return nil
}

// fields encodes the struct v as value does, with a placeholder for each
// ignored field.
func (e *argEncoder) fields(v reflect.Value, ignore []bool) error {
	e.buf = binary.AppendUvarint(append(e.buf, tagStruct), uint64(v.NumField()))
	for i := range v.NumField() {
		if ignore[i] {
			e.buf = append(e.buf, tagIgnored)
			continue
		}
		if err := e.value(v.Field(i), 1); err != nil {
			return err
		}
	}
	return nil
}

func (e *argEncoder) list(v reflect.Value, depth int) error {
	e.buf = binary.AppendUvarint(append(e.buf, tagList), uint64(v.Len()))
	for i := range v.Len() {
		if err := e.value(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}

// mapValue encodes entries in the order of their encoded keys, so that
// Go's random map iteration order does not reach the key.
func (e *argEncoder) mapValue(v reflect.Value, depth int) error {
	type entry struct{ k, v []byte }
	entries := make([]entry, 0, v.Len())
	iter := v.MapRange()
	for iter.Next() {
		var sub argEncoder
		if err := sub.value(iter.Key(), depth+1); err != nil {
			return err
		}
		k := sub.buf
		sub.buf = nil
		if err := sub.value(iter.Value(), depth+1); err != nil {
			return err
		}
		entries = append(entries, entry{k, sub.buf})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if c := bytes.Compare(a.k, b.k); c != 0 {
			return c
		}
		return bytes.Compare(a.v, b.v) // NaN keys repeat; keep them in one order
	})
	e.buf = binary.AppendUvarint(append(e.buf, tagMap), uint64(len(entries)))
	for _, en := range entries {
		e.buf = append(e.buf, en.k...)
		e.buf = append(e.buf, en.v...)
	}
	return nil
}

// method encodes a value by its CacheID or MarshalBinary result, which
// stand for the value better than its fields do (a time.Time's fields hold
// a monotonic clock reading and a *Location; its binary form does not).
func (e *argEncoder) method(v reflect.Value) error {
	if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		e.buf = append(e.buf, tagNil)
		return nil
	}
	if !v.CanInterface() {
		return fmt.Errorf("%w: an unexported field of type %s has a CacheID or MarshalBinary method that cannot be called through reflection; export the field or give the enclosing type a CacheID method",
			ErrUnsupportedArg, v.Type())
	}
	switch x := v.Interface().(type) {
	case Identifier:
		e.buf = append(e.buf, tagIdentifier)
		e.str(x.CacheID())
	case encoding.BinaryMarshaler:
		b, err := x.MarshalBinary()
		if err != nil {
			return fmt.Errorf("%w: %s.MarshalBinary: %w", ErrUnsupportedArg, v.Type(), err)
		}
		e.buf = append(e.buf, tagMarshaler)
		e.buf = binary.AppendUvarint(e.buf, uint64(len(b)))
		e.buf = append(e.buf, b...)
	}
	return nil
}

// typeName names t by its package path, which unlike reflect.Type.String
// tells apart two packages of the same name.
func typeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}
