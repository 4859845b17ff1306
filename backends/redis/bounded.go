package redis

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/fragcache/fragcache/backends"
	goredis "github.com/redis/go-redis/v9"
)

// This file bounds what a Redis server can make go-redis allocate. go-redis
// trusts the lengths in a reply's headers: it allocates a bulk string's
// length before the bytes arrive, so the 15 bytes "$68719476736\r\n" make it
// ask for 64 GiB, and an array header of a billion elements, or a chain of
// nested one-element arrays deep enough to overflow the goroutine stack, are
// as cheap to send. A server that is compromised, impersonated (no TLS), or
// simply not Redis can then kill the process. go-redis has no option to
// bound replies, so fragcache installs a dialer that wraps every connection
// in a reader that follows the RESP stream as it passes (headers only; the
// payload bytes are counted, not inspected) and fails the connection before
// go-redis sees a header that asks for too much. TLS with certificate
// checks and an ACL user with only the commands the cache needs remain the
// real defence against a hostile network; this bound keeps a bad reply from
// being worse than an error.

// ErrReplyTooLarge is wrapped by the error of a command whose reply
// announced more than the backend's limit (CACHE_OPTIONS max_value_size): a
// bulk string longer than the limit, a line (status, error, number) longer
// than the limit or 1 MiB, an aggregate with more elements than the limit
// allows, nesting deeper than 64 levels, or a reply announcing more bytes
// than twice the limit ahead of sending them. The connection it came on is
// closed.
var ErrReplyTooLarge = errors.New("backends: redis reply over the size limit")

// DefaultMaxValueSize is the default CACHE_OPTIONS max_value_size of
// the Redis backends: 64 MiB. Redis itself accepts values up to 512 MB
// (proto-max-bulk-len), but a fragment or page is kilobytes, and every
// pooled connection may be made to hold a limit's worth before its reply
// fails, so the default stays far below Redis's and far above any fragment.
const DefaultMaxValueSize = 64 << 20

// respMaxLine bounds a line (simple string, error, number…) when
// max_value_size is larger: Redis sends short lines (OK, PONG, error
// messages), and go-redis copies a long one about three times as it reads
// it.
const respMaxLine = 1 << 20

// respMaxDepth bounds the nesting of aggregates in a reply. fragcache's
// commands nest at most three deep (CLUSTER SLOTS); go-redis reads nested
// replies recursively, so a deep enough chain would exhaust its stack.
const respMaxDepth = 64

// Bytes an aggregate's elements cost go-redis before they arrive: an
// interface value per array element, about three per map pair.
const (
	respArrayElemCost = 16
	respMapElemCost   = 24 // per key and per value
)

// LimitReplies installs in opt, which is a *goredis.Options,
// *goredis.FailoverOptions, *goredis.ClusterOptions or *goredis.UniversalOptions,
// a dialer that refuses replies announcing more than maxValueSize bytes
// (0 means DefaultMaxValueSize): see ErrReplyTooLarge. It wraps
// the dialer opt already has, or else dials as go-redis does (TCP with
// keep-alives, TLS when opt.TLSConfig is set). The backends built by Open do
// this themselves; an application that builds its own client for New
// calls it on the options before goredis.NewClient (or NewFailoverClient,
// NewClusterClient), since a client's dialer cannot be changed afterwards.
func LimitReplies(opt any, maxValueSize int) error {
	if maxValueSize < 0 {
		return fmt.Errorf("%w: redis max_value_size %d is negative", backends.ErrConfig, maxValueSize)
	}
	if maxValueSize == 0 {
		maxValueSize = DefaultMaxValueSize
	}
	limit := int64(maxValueSize)
	switch o := opt.(type) {
	case *goredis.Options:
		o.Dialer = boundedRedisDialer(o.Dialer, func() (time.Duration, *tls.Config) { return o.DialTimeout, o.TLSConfig }, limit)
	case *goredis.FailoverOptions:
		o.Dialer = boundedRedisDialer(o.Dialer, func() (time.Duration, *tls.Config) { return o.DialTimeout, o.TLSConfig }, limit)
	case *goredis.ClusterOptions:
		o.Dialer = boundedRedisDialer(o.Dialer, func() (time.Duration, *tls.Config) { return o.DialTimeout, o.TLSConfig }, limit)
	case *goredis.UniversalOptions:
		o.Dialer = boundedRedisDialer(o.Dialer, func() (time.Duration, *tls.Config) { return o.DialTimeout, o.TLSConfig }, limit)
	default:
		return fmt.Errorf("backends: LimitReplies needs *goredis.Options, *goredis.FailoverOptions, *goredis.ClusterOptions or *goredis.UniversalOptions, not %T", opt)
	}
	return nil
}

