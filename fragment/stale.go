package fragment

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/fragcache/fragcache/internal/xfetch"
)

// A stored fragment is, by default, exactly the bytes its body rendered:
// what Flask-Caching stores, and what app code reads and writes with the
// backends.Cache under keys.MakeTemplateFragmentKey. Stale-while-revalidate
// and early refresh need more: when the fragment goes stale, which is
// earlier than when the backend drops it, and how long it took to render.
// With either option on, a fragment is stored behind a small header, which
// is fragment's own format inside the []byte value the backend stores:
//
//	byte 0      0xF8, the header mark (never the first byte of valid UTF-8)
//	byte 1      1, the header version
//	bytes 2–9   when the fragment goes stale: Unix milliseconds, big-endian; 0 = never
//	bytes 10–13 how long its body took to render: microseconds, big-endian
//	bytes 14–   the fragment
//
// A fragment that itself starts with 0xF8 is always stored with a header
// (one that never goes stale), so a stored value is read one way only. A
// value that starts with 0xF8 but has no valid header is not a fragment
// this package stored, and is a miss. Processes with the options off read
// headed values too (serving the fragment, and treating it as stale once
// its time has come), so a deploy can turn the options on gradually.

const (
	headerMark    = 0xF8
	headerVersion = 1
	headerLen     = 14
)

// meta is what a header says about a fragment.
type meta struct {
	stale  int64  // Unix ms when it goes stale; 0 = never
	render uint32 // µs its body took
}

// freshness judges the fragment now, with early refresh's β (0 = off). A
// fragment without a header never goes stale, and is judged without
// reading the clock: that is every hit when the options are off.
func (m meta) freshness(beta float64) xfetch.Freshness {
	if m.stale == 0 {
		return xfetch.Fresh
	}
	return xfetch.Judge(m.stale, m.render, time.Now().UnixMilli(), beta)
}

// encodeValue returns the value to store for fragment frag: frag itself,
// or frag behind a header when headed is set or frag starts with the mark.
func encodeValue(frag []byte, headed bool, m meta) []byte {
	if !needsHeader(frag, headed) {
		return frag
	}
	v := make([]byte, headerLen+len(frag))
	putHeader(v, m)
	copy(v[headerLen:], frag)
	return v
}

// needsHeader reports whether frag is stored behind a header: when headed
// is set, or frag starts with the mark.
func needsHeader(frag []byte, headed bool) bool {
	return headed || len(frag) > 0 && frag[0] == headerMark
}

// putHeader writes m's header into v[:headerLen].
func putHeader(v []byte, m meta) {
	v[0], v[1] = headerMark, headerVersion
	binary.BigEndian.PutUint64(v[2:10], uint64(m.stale))
	binary.BigEndian.PutUint32(v[10:14], m.render)
}

// decodeValue splits a stored value into the fragment and its header; ok
// is false for a value with a mark but no valid header.
func decodeValue(v []byte) (frag []byte, m meta, ok bool) {
	if len(v) == 0 || v[0] != headerMark {
		return v, meta{}, true
	}
	if len(v) < headerLen || v[1] != headerVersion {
		return nil, meta{}, false
	}
	stale := binary.BigEndian.Uint64(v[2:10])
	if stale > math.MaxInt64 {
		return nil, meta{}, false
	}
	return v[headerLen:], meta{stale: int64(stale), render: binary.BigEndian.Uint32(v[10:14])}, true
}
