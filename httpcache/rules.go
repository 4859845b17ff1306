package httpcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// finish turns what the handler wrote into a Response and decides whether
// it may be stored and shared with other requests.
func (c *Cache) finish(req *http.Request, rec *recorder) (*Response, bool) {
	resp := &Response{Status: rec.status, Header: storedHeader(rec.header, rec.before, c.hitHeader), Body: rec.body}
	if resp.Body == nil {
		resp.Body = []byte{}
	}
	reason := c.refusal(req, rec)
	if reason == "" && c.opts.ResponseFilter != nil && !c.opts.ResponseFilter(req, resp) {
		reason = "ResponseFilter"
	}
	if reason != "" {
		c.notStored.Add(1)
		c.opts.Logger.Debug("fragcache: httpcache: response not stored", "path", req.URL.Path, "reason", reason)
		return resp, false
	}
	return resp, true
}

// refusal names the rule that keeps the recorded response out of the
// cache, or returns "".
func (c *Cache) refusal(req *http.Request, rec *recorder) string {
	h := rec.header
	switch {
	case rec.hijacked:
		return "connection hijacked"
	case req.Context().Err() != nil:
		return "request cancelled while the handler ran" // the body may be cut short
	case rec.writeErr != nil:
		return "writing to the client failed"
	case rec.tooBig:
		return "body larger than MaxBodySize"
	case !slices.Contains(c.statuses, rec.status):
		return "status " + strconv.Itoa(rec.status)
	case len(h.Values("Set-Cookie")) > 0:
		return "sets a cookie"
	case h.Get("Vary") != "":
		return "has a Vary header"
	case hasTrailers(h) || hasTrailers(rec.w.Header()):
		return "has trailers"
	}
	if d := refusedCacheControl(h); d != "" {
		return "Cache-Control: " + d
	}
	if cl := h.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(rec.body)) {
		return "Content-Length " + cl + " but " + strconv.Itoa(len(rec.body)) + " bytes written"
	}
	return ""
}

// refusedCacheControl returns the first Cache-Control directive that
// forbids a shared cache to store or reuse the response without
// revalidation, which this cache does not do.
func refusedCacheControl(h http.Header) string {
	for _, v := range h.Values("Cache-Control") {
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

func hasTrailers(h http.Header) bool {
	if _, ok := h["Trailer"]; ok {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// hopByHop headers describe one connection, not the response (RFC 9110
// §7.6.1); Date and Content-Length are set afresh for each hit.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Date", "Content-Length",
}

// storedHeader returns the part of h worth storing: what the handler set
// (fields that differ from before, the header middleware outside the cache
// had set, such as a request ID, which each hit gets afresh), less
// hop-by-hop fields. The rules in refusal still look at all of h.
func storedHeader(h, before http.Header, hitHeader string) http.Header {
	out := http.Header{}
	for k, v := range h {
		if !slices.Equal(v, before[k]) {
			out[k] = slices.Clone(v)
		}
	}
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	out.Del(hitHeader)
	return out
}
