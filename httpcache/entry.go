package httpcache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Stored bytes. A response is stored in a format of its own rather than
// through the backend cache's codec, for two reasons. Its body must not be
// copied on the way in or out: the leader's handler writes into the very
// buffer that is stored, and a hit is served from the bytes the backend
// returns (issue 13 bounds 32 concurrent cold 8 MiB responses at 1.5 times
// their size). And every byte read back is checked before a client sees
// it, so the format is small enough to check field by field.
//
// An entry is
//
//	"HC\x01R" | created unix ms (int64) | status (uint16) | body length (uint64) | body | header block
//
// with integers big-endian, and the header block a uvarint field count
// followed by that many (uvarint length, name, uvarint length, value)
// pairs, one pair per value, names canonical and sorted.
//
// A vary marker, stored under the key of a response that has a Vary header,
// names the request headers its variants are keyed on:
//
//	"HC\x01V" | id (8 bytes) | uvarint count | count × (uvarint length, name)
//
// with names lower-case and sorted. The id goes into every variant's key,
// so variants stored under an earlier marker are never found again once
// the marker is replaced or deleted.
const (
	entryMagic   = "HC\x01R"
	markerMagic  = "HC\x01V"
	entryPrefix  = len(entryMagic) + 8 + 2 + 8 // up to the body
	markerIDSize = 8

	// maxFields, maxHeaderBytes and maxVary bound what a stored entry
	// may hold, so that decoding allocates within a small multiple of the
	// bytes read. Responses beyond them are not stored.
	maxFields      = 1000
	maxHeaderBytes = 1 << 20 // net/http's DefaultMaxHeaderBytes
	maxVary        = 64
)

// errBadEntry is wrapped by every decoding error.
var errBadEntry = errors.New("not a valid stored response")

// entry is a stored response.
type entry struct {
	created time.Time
	status  int
	header  http.Header // canonical names, none of the never-stored fields
	body    []byte
}

// marker is a stored vary marker.
type marker struct {
	id    string   // markerIDSize bytes, hex-encoded in variant keys
	names []string // lower-case, sorted, unique
}

// neverStored are the header fields an entry may not hold: hop-by-hop
// fields describe one connection, not the response (RFC 9110 §7.6.1); Date
// and Content-Length are set afresh for every client; Set-Cookie belongs
// to one user. A stored entry holding one was not written by this package.
var neverStored = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Date", "Content-Length", "Set-Cookie",
}

// startEntry returns a buffer holding an entry's prefix, with room for
// bodyCap bytes of body and extra bytes of header block after it.
func startEntry(bodyCap, extra int) []byte {
	buf := make([]byte, entryPrefix, entryPrefix+bodyCap+extra)
	copy(buf, entryMagic)
	return buf
}

// finishEntry fills in buf's prefix, for a body of len(buf)-entryPrefix
// bytes, and appends the header block. It fails, leaving buf unusable,
// when h is beyond what decodeEntry accepts.
func finishEntry(buf []byte, created time.Time, status int, h http.Header) ([]byte, error) {
	if err := checkHeader(h); err != nil {
		return nil, err
	}
	if status < 200 || status > 599 {
		return nil, fmt.Errorf("status %d is not a final response", status)
	}
	body := len(buf) - entryPrefix
	binary.BigEndian.PutUint64(buf[4:], uint64(created.UnixMilli()))
	binary.BigEndian.PutUint16(buf[12:], uint16(status))
	binary.BigEndian.PutUint64(buf[14:], uint64(body))
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	})
	n := 0
	for _, k := range names {
		n += len(h[k])
	}
	buf = binary.AppendUvarint(buf, uint64(n))
	for _, k := range names {
		for _, v := range h[k] {
			buf = appendString(buf, k)
			buf = appendString(buf, v)
		}
	}
	return buf, nil
}

// encodeEntry is startEntry and finishEntry for a whole response.
func encodeEntry(e *entry) ([]byte, error) {
	buf := append(startEntry(len(e.body), headerSize(e.header)), e.body...)
	return finishEntry(buf, e.created, e.status, e.header)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// headerSize is about the size of h's header block.
func headerSize(h http.Header) int {
	n := binary.MaxVarintLen64
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 2*binary.MaxVarintLen16
		}
	}
	return n
}

// checkHeader reports why h cannot be stored: too large, a field name or
// value net/http would not send as it is, or a field never stored.
func checkHeader(h http.Header) error {
	fields, size := 0, 0
	for k, vs := range h {
		if !validFieldName(k) || !isCanonical(k) {
			return fmt.Errorf("header field name %q is not a canonical token", k)
		}
		if slices.Contains(neverStored, k) || strings.HasPrefix(k, http.TrailerPrefix) {
			return fmt.Errorf("header field %s is never stored", k)
		}
		for _, v := range vs {
			if !validFieldValue(v) {
				return fmt.Errorf("header field %s has an invalid value %q", k, v)
			}
			fields++
			size += len(k) + len(v)
		}
	}
	if fields > maxFields || size > maxHeaderBytes {
		return fmt.Errorf("header of %d fields, %d bytes, is over %d fields or %d bytes", fields, size, maxFields, maxHeaderBytes)
	}
	return nil
}

