package httpcache

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

func validEntry() *entry {
	return &entry{
		created: time.UnixMilli(1700000000123),
		status:  200,
		header: http.Header{
			"Content-Type": {"text/html; charset=utf-8"},
			"Link":         {"</a.css>; rel=preload", "</b.js>; rel=preload"},
			"Etag":         {`"v1"`},
		},
		body: []byte("<p>hello</p>"),
	}
}

func mustEncode(t testing.TB, e *entry) []byte {
	t.Helper()
	b, err := encodeEntry(e)
	require.NoError(t, err)
	return b
}

func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []*entry{
		validEntry(),
		{created: time.UnixMilli(0), status: 599, header: http.Header{}, body: []byte{}},
		{created: time.UnixMilli(-5), status: 404, header: http.Header{"X-Empty": {""}}, body: bytes.Repeat([]byte{0, 0xff}, 5000)},
	} {
		got, err := decodeEntry(mustEncode(t, e))
		require.NoError(t, err)
		assert.Equal(t, e.created.UnixMilli(), got.created.UnixMilli())
		assert.Equal(t, e.status, got.status)
		assert.Equal(t, e.header, got.header)
		assert.Equal(t, e.body, got.body)
	}
}

func TestBadEntriesAreRejected(t *testing.T) {
	good := mustEncode(t, validEntry())
	withStatus := func(status int) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint16(b[12:], uint16(status))
		return b
	}
	// raw encodes an entry without encodeEntry's checks.
	raw := func(status int, fields ...string) []byte {
		b := append(startEntry(1, 0), 'x')
		binary.BigEndian.PutUint16(b[12:], uint16(status))
		binary.BigEndian.PutUint64(b[14:], 1)
		b = binary.AppendUvarint(b, uint64(len(fields)/2))
		for _, f := range fields {
			b = appendString(b, f)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", []byte{}},
		{"not ours", []byte("\xf5some text")},
		{"old msgpack entry", []byte("\xf7\x83\xa1s\xcc\xc8")},
		{"status 42", withStatus(42)},
		{"status 0", withStatus(0)},
		{"status 101", withStatus(101)},
		{"status 600", withStatus(600)},
		{"body longer than the entry", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint64(b[14:], 1<<62)
			return b
		}()},
		{"trailing bytes", append(bytes.Clone(good), 0)},
		{"field count beyond the bytes", append(append(startEntry(0, 0), binary.AppendUvarint(nil, 1<<40)...), "ab"...)},
		{"field name with a space", raw(200, "X Y", "1")},
		{"field name with a colon", raw(200, "X:", "1")},
		{"empty field name", raw(200, "", "1")},
		{"non-canonical name", raw(200, "x-a", "1")},
		{"value with CR LF", raw(200, "X-A", "1\r\nSet-Cookie: a=b")},
		{"value with NUL", raw(200, "X-A", "1\x00")},
		{"Set-Cookie", raw(200, "Set-Cookie", "session=1")},
		{"Content-Length", raw(200, "Content-Length", "5")},
		{"Transfer-Encoding", raw(200, "Transfer-Encoding", "chunked")},
		{"a trailer", raw(200, "Trailer:X-Sum", "1")},
	}
	for n := range len(good) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{"truncated at " + strconv.Itoa(n), good[:n]})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeEntry(tt.b)
			assert.ErrorIs(t, err, errBadEntry)
		})
	}
	_, err := decodeEntry(raw(200, "X-A", "1"))
	require.NoError(t, err, "raw builds valid entries from valid fields")
}

func TestEncodeRefusesWhatDecodeRejects(t *testing.T) {
	for _, h := range []http.Header{
		{"x-lower": {"1"}},
		{"X-A": {"a\nb"}},
		{"Set-Cookie": {"a=b"}},
	} {
		_, err := encodeEntry(&entry{status: 200, header: h, body: []byte("x")})
		assert.Error(t, err, "%v", h)
	}
	_, err := encodeEntry(&entry{status: 42, header: http.Header{}})
	assert.Error(t, err)
}

func TestMarkerRoundTripAndRejects(t *testing.T) {
	m := &marker{id: "01234567", names: []string{"accept-encoding", "accept-language"}}
	got, err := decodeMarker(encodeMarker(m))
	require.NoError(t, err)
	assert.Equal(t, m, got)
	for _, bad := range []*marker{
		{id: "01234567"},
		{id: "01234567", names: []string{"b", "a"}},
		{id: "01234567", names: []string{"a", "a"}},
		{id: "01234567", names: []string{"Accept"}},
		{id: "01234567", names: []string{"a b"}},
	} {
		_, err := decodeMarker(encodeMarker(bad))
		assert.ErrorIs(t, err, errBadEntry, "%v", bad.names)
	}
	_, err = decodeMarker(append(encodeMarker(m), 'x'))
	assert.ErrorIs(t, err, errBadEntry)
}

// FuzzDecodeEntry: any bytes decode into a valid entry or an error, never
// a panic, and an entry decoded is one that encodes again.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(mustEncode(f, validEntry()))
	f.Add([]byte(entryMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			require.ErrorIs(t, err, errBadEntry)
			return
		}
		require.GreaterOrEqual(t, e.status, 200)
		require.LessOrEqual(t, e.status, 599)
		require.NoError(t, checkHeader(e.header))
		require.LessOrEqual(t, len(e.body), len(b))
		again, err := decodeEntry(mustEncode(t, e))
		require.NoError(t, err)
		require.Equal(t, e.header, again.header)
		require.Equal(t, e.body, again.body)
	})
}

// FuzzStoredEntry stores any bytes where a response, or a vary marker and
// a variant, is looked up, and serves a request: the result is the stored
// response, valid, or the handler's, never a panic.
func FuzzStoredEntry(f *testing.F) {
	f.Add(mustEncode(f, validEntry()), []byte(nil))
	f.Add(encodeMarker(&marker{id: "01234567", names: []string{"accept-language"}}), mustEncode(f, validEntry()))
	f.Add([]byte("\xf7\x83\xa1s\x2a"), []byte(nil))
	f.Fuzz(func(t *testing.T, primary, variant []byte) {
		c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
		h, runs := page(nil)
		h = c.Middleware(h)
		req := httptest.NewRequest("GET", "/p", nil)
		req.Header.Set("Accept-Language", "de")
		key, err := c.Key(req)
		require.NoError(t, err)
		require.NoError(t, c.set(t.Context(), key, primary, 0))
		if m, err := decodeMarker(primary); err == nil {
			require.NoError(t, c.set(t.Context(), variantKey(key, m, req), variant, 0))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Header().Get("X-Cache") {
		case "MISS":
			require.EqualValues(t, 1, runs.Load())
			require.Equal(t, "page 1", rec.Body.String())
		case "HIT":
			require.Zero(t, runs.Load())
			require.GreaterOrEqual(t, rec.Code, 200)
			require.LessOrEqual(t, rec.Code, 599)
			for k, vs := range rec.Header() {
				require.True(t, validFieldName(k), k)
				for _, v := range vs {
					require.True(t, validFieldValue(v), v)
				}
			}
			require.Empty(t, rec.Header().Values("Set-Cookie"))
		default:
			t.Fatalf("neither hit nor miss: %v", rec.Header())
		}
	})
}
