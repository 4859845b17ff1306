package backends

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// pooledDecoder keeps the reader (with its list of ext payloads) with its
// decoder, which saves allocations per Unmarshal.
type pooledDecoder struct {
	r   guardedReader
	dec *msgpack.Decoder
}

var msgpackDecoders = sync.Pool{New: func() any {
	return &pooledDecoder{dec: msgpack.NewDecoder(nil)}
}}

// Unmarshal decodes msgpack data into v, which must be a non-nil pointer.
// Cache contents are untrusted, and msgpack/v5 (v5.4.1) sizes slices and
// maps from the lengths the data declares, so decoding is bounded in three
// ways, which together keep what decoding N bytes allocates proportional
// to N (README's security section gives the measured bound):
//
//   - checkMsgpack walks the data first and rejects any container that
//     declares more items than the bytes left could hold, bytes after the
//     value, and nesting deeper than 10,000;
//   - where msgpack expects a map and finds an ext value, it skips the ext
//     header and reads the ext's payload as msgpack, which the walk never
//     looked into (seven bytes could declare a map of four billion
//     entries). The decoder reads through a guardedReader, which refuses
//     the reads only that skip makes (see there);
//   - msgpack panics on some inputs (nil where a time.Time is expected
//     calls reflect.Value.IsNil on a struct); a panic becomes an error.
//
// A custom ext decoder registered with msgpack must read its payload in
// one piece with Decoder.ReadFull (as RegisterExt does), not as msgpack
// values.
func (MsgpackCodec) Unmarshal(data []byte, v any) (err error) {
	pd := msgpackDecoders.Get().(*pooledDecoder)
	if err := checkMsgpack(data, &pd.r.payloads); err != nil {
		msgpackDecoders.Put(pd)
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			// The decoder's state is unknown after a panic: drop it.
			err = fmt.Errorf("msgpack: decoder panicked: %v", p)
			return
		}
		pd.r.reset(nil) // do not pin data from the pool
		msgpackDecoders.Put(pd)
	}()
	pd.r.reset(data)
	pd.dec.Reset(&pd.r)
	pd.dec.UseLooseInterfaceDecoding(true)
	pd.dec.SetMapDecoder(decodeLooseMap)
	return pd.dec.Decode(v)
}

// extPayload is where an ext value's payload lies in the data: [start, end).
type extPayload struct{ start, end int }

// guardedReader gives msgpack's decoder the data (checked by checkMsgpack)
// and refuses the reads that only its map-behind-an-ext skip makes. msgpack
// reads a type code or a one-byte length with ReadByte and everything
// longer with Read, and reads an ext payload in one of two ways: in one
// piece with Read (times, RegisterExt types, skipping), or, when the
// payload is a single byte (an interned-string index), with ReadByte. The
// skip instead reads the payload's first byte as a map header with
// ReadByte, then the map's length (map16, map32) with Read and its entries
// as msgpack values. So the reader refuses ReadByte inside a payload,
// except of a one-byte payload, and Read that starts inside a payload or
// right after a one-byte payload read with ReadByte. What the skip can
// still do, read a one-byte payload as a fixmap header, sizes a map of at
// most 15 entries whose entries come from values the walk checked.
type guardedReader struct {
	data     []byte
	off      int
	payloads []extPayload // non-empty ext payloads, ascending
	next     int          // index of the first payload ending after off
	afterOne int          // off after a one-byte payload read with ReadByte, else -1
}

func (r *guardedReader) reset(data []byte) {
	r.data, r.off, r.next, r.afterOne = data, 0, 0, -1
	if data == nil {
		r.payloads = r.payloads[:0]
		if cap(r.payloads) > 1024 {
			r.payloads = nil // a pooled reader keeps no large buffer
		}
	}
}

// payloadAt returns the payload that contains off, if any.
func (r *guardedReader) payloadAt(off int) (extPayload, bool) {
	for r.next < len(r.payloads) && r.payloads[r.next].end <= off {
		r.next++
	}
	for r.next > 0 && r.payloads[r.next-1].end > off {
		r.next--
	}
	if r.next < len(r.payloads) && r.payloads[r.next].start <= off {
		return r.payloads[r.next], true
	}
	return extPayload{}, false
}

// Read reads bulk bytes: lengths, strings, binaries and ext payloads.
func (r *guardedReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.off == r.afterOne {
		return 0, fmt.Errorf("msgpack: map length read after the ext payload at offset %d", r.off-1)
	}
	if len(r.payloads) > 0 {
		if e, ok := r.payloadAt(r.off); ok && e.start != r.off {
			return 0, fmt.Errorf("msgpack: read from inside the ext payload at offset %d", e.start)
		}
		r.afterOne = -1
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

// ReadByte reads a type code or a one-byte length or payload.
func (r *guardedReader) ReadByte() (byte, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if len(r.payloads) > 0 { // data without ext values needs no guard
		r.afterOne = -1
		if e, ok := r.payloadAt(r.off); ok {
			if e.start != r.off || e.end-e.start != 1 {
				return 0, fmt.Errorf("msgpack: ext payload at offset %d read as msgpack values (an ext value where a map was expected)", e.start)
			}
			r.afterOne = r.off + 1
		}
	}
	c := r.data[r.off]
	r.off++
	return c, nil
}

// UnreadByte steps back one byte, as msgpack's code peeking does.
func (r *guardedReader) UnreadByte() error {
	if r.off == 0 {
		return errors.New("msgpack: unread at the start of the data")
	}
	r.off--
	r.afterOne = -1
	return nil
}

// decodeLooseMap is msgpack's own map[string]any decoding (under loose
// interface decoding) with a bounded size hint, as a second guard.
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
// whose declared lengths exceed what is left, and bytes after the value:
// every array element takes at least one byte and every map entry two, so
// after this check no container the decoder sizes from the data can outgrow
// the data itself. It records in *payloads where each non-empty ext payload
// lies, for guardedReader.
func checkMsgpack(b []byte, payloads *[]extPayload) error {
	*payloads = (*payloads)[:0]
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
		if isExt(c) && skip > 1 { // a type byte and a payload
			*payloads = append(*payloads, extPayload{i + 1, i + int(skip)})
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
	if i != len(b) {
		return fmt.Errorf("msgpack: %d bytes after the value", len(b)-i)
	}
	return nil
}

// isExt reports whether c starts an ext value (fixext or ext8/16/32).
func isExt(c byte) bool { return c >= 0xd4 && c <= 0xd8 || c >= 0xc7 && c <= 0xc9 }

// JSONCodec encodes values with encoding/json, for caches that other
// languages read. Numbers decoded into `any` come back as float64.
type JSONCodec struct{}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
