package httpcache

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Every rule reads header names in any capitalisation: a handler may write
// w.Header()["set-cookie"] directly, and net/http sends it as written.

// headerRefusal names the rule that keeps a response with status and
// header h out of the cache, or returns "". It is asked when the handler
// sends the status, before any of the body is held back, so that a
// refused response streams to its client as it is written. It also
// returns the response's Vary names, normalised.
func (c *Cache) headerRefusal(status int, h http.Header) (reason string, vary []string) {
	if !slices.Contains(c.statuses, status) {
		return "status " + strconv.Itoa(status), nil
	}
	if len(fieldValues(h, "Set-Cookie")) > 0 {
		return "sets a cookie", nil
	}
	if d := refusedCacheControl(fieldValues(h, "Cache-Control")); d != "" {
		return "Cache-Control: " + d, nil
	}
	if hasTrailers(h) {
		return "has trailers", nil
	}
	if ct, ok := fieldValue(h, "Content-Type"); ok {
		if mt, _, _ := mime.ParseMediaType(ct); mt == "text/event-stream" {
			return "an event stream", nil
		}
	}
	if cl, ok := fieldValue(h, "Content-Length"); ok {
		n, err := strconv.ParseInt(cl, 10, 64)
		switch {
		case err != nil || n < 0:
			return "Content-Length " + strconv.Quote(cl), nil
		case c.opts.MaxBodySize >= 0 && n > c.opts.MaxBodySize:
			return "body larger than MaxBodySize", nil
		}
	}
	vary, reason = varyNames(fieldValues(h, "Vary"))
	return reason, vary
}

// endRefusal names the rule that keeps the response the handler finished
// out of the cache, or returns "".
func (c *Cache) endRefusal(req *http.Request, rec *recorder) string {
	switch {
	case req.Context().Err() != nil:
		return "request cancelled while the handler ran" // the body may be cut short
	case rec.writeErr != nil:
		return "writing to the client failed"
	case hasTrailers(rec.w.Header()):
		return "has trailers"
	}
	if cl, ok := fieldValue(rec.header, "Content-Length"); ok && cl != strconv.Itoa(rec.bodyLen()) {
		return "Content-Length " + cl + " but " + strconv.Itoa(rec.bodyLen()) + " bytes written"
	}
	return ""
}

// refusedCacheControl returns the first Cache-Control directive that
// forbids a shared cache to store or reuse the response without
// revalidation, which this cache does not do.
func refusedCacheControl(lines []string) string {
	for _, v := range lines {
		for d := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch name = strings.ToLower(strings.TrimSpace(name)); name {
			case "private", "no-store", "no-cache":
				return name
			}
		}
	}
	return ""
}

// requestNoStore reports whether r's Cache-Control says no-store: nothing
// of a response to it may be stored (RFC 9111 §5.2.1.5).
func requestNoStore(r *http.Request) bool {
	for _, v := range r.Header.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// varyNames normalises Vary lines into sorted, unique, lower-case names.
// "*" (the response varies on more than request headers) and anything but
// a list of field names make the response unstorable.
func varyNames(lines []string) (names []string, refusal string) {
	for _, line := range lines {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			switch {
			case name == "":
			case name == "*":
				return nil, "Vary: *"
			case !validFieldName(name):
				return nil, "Vary names " + strconv.Quote(name)
			default:
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) > maxVary {
		return nil, "Vary names more than " + strconv.Itoa(maxVary) + " fields"
	}
	return names, ""
}

func hasTrailers(h http.Header) bool {
	for k := range h {
		if strings.EqualFold(k, "Trailer") || isTrailerKey(k) {
			return true
		}
	}
	return false
}

// isTrailerKey reports whether k is a trailer set under http.TrailerPrefix.
func isTrailerKey(k string) bool {
	return len(k) >= len(http.TrailerPrefix) && strings.EqualFold(k[:len(http.TrailerPrefix)], http.TrailerPrefix)
}

// storedHeader returns the part of h worth storing: what the handler set
// (fields that differ from before, the header middleware outside the cache
// had set, such as a request ID, which each hit gets afresh), under
// canonical names, less the fields never stored, those Connection names
// and the hit header. Vary is kept whoever set it: it says which request
// headers the entry is stored under (rs/cors sets Vary: Origin before the
// handler runs), and a read checks the entry's Vary against its marker.
func storedHeader(h, before http.Header, hitHeader string) http.Header {
	out := http.Header{}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		if slices.Equal(h[k], before[k]) && !strings.EqualFold(k, "Vary") {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], h[k]...)
	}
	for _, v := range out["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range neverStored {
		delete(out, name)
	}
	out.Del(hitHeader)
	return out
}