// redisLimitOption is the CACHE_OPTIONS key of the reply limit.
const redisLimitOption = "max_value_size"

// redisKeepAlive is go-redis's keep-alive policy for the connections it
// dials itself.
var redisKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3}

// boundedRedisDialer wraps the connections next dials (nil: dialled as
// go-redis's default dialer does, with settings read when dialling, since
// go-redis fills in defaults after the options are built).
func boundedRedisDialer(next func(ctx context.Context, network, addr string) (net.Conn, error),
	settings func() (time.Duration, *tls.Config), limit int64) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if next == nil {
		next = func(ctx context.Context, network, addr string) (net.Conn, error) {
			timeout, conf := settings()
			d := &net.Dialer{Timeout: timeout, KeepAliveConfig: redisKeepAlive}
			if conf == nil {
				return d.DialContext(ctx, network, addr)
			}
			return (&tls.Dialer{NetDialer: d, Config: conf}).DialContext(ctx, network, addr)
		}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newBoundedConn(nc, addr, limit), nil
	}
}

// newBoundedConn wraps nc. A connection that can be reached as a
// syscall.Conn keeps that ability, so go-redis's health check of idle
// connections (a non-consuming peek) still works.
func newBoundedConn(nc net.Conn, addr string, limit int64) net.Conn {
	c := &boundedConn{Conn: nc, scan: respScanner{limit: limit, addr: addr}}
	if _, ok := nc.(syscall.Conn); ok {
		return boundedSysConn{c}
	}
	return c
}

// boundedConn passes a Redis server's replies through a respScanner.
type boundedConn struct {
	net.Conn
	scan respScanner
}

// Read reads from the connection and checks what arrived. Bytes that break
// the limit are not handed on: the caller gets the error instead, and the
// connection is closed.
func (c *boundedConn) Read(p []byte) (int, error) {
	if c.scan.err != nil {
		return 0, c.scan.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if serr := c.scan.feed(p[:n]); serr != nil {
			c.Conn.Close()
			return 0, serr
		}
	}
	return n, err
}

// NetConn returns the wrapped connection, as crypto/tls.Conn does, for
// go-redis's non-consuming checks of the socket.
func (c *boundedConn) NetConn() net.Conn { return c.Conn }

// boundedSysConn is a boundedConn over a connection with a file descriptor.
type boundedSysConn struct{ *boundedConn }