// decodeEntry reads an entry, checking every field; the body shares b's
// memory. Anything else is an error wrapping errBadEntry.
func decodeEntry(b []byte) (*entry, error) {
	e, err := decodeEntryFields(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadEntry, err)
	}
	return e, nil
}

func decodeEntryFields(b []byte) (*entry, error) {
	if len(b) < entryPrefix || string(b[:4]) != entryMagic {
		return nil, errors.New("no entry header")
	}
	e := &entry{
		created: time.UnixMilli(int64(binary.BigEndian.Uint64(b[4:]))),
		status:  int(binary.BigEndian.Uint16(b[12:])),
	}
	if e.status < 200 || e.status > 599 {
		return nil, fmt.Errorf("status %d", e.status)
	}
	n := binary.BigEndian.Uint64(b[14:])
	rest := b[entryPrefix:]
	if n > uint64(len(rest)) {
		return nil, fmt.Errorf("body of %d bytes in %d", n, len(rest))
	}
	e.body, rest = rest[:n:n], rest[n:]
	count, rest, err := readUvarint(rest)
	if err != nil {
		return nil, err
	}
	// Each field takes at least 3 bytes, so count cannot make the map
	// below larger than the bytes read.
	if count > maxFields || count > uint64(len(rest))/3 {
		return nil, fmt.Errorf("%d header fields", count)
	}
	if len(rest) > maxHeaderBytes+int(count)*2*binary.MaxVarintLen64 {
		return nil, fmt.Errorf("header block of %d bytes", len(rest))
	}
	// One string for the whole block and one slice for all the values:
	// names and values are parts of them, two allocations in all.
	block := string(rest)
	values := make([]string, count)
	e.header = make(http.Header, count)
	for i := range values {
		var k string
		if k, block, err = readString(block); err != nil {
			return nil, err
		}
		if values[i], block, err = readString(block); err != nil {
			return nil, err
		}
		if vs, ok := e.header[k]; ok {
			e.header[k] = append(vs[:len(vs):len(vs)], values[i])
		} else {
			e.header[k] = values[i : i+1 : i+1]
		}
	}
	if len(block) != 0 {
		return nil, fmt.Errorf("%d bytes after the header", len(block))
	}
	if err := checkHeader(e.header); err != nil {
		return nil, err
	}
	return e, nil
}

func readUvarint[T []byte | string](b T) (uint64, T, error) {
	var v uint64
	for i := range min(len(b), binary.MaxVarintLen64) {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflows 64 bits
			}
			return v, b[i+1:], nil
		}
	}
	return 0, b, errors.New("truncated or overlong length")
}

// readString reads a length-prefixed string; from a string, the result
// shares its memory.
func readString[T []byte | string](b T) (string, T, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return "", b, err
	}
	if n > uint64(len(b)) {
		return "", b, fmt.Errorf("string of %d bytes in %d", n, len(b))
	}
	return string(b[:n]), b[n:], nil
}

// encodeMarker returns m's stored bytes.
func encodeMarker(m *marker) []byte {
	b := append([]byte(markerMagic), m.id...)
	b = binary.AppendUvarint(b, uint64(len(m.names)))
	for _, name := range m.names {
		b = appendString(b, name)
	}
	return b
}

// decodeMarker reads a vary marker, checking every field.
func decodeMarker(b []byte) (*marker, error) {
	m, err := decodeMarkerFields(b)
	if err != nil {
		return nil, fmt.Errorf("%w: vary marker: %w", errBadEntry, err)
	}
	return m, nil
}

func decodeMarkerFields(b []byte) (*marker, error) {
	if len(b) < len(markerMagic)+markerIDSize || string(b[:4]) != markerMagic {
		return nil, errors.New("no marker header")
	}
	m := &marker{id: string(b[4 : 4+markerIDSize])}
	count, rest, err := readUvarint(b[4+markerIDSize:])
	if err != nil {
		return nil, err
	}
	if count == 0 || count > maxVary || count > uint64(len(rest)) {
		return nil, fmt.Errorf("%d names", count)
	}
	m.names = make([]string, 0, count)
	for range count {
		var name string
		if name, rest, err = readString(rest); err != nil {
			return nil, err
		}
		if !validFieldName(name) || name != strings.ToLower(name) {
			return nil, fmt.Errorf("name %q", name)
		}
		if len(m.names) > 0 && name <= m.names[len(m.names)-1] {
			return nil, errors.New("names not sorted and unique")
		}
		m.names = append(m.names, name)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the names", len(rest))
	}
	return m, nil
}

// validFieldName reports whether name is a token (RFC 9110 §5.6.2).
// net/http's own check (httpguts) lives in golang.org/x/net, which fragcache
// does not otherwise need; the rule is one line.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

// isCanonical reports whether the token name is in the form
// textproto.CanonicalMIMEHeaderKey gives it (which allocates to find out).
func isCanonical(name string) bool {
	upper := true
	for i := range len(name) {
		c := name[i]
		if upper && c >= 'a' && c <= 'z' || !upper && c >= 'A' && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

func isTokenChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validFieldValue reports whether v may be sent as a field value: no
// control characters but horizontal tab (RFC 9110 §5.5), so no CR or LF
// that could start another field.
func validFieldValue(v string) bool {
	for i := range len(v) {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
