// Package uwsgi is a client for the remote interface of uWSGI's cache
// plugin: the "magic" commands (modifier1 111, modifier2 17) that uWSGI's
// own cache_get, cache_update, cache_set, cache_del, cache_exists and
// cache_clear send when they are given a cache name of the form
// name@host:port. It is what lets a Go program use a uWSGI --cache2 cache
// from outside uWSGI.
//
// It is hand-written because no Go client for this protocol exists. It is
// small because the protocol is: each request opens its own connection,
// sends a 4-byte header and a few length-prefixed key/value pairs (plus the
// value, for writes), and reads back either the same kind of header and
// pairs (plus the value, for get) or nothing at all. The server answers a
// miss, a refused write and an unknown cache alike by closing the
// connection without a byte; [ErrNoReply] is that answer, and callers that
// need to tell the cases apart must ask again in another way.
//
// A request never outlives its call: it honours the context's deadline and
// cancellation as well as the client's own timeouts, and starts no
// goroutine that can outlive it. [Client.Conns] bounds the connections
// open at once.
//
// Replies are untrusted: a part the reply's header announces is allocated
// as its bytes arrive, beyond a first step, so a server cannot make the
// client hold memory it has not sent; errors quote at most 64 bytes of a
// reply.
package uwsgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sync/semaphore"
)

const (
	modifier1 = 111 // the cache plugin
	modifier2 = 17  // its "magic" key/value interface
	// maxVars is the most the 16-bit size field of a header can describe.
	maxVars = 1<<16 - 1
)

// Errors that callers branch on with errors.Is.
var (
	// ErrNoReply means the server closed the connection without replying:
	// for get, exists and del the key is missing (or the cache is unknown);
	// for set and update the write was refused (set: the key exists; both:
	// the cache is full, or the value or key is over the cache's limits).
	ErrNoReply = errors.New("uwsgi: server closed the connection without a reply")
	// ErrReset means the server reset the connection. For set and update it
	// refused the request before reading the value: the value is larger
	// than the cache's item size, or the cache name is unknown.
	ErrReset = errors.New("uwsgi: server reset the connection")
	// ErrProtocol means the reply does not follow the protocol.
	ErrProtocol = errors.New("uwsgi: malformed reply")
	// ErrTooLarge means a request or a reply is larger than the protocol or
	// the client's MaxValueSize allows.
	ErrTooLarge = errors.New("uwsgi: too large")
	// ErrPoolTimeout means a request found every connection Conns allows
	// taken, and none came free within Timeout.
	ErrPoolTimeout = errors.New("uwsgi: timed out waiting for a free connection")
)

// Client sends cache commands to one uWSGI server. The zero value is not
// usable: Addr is required. A Client is safe for concurrent use; it holds no
// connection between requests.
type Client struct {
	// Network is "tcp" or "unix"; empty means "tcp".
	Network string
	// Addr is "host:port" for TCP, or the socket's path for "unix".
	Addr string
	// Cache names the --cache2 cache; empty means the server's first cache.
	Cache string
	// DialTimeout bounds connecting; 0 means no bound beyond the context's.
	DialTimeout time.Duration
	// Timeout bounds the exchange after connecting (sending the request and
	// reading the reply); 0 means no bound beyond the context's.
	Timeout time.Duration
	// MaxValueSize is the largest value a get reply may carry; a larger one
	// is ErrTooLarge. 0 means no limit.
	MaxValueSize int
	// Conns, if not nil, bounds the connections open at once: a request
	// holds one unit from before it connects until its connection is
	// closed, and waits for one, as long as its context and Timeout allow,
	// when all are taken (then ErrPoolTimeout). Copies of a Client share
	// it.
	Conns *semaphore.Weighted
	// CloseWait bounds the wait for the server to close the connection
	// after its reply; 0 means 50 ms.
	CloseWait time.Duration
}

// Get returns the value stored under key and its expiry as a Unix time in
// seconds (0: never). A missing key is ErrNoReply. uWSGI reports an entry
// whose expiry has passed until its sweeper removes it, so callers compare
// expires with the clock.
func (c *Client) Get(ctx context.Context, key string) (value []byte, expires int64, err error) {
	r, err := c.do(ctx, c.request("get", key, -1, 0), nil, true)
	return r.value, r.expires, err
}

// Exists reports nil when key is present (expired entries included, until
// swept) and ErrNoReply when it is not.
func (c *Client) Exists(ctx context.Context, key string) error {
	_, err := c.do(ctx, c.request("exists", key, -1, 0), nil, false)
	return err
}

// Set stores the concatenation of value under key unless key is present
// (uWSGI's cache_set); a refusal is ErrNoReply. ttl is in seconds, 0 for
// never.
func (c *Client) Set(ctx context.Context, key string, ttl int64, value ...[]byte) error {
	return c.write(ctx, "set", key, ttl, value)
}

