package backends

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec turns structured values into bytes and back. The [Cache] consults it
// only for values that are not integers, strings or byte slices (see
// [Cache.Set]). Unmarshal must decode into the destination's own type and
// never instantiate types named by the stored bytes: cache contents are
// untrusted input.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// MsgpackCodec is the default codec: github.com/vmihailenco/msgpack/v5, with
// loose interface decoding so that numbers decoded into `any` come back as
// int64, uint64 or float64 rather than the smallest wire type.
type MsgpackCodec struct{}

var msgpackEncoders = sync.Pool{New: func() any {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	return &pooledEncoder{buf: &buf, enc: enc}
}}

type pooledEncoder struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
}

// Marshal encodes v with msgpack.
func (MsgpackCodec) Marshal(v any) ([]byte, error) {
	pe := msgpackEncoders.Get().(*pooledEncoder)
	defer msgpackEncoders.Put(pe)
	pe.buf.Reset()
	if err := pe.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(pe.buf.Bytes()), nil
}

// pooledDecoder keeps the reader with its decoder, which saves an allocation
// per Unmarshal.
type pooledDecoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	return &pooledDecoder{dec: msgpack.NewDecoder(nil)}
}}

// Unmarshal decodes msgpack data into v, which must be a non-nil pointer.
// The data is checked first: msgpack/v5 sizes slices and maps from the
// lengths the data declares, so five corrupt bytes claiming four billion
// elements would otherwise exhaust memory, a fatal error rather than a
// panic. One gap remains: msgpack/v5 sizes a map[string]any destination
// itself after skipping an ext header, whose payload this check cannot see
// into; decode untrusted data into `any` or a struct without such fields.
func (MsgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	pd := msgpackDecoders.Get().(*pooledDecoder)
	defer func() {
		pd.r.Reset(nil) // do not pin data from the pool
		msgpackDecoders.Put(pd)
	}()
	pd.r.Reset(data)
	pd.dec.Reset(&pd.r)
	pd.dec.UseLooseInterfaceDecoding(true)
	pd.dec.SetMapDecoder(decodeLooseMap)
	return pd.dec.Decode(v)
}

// decodeLooseMap is msgpack's own map[string]any decoding (under loose
// interface decoding) with a bounded size hint: a map may follow an ext
// header, whose payload checkMsgpack cannot look into.
func decodeLooseMap(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n == -1 {
		return nil, err
	}
	m := make(map[string]any, min(n, 64))
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return nil, err
		}
		if m[k], err = d.DecodeInterfaceLoose(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// maxMsgpackDepth bounds nesting, as encoding/json does, so that decoding
// cannot recurse deep enough to exhaust the stack.
const maxMsgpackDepth = 10000

var errMsgpackTruncated = errors.New("msgpack: data truncated")

// checkMsgpack walks one msgpack value without decoding it and rejects data
// whose declared lengths exceed what is left: every array element takes at
// least one byte and every map entry two, so after this check no container
// the decoder sizes from the data can outgrow the data itself.
func checkMsgpack(b []byte) error {
	var open []int // items left in each enclosing array or map
	pending := 1   // items still to read, at every level
	i := 0
	for pending > 0 {
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) > 0 {
			open[len(open)-1]--
		}
		pending--
		if i >= len(b) {
			return errMsgpackTruncated
		}
		c := b[i]
		i++
		var skip, items uint64 // bytes to skip, items the value contains
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f:
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			items = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			var size int // width of a length field
			var extra uint64
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				return fmt.Errorf("msgpack: invalid byte 0xc1 at offset %d", i-1)
			case 0xc4, 0xd9: // bin8, str8
				size = 1
			case 0xc5, 0xda: // bin16, str16
				size = 2
			case 0xc6, 0xdb: // bin32, str32
				size = 4
			case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, then a type byte
				size, extra = 1<<(c-0xc7), 1
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1: // uint16, int16
				skip = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext: type byte + 1..16
				skip = 1 + 1<<(c-0xd4)
			case 0xdc, 0xde: // array16, map16
				size = 2
			case 0xdd, 0xdf: // array32, map32
				size = 4
			}
			if size > 0 {
				if len(b)-i < size {
					return errMsgpackTruncated
				}
				var n uint64
				switch size {
				case 1:
					n = uint64(b[i])
				case 2:
					n = uint64(binary.BigEndian.Uint16(b[i:]))
				case 4:
					n = uint64(binary.BigEndian.Uint32(b[i:]))
				}
				i += size
				switch c {
				case 0xdc, 0xdd:
					items = n
				case 0xde, 0xdf:
					items = 2 * n
				default:
					skip = n + extra
				}
			}
		}
		if skip > uint64(len(b)-i) {
			return errMsgpackTruncated
		}
		i += int(skip)
		if items > 0 {
			left := uint64(len(b) - i)
			if uint64(pending) > left || items > left-uint64(pending) {
				return fmt.Errorf("msgpack: container at offset %d declares %d items, more than the data holds", i-1, items)
			}
			pending += int(items)
			if open = append(open, int(items)); len(open) > maxMsgpackDepth {
				return fmt.Errorf("msgpack: nesting deeper than %d", maxMsgpackDepth)
			}
		}
	}
	return nil
}

// JSONCodec encodes values with encoding/json, for caches that other
// languages read. Numbers decoded into `any` come back as float64.
type JSONCodec struct{}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