// SyscallConn gives the wrapped connection's raw descriptor.
func (c boundedSysConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// respScanner follows a stream of RESP2/RESP3 replies and refuses one whose
// headers ask for more than limit. It keeps the state of the element being
// read across calls of feed, so headers may be split anywhere.
type respScanner struct {
	limit int64
	addr  string

	state  respState
	typ    byte  // type byte of the element being read
	neg    bool  // its length started with '-'
	digits int   // digits of the length read so far
	n      int64 // the length, or the bytes of a line so far
	left   int64 // payload bytes (with CRLF) still to come

	depth int
	stack [respMaxDepth]respFrame
	// debt is what the current reply's headers have announced (and so
	// what go-redis has allocated) less the bytes the reply has sent.
	debt int64
	err  error
}

type respState uint8

const (
	respType    respState = iota // next byte starts an element
	respLine                     // inside a line: simple string, error, number…
	respLen                      // inside a length: $, *, %, …
	respLenLF                    // after the length's CR
	respPayload                  // inside a bulk string's bytes
)

// respFrame is an aggregate still being read.
type respFrame struct {
	left int64 // elements still to come
	attr bool  // an attribute: the element after it is the one it annotates
}

// feed checks the next bytes of the stream; a non-nil error is sticky.
func (s *respScanner) feed(p []byte) error {
	for len(p) > 0 && s.err == nil {
		switch s.state {
		case respType:
			s.typ, p = p[0], p[1:]
			s.debt--
			switch s.typ {
			case '+', '-', ':', '_', ',', '#', '(':
				s.state, s.n = respLine, 0
			case '$', '!', '=', '*', '~', '>', '%', '|':
				s.state, s.neg, s.digits, s.n = respLen, false, 0, 0
			default:
				s.fail(fmt.Errorf("backends: redis reply from %s is not RESP: type byte %q", s.addr, s.typ))
			}
		case respLine:
			i := bytes.IndexByte(p, '\n')
			k := int64(len(p))
			if i >= 0 {
				k = int64(i + 1)
			}
			s.n += k
			s.debt -= k
			p = p[k:]
			if max := min(s.limit, respMaxLine); s.n > max+2 {
				s.tooLarge(fmt.Sprintf("a line (%q reply) of more than %d bytes, the most a line may have", s.typ, max))
			} else if i >= 0 {
				s.elementDone()
			}
		case respLen:
			c := p[0]
			p = p[1:]
			s.debt--
			switch {
			case c >= '0' && c <= '9' && s.digits < 18:
				s.n = s.n*10 + int64(c-'0')
				s.digits++
			case c == '-' && s.digits == 0 && !s.neg:
				s.neg = true
			case c == '\r' && s.digits > 0:
				s.state = respLenLF
			case c >= '0' && c <= '9':
				s.tooLarge(fmt.Sprintf("a %q header with a length of more than 18 digits", s.typ))
			default:
				s.fail(fmt.Errorf("backends: redis reply from %s is not RESP: byte %q in the length of a %q header", s.addr, c, s.typ))
			}
		case respLenLF:
			c := p[0]
			p = p[1:]
			s.debt--
			if c != '\n' {
				s.fail(fmt.Errorf("backends: redis reply from %s is not RESP: byte %q after CR in a %q header", s.addr, c, s.typ))
				break
			}
			s.header()
		case respPayload:
			k := min(s.left, int64(len(p)))
			s.left -= k
			s.debt -= k
			p = p[k:]
			if s.left == 0 {
				s.elementDone()
			}
		}
	}
	return s.err
}

// header acts on a complete length header.
func (s *respScanner) header() {
	if s.neg {
		if s.n != 1 {
			s.fail(fmt.Errorf("backends: redis reply from %s is not RESP: %q header with length -%d", s.addr, s.typ, s.n))
			return
		}
		s.elementDone() // -1: a nil string or aggregate, nothing follows
		return
	}
	switch s.typ {
	case '$', '!', '=':
		if s.n > s.limit {
			s.tooLarge(fmt.Sprintf("a bulk string of %d bytes", s.n))
			return
		}
		if s.claim(s.n + 2) {
			s.state, s.left = respPayload, s.n+2
		}
		return
	}
	elems, cost := s.n, int64(respArrayElemCost)
	if s.typ == '%' || s.typ == '|' {
		elems, cost = 2*s.n, respMapElemCost
	}
	switch {
	case elems > s.limit/cost:
		s.tooLarge(fmt.Sprintf("an aggregate (%q) of %d elements", s.typ, s.n))
		return
	case !s.claim(elems * cost):
		return
	case elems == 0 && s.typ == '|':
		s.state = respType // an empty attribute annotates the next element
		return
	case elems == 0:
		s.elementDone()
		return
	case s.depth == respMaxDepth:
		s.tooLarge(fmt.Sprintf("aggregates nested more than %d deep", respMaxDepth))
		return
	}
	s.stack[s.depth] = respFrame{left: elems, attr: s.typ == '|'}
	s.depth++
	s.state = respType
}

// claim records that go-redis is about to allocate n bytes for the current
// reply, and fails when the reply has announced too much more than it has
// sent.
func (s *respScanner) claim(n int64) bool {
	s.debt += n
	if s.debt > 2*s.limit {
		s.tooLarge(fmt.Sprintf("a reply announcing %d bytes more than it has sent", s.debt))
		return false
	}
	return true
}

// elementDone ends the element just read, and every aggregate it ends.
func (s *respScanner) elementDone() {
	s.state = respType
	for s.depth > 0 {
		top := &s.stack[s.depth-1]
		if top.left--; top.left > 0 {
			return
		}
		s.depth--
		if top.attr {
			return // the annotated element is still to come
		}
	}
	s.debt = 0 // a whole reply: its allocations are backed by its bytes
}

func (s *respScanner) tooLarge(what string) {
	s.fail(fmt.Errorf("%w: %s sent %s; the limit is %d bytes (CACHE_OPTIONS max_value_size)", ErrReplyTooLarge, s.addr, what, s.limit))
}

func (s *respScanner) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}