// Update stores the concatenation of value under key, replacing any entry
// and its expiry (uWSGI's cache_update); a refusal is ErrNoReply. ttl is in
// seconds, 0 for never.
func (c *Client) Update(ctx context.Context, key string, ttl int64, value ...[]byte) error {
	return c.write(ctx, "update", key, ttl, value)
}

// Del removes key; a missing key is ErrNoReply.
func (c *Client) Del(ctx context.Context, key string) error {
	_, err := c.do(ctx, c.request("del", key, -1, 0), nil, false)
	return err
}

// Clear empties the cache; ErrNoReply means the server did not confirm it
// (the cache name is unknown).
//
// uWSGI 2.0 clears a named cache slot by slot up to the item count of the
// server's first cache: on a cache with fewer items than the first the
// worker crashes holding the cache lock and the server hangs, and on one
// with more items the upper slots survive. Clear is only safe on the first
// cache or when all caches have the same item count.
func (c *Client) Clear(ctx context.Context) error {
	_, err := c.do(ctx, c.request("clear", "", -1, 0), nil, false)
	return err
}

func (c *Client) write(ctx context.Context, cmd, key string, ttl int64, value [][]byte) error {
	size := 0
	for _, v := range value {
		size += len(v)
	}
	if ttl < 0 {
		return fmt.Errorf("uwsgi: %s: negative ttl %d", cmd, ttl)
	}
	_, err := c.do(ctx, c.request(cmd, key, size, ttl), value, false)
	return err
}

// request encodes a magic request: header and vars. size < 0 leaves out the
// size var (commands without a value); ttl 0 leaves out expires.
func (c *Client) request(cmd, key string, size int, ttl int64) []byte {
	// The size and expires vars take at most 2*(4+7+20) bytes.
	n := 4 + varLen("cmd", cmd) + varLen("key", key) + varLen("cache", c.Cache) + 62
	buf := make([]byte, 4, n)
	buf = appendVar(buf, "cmd", cmd)
	if cmd != "clear" {
		buf = appendVar(buf, "key", key)
	}
	if c.Cache != "" {
		buf = appendVar(buf, "cache", c.Cache)
	}
	if size >= 0 {
		buf = appendVar(buf, "size", strconv.Itoa(size))
	}
	if ttl > 0 {
		buf = appendVar(buf, "expires", strconv.FormatInt(ttl, 10))
	}
	buf[0] = modifier1
	binary.LittleEndian.PutUint16(buf[1:3], uint16(min(len(buf)-4, maxVars))) // checked in do
	buf[3] = modifier2
	return buf
}

func varLen(k, v string) int { return 4 + len(k) + len(v) }

func appendVar(buf []byte, k, v string) []byte {
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(k)))
	buf = append(buf, k...)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(v)))
	return append(buf, v...)
}

// reply is what a successful command returns.
type reply struct {
	value   []byte
	expires int64
}

// closeWait is the default of Client.CloseWait.
const closeWait = 50 * time.Millisecond

// Reply parts are read in steps, growing the buffer as bytes arrive, so
// that a header announcing a large part costs memory only once the part's
// bytes come: up to valueStep bytes of a value are allocated at once (most
// values fit), up to varsStep of a vars block.
const (
	valueStep = 64 << 10
	varsStep  = 4 << 10
)

// quoteMax bounds what of a reply's text an error quotes.
const quoteMax = 64

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// do runs one request on a fresh connection.
// acquire waits for a free connection as long as ctx and Timeout allow:
// the same rule as memcached's pool, so that a burst of requests past the
// cap fails at the round-trip timeout rather than waiting on ctx alone.
func (c *Client) acquire(ctx context.Context) error {
	wait := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	err := c.Conns.Acquire(wait, 1)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: all connections busy for %v (max_conns)", ErrPoolTimeout, c.Timeout)
	}
	if err != nil {
		return c.fail(ctx, "wait for a free connection", err)
	}
	return nil
}

