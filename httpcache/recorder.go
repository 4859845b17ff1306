package httpcache

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// recorder is the ResponseWriter a handler writes a missed response to.
// It passes everything on to the client as it comes (so streaming and
// Flush work for the request that runs the handler) and keeps a copy of
// the status, the header as sent and the body for the cache.
type recorder struct {
	w http.ResponseWriter
	c *Cache

	before    http.Header // as it was when the request reached the cache
	committed bool
	status    int
	header    http.Header // as it was when the status was sent
	body      []byte
	tooBig    bool
	writeErr  error
	hijacked  bool

	timeout    time.Duration
	timeoutSet bool
}

func newRecorder(w http.ResponseWriter, c *Cache) *recorder {
	return &recorder{w: w, c: c, before: w.Header().Clone()}
}

// Header returns the client response's header map.
func (r *recorder) Header() http.Header { return r.w.Header() }

// WriteHeader sends the status. Informational statuses (103 Early Hints)
// pass through without becoming the response's status.
func (r *recorder) WriteHeader(code int) {
	if !r.committed && code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		r.w.WriteHeader(code)
		return
	}
	if r.committed {
		r.w.WriteHeader(code) // superfluous: let net/http log it as usual
		return
	}
	r.commit(code)
}

// commit records the status and the header, adds the hit header and sends
// them, once.
func (r *recorder) commit(code int) {
	if r.committed || r.hijacked {
		return
	}
	r.committed = true
	r.status = code
	r.header = r.w.Header().Clone()
	r.c.setHit(r.w.Header(), "MISS")
	r.w.WriteHeader(code)
}

// Write sends p to the client and keeps a copy while the body is within
// MaxBodySize.
func (r *recorder) Write(p []byte) (int, error) {
	r.commit(http.StatusOK)
	if !r.tooBig {
		if max := r.c.opts.MaxBodySize; max >= 0 && int64(len(r.body))+int64(len(p)) > max {
			r.tooBig, r.body = true, nil
		} else {
			r.body = append(r.body, p...)
		}
	}
	n, err := r.w.Write(p)
	if err != nil && r.writeErr == nil {
		r.writeErr = err
	}
	return n, err
}

// Flush sends what was written so far to the client.
func (r *recorder) Flush() { _ = r.FlushError() }

// FlushError is Flush reporting failure, for http.ResponseController.
func (r *recorder) FlushError() error {
	r.commit(http.StatusOK)
	return http.NewResponseController(r.w).Flush()
}

// Hijack hands the connection to the handler; the response is then the
// handler's business and is not stored.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.w).Hijack()
	if err == nil {
		r.hijacked = true
	}
	return conn, rw, err
}

// Unwrap gives http.ResponseController the client's writer, for deadlines
// and full duplex.
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// SetTimeout chooses how long the response being written to w is stored,
// overriding Options.Timeout for this response alone (Flask's
// CachedResponse): d > 0 is a TTL, NoExpiry never expires, 0 restores
// Options.Timeout. A handler calls it with the ResponseWriter it was given,
// at any point before it returns; middleware between the Cache and the
// handler must implement Unwrap() http.ResponseWriter, as
// http.ResponseController expects. It reports whether w is a response the
// Cache is recording and d was valid; it is false for requests the Cache
// bypassed, which is not an error.
func SetTimeout(w http.ResponseWriter, d time.Duration) bool {
	if d < 0 && d != NoExpiry {
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
