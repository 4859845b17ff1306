package httpcache

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// recorder is the ResponseWriter the handler of a missed request writes
// to. The response goes into a buffer, not to the client: the handler
// runs at its own speed whatever the client's, and when it returns, the
// finished response is stored and served from the buffer to every request
// that waited for it, this one included. A response that cannot be shared
// goes to this request's client alone, as it is written, and the requests
// that waited are released at once to run the handler themselves: one
// that the rules refuse as soon as its header is sent, one that is
// flushed (it is meant to stream: it goes on being recorded, and is stored
// if it is within the rules when it ends), and one that grows past
// MaxBodySize.
type recorder struct {
	w      http.ResponseWriter // the client's
	c      *Cache
	req    *http.Request // as the client sent it, for its conditions
	before http.Header   // as it was when the request reached the cache
	leave  func(reason string)

	state  recState
	drop   bool // the cache answered 304: nothing more goes to the client
	status int
	header http.Header // as it was when the status was sent
	vary   []string    // the response's Vary names
	buf    []byte      // entry prefix + body, while recording
	extra  int         // room kept after the body for the header block

	writeErr error

	timeout    time.Duration
	timeoutSet bool
}

type recState uint8

const (
	pending   recState = iota // nothing sent yet
	buffering                 // status sent to the buffer; body held back
	teeing                    // flushed: sent as written, and recorded
	passing                   // sent as written, not recorded
	hijacked                  // the handler took the connection
)

// newRecorder returns a recorder for the request req, whose client is w.
// leave is called, once, when the response turns out not to be one the
// waiting requests can share.
func newRecorder(w http.ResponseWriter, req *http.Request, c *Cache, leave func(reason string)) *recorder {
	return &recorder{w: w, c: c, req: req, before: w.Header().Clone(), leave: leave}
}

// Header returns the client response's header map: nothing has been sent
// before the status.
func (r *recorder) Header() http.Header { return r.w.Header() }

// WriteHeader sends the status. Informational statuses (103 Early Hints)
// pass through without becoming the response's status.
func (r *recorder) WriteHeader(code int) {
	switch {
	case r.state == pending && code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols:
		r.w.WriteHeader(code)
	case r.state == pending:
		r.commit(code)
	case r.state == passing || r.state == teeing:
		r.w.WriteHeader(code) // superfluous: let net/http log it as usual
	}
}

// commit records the status and the header, once, and decides by the
// rules whether the response is held back for the cache.
func (r *recorder) commit(code int) {
	if r.state != pending {
		return
	}
	r.status = code
	r.header = r.w.Header().Clone()
	reason, vary := r.c.headerRefusal(code, r.header)
	if reason != "" {
		r.pass(reason)
		return
	}
	r.vary = vary
	r.state = buffering
	r.extra = headerSize(r.header) + 128 // room for the header block and an ETag
	bodyCap := r.c.bodyClass(0)
	if cl, ok := fieldValue(r.header, "Content-Length"); ok {
		// Checked against MaxBodySize by headerRefusal; without a limit,
		// a Content-Length is trusted with no more than the default one.
		bodyCap, _ = strconv.Atoi(cl)
		if r.c.opts.MaxBodySize < 0 {
			bodyCap = min(bodyCap, DefaultMaxBodySize)
		}
	}
	r.buf = startEntry(bodyCap, r.extra)
}

// pass sends the status, the header and what was held back to the client,
// and everything after it as it comes; the response will not be stored.
func (r *recorder) pass(reason string) {
	r.c.refused(r.req, reason)
	r.leave(reason)
	body := r.body()
	r.buf = nil
	r.state = passing
	r.sendHeader()
	if len(body) > 0 {
		_, _ = r.clientWrite(body)
	}
}

// tee is pass for a response that may still be stored: it goes on being
// recorded.
func (r *recorder) tee() {
	r.leave("flushed")
	r.state = teeing
	r.sendHeader()
	if body := r.body(); len(body) > 0 {
		_, _ = r.clientWrite(body)
	}
}

// sendHeader sends the recorded status with the header as it was then
// (net/http would have ignored later changes), answering 304 itself when
// the client's conditions say it has the response already.
func (r *recorder) sendHeader() {
	h := r.w.Header()
	for k := range h {
		if !isTrailerKey(k) {
			delete(h, k)
		}
	}
	for k, v := range r.header {
		h[k] = v
	}
	r.c.setHit(h, "MISS")
	if notModified(r.req, r.status, r.header) {
		r.drop = true
		writeNotModified(r.w)
		return
	}
	r.w.WriteHeader(r.status)
}