func (c *Client) do(ctx context.Context, req []byte, body [][]byte, wantValue bool) (reply, error) {
	if len(req)-4 > maxVars {
		return reply{}, fmt.Errorf("%w: request of %d bytes (key and cache name) exceeds the protocol's %d-byte limit", ErrTooLarge, len(req)-4, maxVars)
	}
	network := c.Network
	if network == "" {
		network = "tcp"
	}
	if c.Conns != nil {
		if err := c.acquire(ctx); err != nil {
			return reply{}, err
		}
		defer c.Conns.Release(1)
	}
	d := net.Dialer{Timeout: c.DialTimeout}
	conn, err := d.DialContext(ctx, network, c.Addr)
	if err != nil {
		return reply{}, c.fail(ctx, "connect", err)
	}
	defer conn.Close()
	if c.Timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(c.Timeout))
	}
	if dl, ok := ctx.Deadline(); ok && (c.Timeout <= 0 || time.Until(dl) < c.Timeout) {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation (not only a deadline) must interrupt blocked I/O; the
	// callback runs only if ctx ends while the request is in flight.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	bufs := make(net.Buffers, 0, 1+len(body))
	bufs = append(bufs, req)
	for _, b := range body {
		if len(b) > 0 {
			bufs = append(bufs, b)
		}
	}
	if _, err := bufs.WriteTo(conn); err != nil {
		return reply{}, c.fail(ctx, "send", err)
	}
	r, err := c.readReply(conn, wantValue)
	if err != nil {
		return reply{}, c.fail(ctx, "read reply", err)
	}
	// uWSGI closes right after replying. Waiting for that puts the closed
	// connection's TIME_WAIT state on the server's side, so a busy client
	// does not run out of ephemeral ports. The wait is short, in case
	// something between us keeps the connection open, and its error is of
	// no interest once the reply is complete.
	wait := c.CloseWait
	if wait <= 0 {
		wait = closeWait
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	var one [1]byte
	_, _ = conn.Read(one[:])
	return r, nil
}

// readReply reads a header, the vars and, for get, the value.
func (c *Client) readReply(conn io.Reader, wantValue bool) (reply, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		switch {
		case errors.Is(err, io.EOF):
			return reply{}, ErrNoReply
		case errors.Is(err, io.ErrUnexpectedEOF):
			return reply{}, fmt.Errorf("%w: header: %w", ErrProtocol, err)
		}
		return reply{}, err
	}
	if hdr[0] != modifier1 || hdr[3] != modifier2 {
		return reply{}, fmt.Errorf("%w: header % x, want modifiers %d and %d", ErrProtocol, hdr, modifier1, modifier2)
	}
	vars, err := readPart(conn, int(binary.LittleEndian.Uint16(hdr[1:3])), varsStep)
	if err != nil {
		return reply{}, fmt.Errorf("%w: vars: %w", ErrProtocol, err)
	}
	var (
		r      reply
		status string
		size   = -1
	)
	err = parseVars(vars, func(k, v []byte) error {
		switch string(k) {
		case "status":
			status = string(v)
		case "size":
			n, err := strconv.ParseUint(string(v), 10, 31)
			if err != nil {
				// Not err: strconv's errors quote the whole input.
				return fmt.Errorf("size %.*q is not a length below 2 GiB", quoteMax, v)
			}
			size = int(n)
		case "expires":
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("expires %.*q is not a Unix time", quoteMax, v)
			}
			r.expires = n
		}
		return nil
	})
	if err != nil {
		return reply{}, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if status != "ok" {
		// Documented but never sent by uWSGI 2.0: "notfound" and "error".
		return reply{}, fmt.Errorf("%w: status %.*q", ErrNoReply, quoteMax, status)
	}
	if !wantValue {
		return r, nil
	}
	if size < 0 {
		return reply{}, fmt.Errorf("%w: get reply without a size", ErrProtocol)
	}
	if c.MaxValueSize > 0 && size > c.MaxValueSize {
		return reply{}, fmt.Errorf("%w: the stored value is %d bytes, over the client's limit of %d", ErrTooLarge, size, c.MaxValueSize)
	}
	if r.value, err = readPart(conn, size, valueStep); err != nil {
		return reply{}, fmt.Errorf("%w: value: %w", ErrProtocol, err)
	}
	return r, nil
}

// readPart reads the n bytes of a reply part. Up to step bytes are
// allocated at once; beyond, the buffer grows with the bytes that arrive,
// so that a server announcing more than it sends costs no more than it
// sent.
func readPart(r io.Reader, n, step int) ([]byte, error) {
	if n <= step {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(step)
	got, err := buf.ReadFrom(io.LimitReader(r, int64(n)))
	if err == nil && got < int64(n) {
		err = io.ErrUnexpectedEOF
	}
	return buf.Bytes(), err
}

// parseVars calls f for each key/value pair of a uwsgi vars block.
func parseVars(b []byte, f func(k, v []byte) error) error {
	for len(b) > 0 {
		var k, v []byte
		var ok bool
		if k, b, ok = cutField(b); !ok {
			return errors.New("truncated key")
		}
		if v, b, ok = cutField(b); !ok {
			return fmt.Errorf("truncated value of %q", k)
		}
		if err := f(k, v); err != nil {
			return err
		}
	}
	return nil
}

// cutField splits a 16-bit little-endian length and that many bytes off b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// fail turns an I/O error into the request's error: the context's error if
// it ended, ErrReset for a connection reset by the server.
func (c *Client) fail(ctx context.Context, step string, err error) error {
	if errors.Is(err, ErrNoReply) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("uwsgi: %s: %w", step, ctxErr)
	}
	// The connection's deadline may fire a moment before the context's
	// timer marks it done.
	var ne net.Error
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("uwsgi: %s: %w (%w)", step, context.DeadlineExceeded, err)
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w (%s): %w", ErrReset, step, err)
	}
	return fmt.Errorf("uwsgi: %s: %w", step, err)
}
