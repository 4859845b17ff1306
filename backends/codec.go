package backends

import (
	"bytes"
	"encoding/json"
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

// Unmarshal decodes msgpack data into v, which must be a non-nil pointer.
func (MsgpackCodec) Unmarshal(data []byte, v any) error {
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(data))
	dec.UseLooseInterfaceDecoding(true)
	return dec.Decode(v)
}

// JSONCodec encodes values with encoding/json, for caches that other
// languages read. Numbers decoded into `any` come back as float64.
type JSONCodec struct{}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON data into v.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
