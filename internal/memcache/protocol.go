package memcache

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// The binary protocol: every request and response is a 24-byte header
// followed by a body of extras, key and value, all big-endian.
//
//	[0] magic  [1] opcode  [2:4] key length  [4] extras length  [5] data type
//	[6:8] vbucket (request) or status (response)  [8:12] body length
//	[12:16] opaque (echoed back)  [16:24] CAS
const (
	headerLen     = 24
	magicRequest  = 0x80
	magicResponse = 0x81

	// growStep is the most of a value that is allocated before its bytes
	// arrive: larger values grow, by doubling, as they are read, so a
	// header announcing more than is sent costs what was sent.
	growStep = 32 << 10
)

// Opcodes used by the client.
const (
	opGet       = 0x00
	opSet       = 0x01
	opAdd       = 0x02
	opDelete    = 0x04
	opIncrement = 0x05
	opDecrement = 0x06
	opFlush     = 0x08
	opNoop      = 0x0a
	opSASLAuth  = 0x21
)

// Response statuses the client tells apart.
const (
	statusOK             = 0x00
	statusKeyNotFound    = 0x01
	statusKeyExists      = 0x02
	statusTooLarge       = 0x03
	statusNotStored      = 0x05
	statusNonNumeric     = 0x06
	statusAuthError      = 0x20
	statusAuthContinue   = 0x21
	statusUnknownCommand = 0x81
)

// request is one command. Extras are at most 20 bytes (increment's delta,
// initial value and expiration).
type request struct {
	op      byte
	nExtras uint8
	extras  [20]byte
	key     string
	value   []byte
	cas     uint64
}

// storage sets the extras of set and add: flags and expiration.
func (r *request) storage(flags, exptime uint32) {
	binary.BigEndian.PutUint32(r.extras[0:4], flags)
	binary.BigEndian.PutUint32(r.extras[4:8], exptime)
	r.nExtras = 8
}

// response is what the server answered to one request.
type response struct {
	status uint16
	cas    uint64
	flags  uint32 // from the extras of a get
	// value is the stored value of a get, the new counter of an
	// increment (8 bytes), or the start of the server's message for an
	// error status, at most maxMessage bytes (nil for a miss, which needs
	// none).
	value []byte
	// messageLen is the whole length of an error status's message.
	messageLen int
}

// message is the server's message for an error status, cut to maxMessage
// bytes with the full length noted.
func (r *response) message() string {
	if r.messageLen > len(r.value) {
		return fmt.Sprintf("%s…(%d bytes)", r.value, r.messageLen)
	}
	return string(r.value)
}

func opName(op byte) string {
	switch op {
	case opGet:
		return "get"
	case opSet:
		return "set"
	case opAdd:
		return "add"
	case opDelete:
		return "delete"
	case opIncrement:
		return "incr"
	case opDecrement:
		return "decr"
	case opFlush:
		return "flush"
	case opNoop:
		return "noop"
	case opSASLAuth:
		return "SASL auth"
	}
	return fmt.Sprintf("opcode %#x", op)
}

// writeRequest buffers r with the given opaque into w. The header is
// built in w's own buffer, so that a request costs no allocation.
func writeRequest(w *bufio.Writer, opaque uint32, r *request) error {
	if w.Available() < headerLen+len(r.extras) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	h := w.AvailableBuffer()
	h = append(h, magicRequest, r.op)
	h = binary.BigEndian.AppendUint16(h, uint16(len(r.key)))
	h = append(h, r.nExtras, 0, 0, 0) // extras length, data type, vbucket
	h = binary.BigEndian.AppendUint32(h, uint32(int(r.nExtras)+len(r.key)+len(r.value)))
	h = binary.BigEndian.AppendUint32(h, opaque)
	h = binary.BigEndian.AppendUint64(h, r.cas)
	h = append(h, r.extras[:r.nExtras]...)
	_, _ = w.Write(h)
	_, _ = w.WriteString(r.key)
	_, err := w.Write(r.value) // a bufio.Writer keeps its first error
	return err
}

// readResponse reads the response to a request with opcode op and the
// given opaque. Any mismatch is ErrProtocol: the stream is out of step and
// the connection must not be used again. A body announcing more than
// maxValue bytes of value is ErrTooLarge and is left unread, so that
// connection must not be used again either. An error status's message is
// read whole but kept only up to maxMessage bytes.
func readResponse(r *bufio.Reader, op byte, opaque uint32, maxValue int) (response, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return response{}, err
	}
	if h[0] != magicResponse {
		return response{}, fmt.Errorf("%w: magic byte %#x, want %#x", ErrProtocol, h[0], magicResponse)
	}
	if h[1] != op {
		return response{}, fmt.Errorf("%w: response to %s, want one to %s", ErrProtocol, opName(h[1]), opName(op))
	}
	keyLen := int(binary.BigEndian.Uint16(h[2:4]))
	extLen := int(h[4])
	bodyLen := int64(binary.BigEndian.Uint32(h[8:12]))
	if got := binary.BigEndian.Uint32(h[12:16]); got != opaque {
		return response{}, fmt.Errorf("%w: opaque %d, want %d", ErrProtocol, got, opaque)
	}
	if int64(extLen+keyLen) > bodyLen {
		return response{}, fmt.Errorf("%w: body of %d bytes with %d bytes of extras and %d of key", ErrProtocol, bodyLen, extLen, keyLen)
	}
	valLen := bodyLen - int64(extLen+keyLen)
	if valLen > int64(maxValue) {
		return response{}, fmt.Errorf("%w: the server announced %d bytes, over the client's limit of %d (max_value_size)", ErrTooLarge, valLen, maxValue)
	}
	resp := response{status: binary.BigEndian.Uint16(h[6:8]), cas: binary.BigEndian.Uint64(h[16:24])}
	if extLen > 0 {
		ext, err := r.Peek(extLen)
		if err != nil {
			return response{}, err
		}
		if extLen >= 4 {
			resp.flags = binary.BigEndian.Uint32(ext)
		}
	}
	if _, err := r.Discard(extLen + keyLen); err != nil {
		return response{}, err
	}
	n := int(valLen)
	switch resp.status {
	case statusOK:
		v, err := readValue(r, n)
		if err != nil {
			return response{}, err
		}
		resp.value = v // non-nil even when empty: a found value
	case statusKeyNotFound:
		_, err := r.Discard(n) // "Not found": nothing to keep
		return resp, err
	default:
		resp.messageLen = n
		resp.value = make([]byte, min(n, maxMessage))
		if _, err := io.ReadFull(r, resp.value); err != nil {
			return response{}, err
		}
		if _, err := r.Discard(n - len(resp.value)); err != nil {
			return response{}, err
		}
	}
	return resp, nil
}

// readValue reads an n-byte value, allocating no more than growStep ahead
// of the bytes that have arrived.
func readValue(r *bufio.Reader, n int) ([]byte, error) {
	if n <= growStep {
		v := make([]byte, n)
		_, err := io.ReadFull(r, v)
		return v, err
	}
	v := make([]byte, 0, growStep)
	for len(v) < n {
		if len(v) == cap(v) {
			grown := make([]byte, len(v), min(2*cap(v), n))
			copy(grown, v)
			v = grown
		}
		k, err := io.ReadFull(r, v[len(v):cap(v)])
		v = v[:len(v)+k]
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}