// Write holds p back for the cache, or sends it on.
func (r *recorder) Write(p []byte) (int, error) {
	r.commit(http.StatusOK)
	switch r.state {
	case buffering, teeing:
		if limit := r.c.opts.MaxBodySize; limit >= 0 && int64(r.bodyLen())+int64(len(p)) > limit {
			if r.state == buffering {
				r.pass("body larger than MaxBodySize")
			} else {
				r.c.refused(r.req, "body larger than MaxBodySize")
				r.buf, r.state = nil, passing
			}
			return r.Write(p)
		}
		r.record(p)
		if r.state == buffering {
			return len(p), nil
		}
		return r.clientWrite(p)
	case passing:
		return r.clientWrite(p)
	}
	return len(p), nil // hijacked
}

// record appends p to the body held back. The buffer grows by a factor of
// four, in sizes that reach MaxBodySize exactly, so a body of MaxBodySize
// costs its size and a third more in allocations; a buffer far larger than
// its body is cut down to size before it is stored (see finish).
func (r *recorder) record(p []byte) {
	need := r.bodyLen() + len(p)
	if entryPrefix+need > cap(r.buf)-r.extra {
		buf := startEntry(r.c.bodyClass(need), r.extra)
		r.buf = append(buf[:entryPrefix], r.body()...)
	}
	r.buf = append(r.buf, p...)
}

// bodyClass is the body capacity the buffer takes for need bytes: the
// smallest of MaxBodySize / 4^k (8 KiB at least) that holds them.
func (c *Cache) bodyClass(need int) int {
	const least = 8 << 10
	if limit := c.opts.MaxBodySize; limit >= 0 {
		k := int(limit)
		for k/4 >= need && k/4 >= least {
			k /= 4
		}
		return max(k, need)
	}
	k := least
	for k < need {
		k *= 4
	}
	return k
}

func (r *recorder) clientWrite(p []byte) (int, error) {
	if r.drop {
		return len(p), nil
	}
	n, err := r.w.Write(p)
	if err != nil && r.writeErr == nil {
		r.writeErr = err
	}
	return n, err
}

func (r *recorder) body() []byte {
	if len(r.buf) < entryPrefix {
		return nil
	}
	return r.buf[entryPrefix:]
}

func (r *recorder) bodyLen() int { return len(r.body()) }

// recording reports whether the response may still be stored.
func (r *recorder) recording() bool { return r.state == buffering || r.state == teeing }

// Flush sends what was written so far to the client, and the rest as it
// comes: a handler that flushes means its client to see the response
// before it ends, so no one waits for it to end.
func (r *recorder) Flush() { _ = r.FlushError() }

// FlushError is Flush reporting failure, for http.ResponseController.
func (r *recorder) FlushError() error {
	r.commit(http.StatusOK)
	switch r.state {
	case buffering:
		r.tee()
	case hijacked:
		return nil
	}
	if r.drop {
		return nil
	}
	return http.NewResponseController(r.w).Flush()
}

// Hijack hands the connection to the handler; the response is then the
// handler's business and is not stored. What was written before is sent
// first, as net/http does.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.state == buffering {
		r.pass("connection hijacked")
	}
	conn, rw, err := http.NewResponseController(r.w).Hijack()
	if err != nil {
		return conn, rw, err
	}
	if r.state == pending {
		r.c.refused(r.req, "connection hijacked")
		r.leave("connection hijacked")
	}
	r.state, r.buf = hijacked, nil
	return conn, rw, nil
}

// Unwrap gives http.ResponseController the client's writer, for deadlines
// and full duplex.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// SetTimeout chooses how long the response being written to w is stored,
// overriding Options.Timeout for this response alone (Flask's
// CachedResponse): d > 0 is a TTL, backends.NoExpiry never expires, 0 restores
// Options.Timeout. A handler calls it with the ResponseWriter it was given,
// at any point before it returns; middleware between the Cache and the
// handler must implement Unwrap() http.ResponseWriter, as
// http.ResponseController expects. It reports whether w is a response the
// Cache is recording and d was valid; it is false for requests the Cache
// bypassed, which is not an error.
func SetTimeout(w http.ResponseWriter, d time.Duration) bool {
	if d < 0 && d != backends.NoExpiry {
		return false
	}
	for {
		switch x := w.(type) {
		case *recorder:
			x.timeout, x.timeoutSet = d, d != 0
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return false
		}
	}
}
