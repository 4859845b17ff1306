package httpcache

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"
)

// Conditional requests (RFC 9110 §13). net/http evaluates them in
// ServeContent, on a file, and does not export its ETag scanner; the part
// a cache needs, If-None-Match and If-Modified-Since against a stored
// response, is written out here.

// conditional are the request headers the cache answers itself. They are
// taken off the request a leader's handler sees, so that a revalidating
// client cannot keep the handler from producing the whole response the
// cache stores.
var conditional = []string{"If-None-Match", "If-Modified-Since"}

// isConditional reports whether r carries a condition the cache evaluates.
func isConditional(r *http.Request) bool {
	for _, name := range conditional {
		if _, ok := r.Header[name]; ok {
			return true
		}
	}
	return false
}

// withoutConditions returns r without the conditions the cache evaluates.
func withoutConditions(r *http.Request) *http.Request {
	if !isConditional(r) {
		return r
	}
	r = r.Clone(r.Context())
	for _, name := range conditional {
		r.Header.Del(name)
	}
	return r
}

// notModified reports whether a response with status and header answers r
// with 304 Not Modified: r is a GET or HEAD, the response a 200, and
// If-None-Match names its ETag (weak comparison), or, without
// If-None-Match, If-Modified-Since is no earlier than its Last-Modified
// (RFC 9110 §13.2.2).
func notModified(r *http.Request, status int, h http.Header) bool {
	if status != http.StatusOK || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		etag, ok := fieldValue(h, "Etag")
		return ok && etagListMatches(inm, etag)
	}
	ims := r.Header.Get("If-Modified-Since")
	lm, ok := fieldValue(h, "Last-Modified")
	if ims == "" || !ok {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	modified, err := http.ParseTime(lm)
	return err == nil && !modified.Truncate(time.Second).After(since)
}

// etagListMatches reports whether an If-None-Match field names etag: "*",
// or an entity tag whose opaque part equals etag's.
func etagListMatches(lines []string, etag string) bool {
	want, _, ok := scanETag(etag)
	if !ok {
		return false
	}
	for _, line := range lines {
		for s := strings.TrimLeft(line, " \t,"); s != ""; s = strings.TrimLeft(s, " \t,") {
			if s[0] == '*' {
				return true
			}
			tag, rest, ok := scanETag(s)
			if !ok {
				return false // a malformed list matches nothing
			}
			if tag == want {
				return true
			}
			s = rest
		}
	}
	return false
}

// scanETag reads an entity tag (RFC 9110 §8.8.3) from the start of s and
// returns its opaque part, quotes included, without a weakness prefix.
func scanETag(s string) (opaque, rest string, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:], true
		case c == 0x21 || c >= 0x23 && c <= 0x7e || c >= 0x80:
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// bodyETag is the strong ETag Options.AddETag gives a response: a hash of
// its body.
func bodyETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// writeNotModified answers with 304, keeping the fields RFC 9110 §15.4.5
// asks a 304 to carry and dropping the body's, as http.ServeContent does.
func writeNotModified(w http.ResponseWriter) {
	h := w.Header()
	for _, name := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
		deleteField(h, name)
	}
	if _, ok := fieldValue(h, "Etag"); ok {
		deleteField(h, "Last-Modified")
	}
	w.WriteHeader(http.StatusNotModified)
}

// fieldValue is h.Get with any capitalisation of name: handlers may write
// into the header map directly, and net/http sends what they wrote.
func fieldValue(h http.Header, name string) (string, bool) {
	if vs := fieldValues(h, name); len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// fieldValues is h.Values with any capitalisation of name.
func fieldValues(h http.Header, name string) []string {
	canonical := http.CanonicalHeaderKey(name)
	out := h[canonical]
	for k, vs := range h {
		if k != canonical && strings.EqualFold(k, name) {
			out = append(out[:len(out):len(out)], vs...)
		}
	}
	return out
}

// deleteField is h.Del with any capitalisation of name.
func deleteField(h http.Header, name string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
}
