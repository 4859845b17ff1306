// Package memcache is a client for memcached's binary protocol, with SASL
// PLAIN authentication, for the memcached backends of package backends.
//
// It is hand-written because no maintained Go client for the binary
// protocol with SASL is available from the module proxy:
// github.com/bradfitz/gomemcache speaks only the text protocol, which
// memcached turns off when it requires SASL (-S), and the binary clients
// that can be had hold a single connection that is not safe for concurrent
// use. The protocol is small (a 24-byte header, then extras, key and value),
// so the client is too.
//
// A [Client] keeps a pool of idle connections per server and authenticates
// each new connection before its first command, since a SASL memcached
// closes a connection that sends anything else first. A key's server is
// chosen by [PickServer]. Every round trip is bounded by the client's
// Timeout and by the context's deadline, and ends early when the context is
// cancelled. A Client is safe for concurrent use: each call takes a
// connection of its own. The requests of a multi-key call are pipelined on
// one connection per server, written by one goroutine while the caller
// reads the responses, so that neither side's socket buffer can fill up and
// stall the other; the servers of one call are asked in parallel.
//
// Keys are sent as they are: the binary protocol carries any bytes, and the
// client checks only memcached's length limit of 1 to 250 bytes. Callers
// that share a server with text-protocol clients keep keys free of spaces
// and control characters themselves.
package memcache

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrCacheMiss means the key holds no item.
	ErrCacheMiss = errors.New("memcache: cache miss")
	// ErrNotStored means an Add found the key present.
	ErrNotStored = errors.New("memcache: item not stored")
	// ErrCASConflict means a CompareAndSwap found the item changed since it
	// was read.
	ErrCASConflict = errors.New("memcache: compare-and-swap conflict")
	// ErrTooLarge means the value is larger than the server's item size
	// (memcached -I, 1 MiB by default).
	ErrTooLarge = errors.New("memcache: value too large")
	// ErrNonNumeric means Incr or Decr found a value that is not a decimal
	// uint64.
	ErrNonNumeric = errors.New("memcache: cannot increment or decrement a non-numeric value")
	// ErrAuth means the server refused the SASL credentials, or requires
	// credentials that were not given, or cannot check the ones given.
	ErrAuth = errors.New("memcache: authentication failed")
	// ErrMalformedKey means a key is empty or longer than 250 bytes.
	ErrMalformedKey = errors.New("memcache: key is empty or longer than 250 bytes")
	// ErrServer wraps an error status the client has no sentinel for.
	ErrServer = errors.New("memcache: server error")
	// ErrProtocol means a response did not follow the protocol; the
	// connection it came on is closed.
	ErrProtocol = errors.New("memcache: malformed response")
	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("memcache: client is closed")
	// ErrPoolTimeout means a call found all MaxConns connections to its
	// server busy for longer than the client's Timeout.
	ErrPoolTimeout = errors.New("memcache: timed out waiting for a free connection")
)

// MaxKeyLen is memcached's key length limit.
const MaxKeyLen = 250

// NoCreate, as the exptime of Incr or Decr, makes a missing key an
// ErrCacheMiss instead of creating it.
const NoCreate = 0xffffffff

// Defaults of Options.
const (
	DefaultDialTimeout  = time.Second
	DefaultTimeout      = time.Second
	DefaultMaxIdleConns = 16
	// DefaultMaxConns is the default cap on connections per server: enough
	// to keep a server busy from one process, a small share of memcached's
	// own limit of 1024 connections (-c), which several processes share.
	DefaultMaxConns = 64
	// DefaultMaxValueSize is the default of Options.MaxValueSize:
	// memcached's default item size (-I 1m), so no value a default server
	// stores is refused.
	DefaultMaxValueSize = 1 << 20
)

// maxMessage is how many bytes of a server's error message an error
// quotes; the rest is counted, not kept.
const maxMessage = 1 << 10

// Options configure a Client.
type Options struct {
	// Servers are "host:port" addresses, or paths of Unix sockets (any
	// address containing a "/"). At least one is required.
	Servers []string
	// Username and Password, when Username is not empty, are sent with
	// SASL PLAIN on every new connection.
	Username, Password string
	// DialTimeout bounds connecting and authenticating; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Timeout bounds each round trip after connecting; 0 means
	// DefaultTimeout. A context deadline that comes sooner wins.
	Timeout time.Duration
	// MaxIdleConns is how many idle connections are kept per server; 0
	// means DefaultMaxIdleConns. Calls are never refused for want of a
	// connection: beyond the idle ones, new ones are opened and closed.
	MaxIdleConns int
	// MaxConns caps the connections open to each server at once; 0 means
	// DefaultMaxConns. A call that finds them all busy waits for one, for
	// as long as its context and the client's Timeout allow, and then
	// fails with ErrPoolTimeout.
	MaxConns int
	// MaxValueSize is the largest value the client writes or reads; 0
	// means DefaultMaxValueSize. Set it to the server's item size (-I). A
	// reply announcing a larger body is ErrTooLarge and is not read: the
	// client never allocates what a header claims beyond this.
	MaxValueSize int
}

// Item is one stored item.
type Item struct {
	// Key is the item's key.
	Key string
	// Value is the stored bytes. Values read from the server are never
	// nil; GetMulti marks a miss with a nil Value.
	Value []byte
	// Flags are 32 bits stored with the value, opaque to the server.
	Flags uint32
	// Expiration is the exptime sent with a write: 0 never expires, up to
	// 30 days (2592000) is seconds from now, anything larger an absolute
	// Unix time. Reads leave it 0: the protocol does not report it.
	Expiration uint32
	// CAS is the item's compare-and-swap token: set by reads, checked by
	// CompareAndSwap.
	CAS uint64
}

// Client talks to a set of memcached servers. Build one with New.
type Client struct {
	servers      []*server
	username     string
	password     string
	dialTimeout  time.Duration
	timeout      time.Duration
	maxIdleConns int
	maxConns     int
	maxValue     int
	closed       atomic.Bool
}

// server is one server's connection pool. Every open connection, idle or
// in use, and every dial in progress holds one of maxConns slots. A call
// that finds no idle connection and no free slot queues a channel in
// waiters; a connection put back, or a slot freed by a closed one, goes to
// the first waiter (a nil *conn hands over the slot: the waiter dials).
type server struct {
	network, addr string

	mu      sync.Mutex
	idle    []*conn
	open    int          // slots held: connections open or being dialled
	waiters []chan *conn // FIFO; each has room for one grant

	dials atomic.Int64 // connections opened, for tests
}

type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// New returns a client for opts.Servers. It does not connect: the first
// call to each server does, and [Client.Ping] checks them all.
func New(opts Options) (*Client, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("memcache: no servers given")
	}
	switch {
	case opts.DialTimeout < 0 || opts.Timeout < 0:
		return nil, fmt.Errorf("memcache: timeouts must not be negative (dial %v, round trip %v)", opts.DialTimeout, opts.Timeout)
	case opts.MaxIdleConns < 0 || opts.MaxConns < 0 || opts.MaxValueSize < 0:
		return nil, fmt.Errorf("memcache: MaxIdleConns %d, MaxConns %d and MaxValueSize %d must not be negative",
			opts.MaxIdleConns, opts.MaxConns, opts.MaxValueSize)
	case opts.Username == "" && opts.Password != "":
		return nil, errors.New("memcache: a SASL password without a username")
	}
	c := &Client{
		username:     opts.Username,
		password:     opts.Password,
		dialTimeout:  orDefault(opts.DialTimeout, DefaultDialTimeout),
		timeout:      orDefault(opts.Timeout, DefaultTimeout),
		maxIdleConns: orDefault(opts.MaxIdleConns, DefaultMaxIdleConns),
		maxConns:     orDefault(opts.MaxConns, DefaultMaxConns),
		maxValue:     orDefault(opts.MaxValueSize, DefaultMaxValueSize),
	}
	for _, addr := range opts.Servers {
		s := &server{network: "tcp", addr: addr}
		if strings.Contains(addr, "/") {
			s.network = "unix"
		} else if host, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return nil, fmt.Errorf("memcache: server address %q is not host:port or a socket path", addr)
		} else if host == "" {
			s.addr = net.JoinHostPort("127.0.0.1", port)
		}
		c.servers = append(c.servers, s)
	}
	return c, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Close closes the idle connections and makes every later call fail with
// ErrClosed. Calls in flight finish, and their connections are closed
// afterwards.
func (c *Client) Close() error {
	c.closed.Store(true)
	for _, s := range c.servers {
		s.mu.Lock()
		for _, cn := range s.idle {
			cn.nc.Close()
		}
		s.open -= len(s.idle)
		s.idle = nil
		s.mu.Unlock()
	}
	return nil
}

// server returns the server of key after checking the key and the client.
func (c *Client) server(key string) (*server, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if len(key) == 0 || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("%w: %d bytes: %.60q", ErrMalformedKey, len(key), key)
	}
	return c.servers[PickServer(key, len(c.servers))], nil
}

// Get returns the item under key, or ErrCacheMiss.
func (c *Client) Get(ctx context.Context, key string) (Item, error) {
	s, err := c.server(key)
	if err != nil {
		return Item{}, err
	}
	req := request{op: opGet, key: key}
	resp, err := c.do(ctx, s, &req)
	if err != nil {
		return Item{}, err
	}
	if resp.status != statusOK {
		return Item{}, s.statusError(&req, resp)
	}
	return Item{Key: key, Value: resp.value, Flags: resp.flags, CAS: resp.cas}, nil
}

// GetMulti returns one Item per key, in order; a miss has a nil Value. A
// key may appear more than once. Any error other than a miss fails the
// whole call.
func (c *Client) GetMulti(ctx context.Context, keys []string) ([]Item, error) {
	items := make([]Item, len(keys))
	var mu sync.Mutex
	var first error
	err := c.multi(ctx, keys, func(int, *request) {}, opGet, func(i int, req *request, resp response, s *server) {
		switch resp.status {
		case statusOK:
			items[i] = Item{Key: keys[i], Value: resp.value, Flags: resp.flags, CAS: resp.cas}
		case statusKeyNotFound:
			items[i] = Item{Key: keys[i]}
		default:
			mu.Lock()
			if first == nil {
				first = s.statusError(req, resp)
			}
			mu.Unlock()
		}
	})
	if err == nil {
		err = first
	}
	if err != nil {
		return nil, err
	}
	return items, nil
}

// Set stores item, replacing any item under its key.
func (c *Client) Set(ctx context.Context, item Item) error {
	return c.store(ctx, opSet, item, 0)
}

// Add stores item only if its key holds no item; otherwise it returns
// ErrNotStored.
func (c *Client) Add(ctx context.Context, item Item) error {
	return c.store(ctx, opAdd, item, 0)
}

// CompareAndSwap stores item only if the item under its key still has
// item.CAS as its token: ErrCASConflict if it changed, ErrCacheMiss if it
// is gone. A zero CAS is an unconditional Set.
func (c *Client) CompareAndSwap(ctx context.Context, item Item) error {
	return c.store(ctx, opSet, item, item.CAS)
}

func (c *Client) store(ctx context.Context, op byte, item Item, cas uint64) error {
	s, err := c.server(item.Key)
	if err != nil {
		return err
	}
	if err := c.checkSize(item); err != nil {
		return err
	}
	req := request{op: op, key: item.Key, value: item.Value, cas: cas}
	req.storage(item.Flags, item.Expiration)
	resp, err := c.do(ctx, s, &req)
	if err != nil {
		return err
	}
	if resp.status != statusOK {
		return s.statusError(&req, resp)
	}
	return nil
}

// SetMulti stores every item, pipelined, and returns nil if all were
// stored, or else one error per item (nil for those stored).
func (c *Client) SetMulti(ctx context.Context, items []Item) []error {
	var tooLarge []error
	keys := make([]string, 0, len(items))
	sent := make([]int, 0, len(items)) // index in items of each key sent
	for i := range items {
		if err := c.checkSize(items[i]); err != nil {
			if tooLarge == nil {
				tooLarge = make([]error, len(items))
			}
			tooLarge[i] = err
			continue
		}
		keys = append(keys, items[i].Key)
		sent = append(sent, i)
	}
	errs := c.multiErrors(ctx, keys, opSet, func(j int, req *request) {
		req.value = items[sent[j]].Value
		req.storage(items[sent[j]].Flags, items[sent[j]].Expiration)
	})
	if tooLarge == nil {
		return errs
	}
	for j, err := range errs {
		tooLarge[sent[j]] = err
	}
	return tooLarge
}

// checkSize refuses a value larger than MaxValueSize, which the client
// would refuse to read back.
func (c *Client) checkSize(item Item) error {
	if len(item.Value) > c.maxValue {
		return fmt.Errorf("%w: %d bytes under %.60q, over the client's limit of %d (max_value_size)", ErrTooLarge, len(item.Value), item.Key, c.maxValue)
	}
	return nil
}

// Delete removes the item under key, or returns ErrCacheMiss.
func (c *Client) Delete(ctx context.Context, key string) error {
	s, err := c.server(key)
	if err != nil {
		return err
	}
	req := request{op: opDelete, key: key}
	resp, err := c.do(ctx, s, &req)
	if err != nil {
		return err
	}
	if resp.status != statusOK {
		return s.statusError(&req, resp)
	}
	return nil
}

// DeleteMulti removes every key, pipelined, and returns nil if all were
// removed, or else one error per key: ErrCacheMiss for a key that held no
// item.
func (c *Client) DeleteMulti(ctx context.Context, keys []string) []error {
	return c.multiErrors(ctx, keys, opDelete, func(int, *request) {})
}

// Incr adds delta to the decimal uint64 under key, wrapping around at
// 2^64, and returns the result. A missing key is created holding initial,
// with exptime, unless exptime is NoCreate, which makes it ErrCacheMiss. A
// value that is not a decimal uint64 is ErrNonNumeric. The server writes
// the new number in place, padded with spaces when it is shorter than the
// old one, and keeps the item's flags and expiration. When two clients
// create the same key at once, the server answers one of them
// ErrNotStored; it can simply try again.
//
// memcached (1.6 at least) checks a number of 2^63 or more for a minus sign
// with strchr, which reads on past the value into whatever memory follows
// it, so on such a value Incr and Decr fail with ErrNonNumeric whenever a
// '-' happens to lie there.
func (c *Client) Incr(ctx context.Context, key string, delta, initial uint64, exptime uint32) (uint64, error) {
	return c.delta(ctx, opIncrement, key, delta, initial, exptime)
}

// Decr subtracts delta from the decimal uint64 under key, stopping at 0;
// otherwise it is like Incr.
func (c *Client) Decr(ctx context.Context, key string, delta, initial uint64, exptime uint32) (uint64, error) {
	return c.delta(ctx, opDecrement, key, delta, initial, exptime)
}

func (c *Client) delta(ctx context.Context, op byte, key string, delta, initial uint64, exptime uint32) (uint64, error) {
	s, err := c.server(key)
	if err != nil {
		return 0, err
	}
	req := request{op: op, key: key, nExtras: 20}
	binary.BigEndian.PutUint64(req.extras[0:8], delta)
	binary.BigEndian.PutUint64(req.extras[8:16], initial)
	binary.BigEndian.PutUint32(req.extras[16:20], exptime)
	resp, err := c.do(ctx, s, &req)
	if err != nil {
		return 0, err
	}
	if resp.status != statusOK {
		return 0, s.statusError(&req, resp)
	}
	if len(resp.value) != 8 {
		return 0, fmt.Errorf("%w: %s answered %s with %d bytes, want 8", ErrProtocol, s.addr, opName(op), len(resp.value))
	}
	return binary.BigEndian.Uint64(resp.value), nil
}

// FlushAll invalidates every item on every server.
func (c *Client) FlushAll(ctx context.Context) error {
	return c.everyServer(ctx, opFlush)
}

// Ping checks that every server answers and, with SASL, accepts the
// credentials.
func (c *Client) Ping(ctx context.Context) error {
	return c.everyServer(ctx, opNoop)
}

func (c *Client) everyServer(ctx context.Context, op byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	errs := make([]error, len(c.servers))
	var wg sync.WaitGroup
	for i, s := range c.servers {
		wg.Go(func() {
			req := request{op: op}
			resp, err := c.do(ctx, s, &req)
			if err == nil && resp.status != statusOK {
				err = s.statusError(&req, resp)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// multiErrors runs one request with opcode op per key and returns nil, or
// one error per key when any failed.
func (c *Client) multiErrors(ctx context.Context, keys []string, op byte, build func(int, *request)) []error {
	errs := make([]error, len(keys))
	var failed atomic.Bool
	err := c.multi(ctx, keys, build, op, func(i int, req *request, resp response, s *server) {
		if resp.status != statusOK {
			errs[i] = s.statusError(req, resp)
			failed.Store(true)
		}
	})
	if err != nil {
		// Per-server failures were already recorded by multi; a failure
		// before any I/O applies to every key.
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	if !failed.Load() {
		return nil
	}
	return errs
}

// multi sends one request per key, built by build, to the keys' servers: a
// pipelined batch per server, the servers in parallel. done is called once
// per answered request, from any goroutine, never twice for one index. The
// error is the first I/O or protocol failure, if any.
func (c *Client) multi(ctx context.Context, keys []string, build func(int, *request), op byte,
	done func(i int, req *request, resp response, s *server)) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(keys) == 0 {
		return nil
	}
	byServer := make([][]int, len(c.servers))
	for i, k := range keys {
		if len(k) == 0 || len(k) > MaxKeyLen {
			return fmt.Errorf("%w: %d bytes: %.60q", ErrMalformedKey, len(k), k)
		}
		n := PickServer(k, len(c.servers))
		byServer[n] = append(byServer[n], i)
	}
	run := func(s *server, idx []int) error {
		reqs := make([]request, len(idx))
		for j, i := range idx {
			reqs[j] = request{op: op, key: keys[i]}
			build(i, &reqs[j])
		}
		resps, err := c.doBatch(ctx, s, reqs)
		if err != nil {
			return err
		}
		for j, i := range idx {
			done(i, &reqs[j], resps[j], s)
		}
		return nil
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, idx := range byServer {
		if len(idx) == 0 {
			continue
		}
		if len(idx) == len(keys) { // one server: no goroutine needed
			return run(c.servers[n], idx)
		}
		wg.Go(func() {
			if err := run(c.servers[n], idx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// do runs one request on a pooled connection.
func (c *Client) do(ctx context.Context, s *server, req *request) (response, error) {
	cn, err := c.getConn(ctx, s)
	if err != nil {
		return response{}, err
	}
	stop := cn.setDeadline(ctx, c.timeout)
	err = writeRequest(cn.w, 0, req)
	if err == nil {
		err = cn.w.Flush()
	}
	var resp response
	if err == nil {
		resp, err = readResponse(cn.r, req.op, 0, c.maxValue)
	}
	return resp, c.release(ctx, s, cn, stop, req.op, resp.status == statusAuthError, err)
}

// doBatch runs reqs pipelined on one pooled connection and returns their
// responses in order. The requests are written by a goroutine while the
// responses are read: a server that cannot send answers stops reading
// requests, so writing everything first could wait on a full socket
// buffer forever.
func (c *Client) doBatch(ctx context.Context, s *server, reqs []request) ([]response, error) {
	cn, err := c.getConn(ctx, s)
	if err != nil {
		return nil, err
	}
	stop := cn.setDeadline(ctx, c.timeout)
	written := make(chan error, 1)
	go func() {
		var err error
		for i := range reqs {
			if err = writeRequest(cn.w, uint32(i), &reqs[i]); err != nil {
				break
			}
		}
		if err == nil {
			err = cn.w.Flush()
		}
		if err != nil {
			cn.nc.Close() // wakes the reader, which would wait for answers never asked for
		}
		written <- err
	}()
	resps := make([]response, len(reqs))
	var authError error
	for i := range reqs {
		if resps[i], err = readResponse(cn.r, reqs[i].op, uint32(i), c.maxValue); err != nil {
			cn.nc.Close() // wakes the writer
			break
		}
		if resps[i].status == statusAuthError {
			// The server closes the connection after this answer.
			authError = s.statusError(&reqs[i], resps[i])
			cn.nc.Close()
			break
		}
	}
	if werr := <-written; err == nil {
		err = werr
	}
	if authError != nil {
		c.release(ctx, s, cn, stop, reqs[0].op, true, nil)
		return nil, authError
	}
	if err = c.release(ctx, s, cn, stop, reqs[0].op, false, err); err != nil {
		return nil, err
	}
	return resps, nil
}

// release returns cn to the pool after a round trip, or closes it when the
// round trip failed, the server is about to close it (it does after an
// authentication error), or the context's cancellation may still touch it;
// and it explains err.
func (c *Client) release(ctx context.Context, s *server, cn *conn, stop func() bool, op byte, serverCloses bool, err error) error {
	interrupted := stop != nil && !stop()
	if err != nil || interrupted || serverCloses {
		c.closeConn(s, cn)
	} else {
		c.putConn(s, cn)
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("memcache: server %s: %s: %w", s.addr, opName(op), err)
	}
	ctxErr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(d) {
		ctxErr = context.DeadlineExceeded // the connection's deadline, set from ctx's, fired first
	}
	if ctxErr != nil {
		return fmt.Errorf("memcache: server %s: %s: %w (%w)", s.addr, opName(op), ctxErr, err)
	}
	return fmt.Errorf("memcache: server %s: %s: %w", s.addr, opName(op), err)
}

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read
// or write at once.
var aLongTimeAgo = time.Unix(1, 0)

// setDeadline bounds the next round trip by timeout and ctx's deadline and
// arranges for ctx's cancellation to interrupt it. The returned stop, if
// not nil, reports false when the cancellation already fired.
func (cn *conn) setDeadline(ctx context.Context, timeout time.Duration) (stop func() bool) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = cn.nc.SetDeadline(deadline)
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(aLongTimeAgo) })
}

// getConn returns an idle connection to s, or dials one if s has a free
// slot, or else waits for either, bounded by ctx and the client's Timeout.
func (c *Client) getConn(ctx context.Context, s *server) (*conn, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		cn := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return cn, nil
	}
	if s.open < c.maxConns {
		s.open++
		s.mu.Unlock()
		return c.dialSlot(ctx, s)
	}
	w := make(chan *conn, 1)
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	var err error
	select {
	case cn := <-w:
		return c.granted(ctx, s, cn)
	case <-ctx.Done():
		err = fmt.Errorf("memcache: server %s: waiting for a free connection: %w", s.addr, ctx.Err())
	case <-timer.C:
		err = fmt.Errorf("%w: server %s: all %d connections busy for %v (max_conns)", ErrPoolTimeout, s.addr, c.maxConns, c.timeout)
	}
	s.mu.Lock()
	if i := slices.Index(s.waiters, w); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	// Granted while giving up: pass the grant on.
	if cn := <-w; cn != nil {
		c.putConn(s, cn)
	} else {
		c.releaseSlot(s)
	}
	return nil, err
}

// granted takes what a waiter was handed: a connection, or a slot to dial
// with (nil).
func (c *Client) granted(ctx context.Context, s *server, cn *conn) (*conn, error) {
	if cn != nil {
		return cn, nil
	}
	return c.dialSlot(ctx, s)
}

// dialSlot dials s with a slot already held, giving the slot back if the
// dial fails.
func (c *Client) dialSlot(ctx context.Context, s *server) (*conn, error) {
	if c.closed.Load() {
		c.releaseSlot(s)
		return nil, ErrClosed
	}
	cn, err := c.dial(ctx, s)
	if err != nil {
		c.releaseSlot(s)
		return nil, err
	}
	return cn, nil
}

// releaseSlot frees the slot of a connection that was closed or never
// opened: to the first waiter, which then dials, or to the pool.
func (c *Client) releaseSlot(s *server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		w <- nil
		return
	}
	s.open--
}

// closeConn closes cn and frees its slot.
func (c *Client) closeConn(s *server, cn *conn) {
	cn.nc.Close()
	c.releaseSlot(s)
}

// putConn hands cn to the first waiter, or keeps it idle, or closes it
// when the idle list is full or the client closed.
func (c *Client) putConn(s *server, cn *conn) {
	s.mu.Lock()
	if !c.closed.Load() {
		if len(s.waiters) > 0 {
			w := s.waiters[0]
			s.waiters = s.waiters[1:]
			s.mu.Unlock()
			w <- cn
			return
		}
		if len(s.idle) < c.maxIdleConns {
			s.idle = append(s.idle, cn)
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	c.closeConn(s, cn)
}

// dial opens a connection to s and, with SASL, authenticates it, all
// within the dial timeout.
func (c *Client) dial(ctx context.Context, s *server) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, s.network, s.addr)
	if err != nil {
		return nil, fmt.Errorf("memcache: server %s: %w", s.addr, err)
	}
	s.dials.Add(1)
	cn := &conn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	if c.username == "" {
		return cn, nil
	}
	req := request{op: opSASLAuth, key: "PLAIN", value: []byte("\x00" + c.username + "\x00" + c.password)}
	stop := cn.setDeadline(ctx, c.dialTimeout)
	err = writeRequest(cn.w, 0, &req)
	if err == nil {
		err = cn.w.Flush()
	}
	var resp response
	if err == nil {
		resp, err = readResponse(cn.r, req.op, 0, c.maxValue)
	}
	if err == nil && stop != nil && !stop() {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("memcache: server %s: SASL authentication: %w", s.addr, err)
	}
	switch resp.status {
	case statusOK:
		return cn, nil
	case statusUnknownCommand:
		err = fmt.Errorf("%w: server %s does not offer SASL authentication (memcached needs -S and a SASL configuration): %s", ErrAuth, s.addr, resp.message())
	case statusAuthError, statusAuthContinue:
		err = fmt.Errorf("%w: server %s refused SASL PLAIN credentials of user %q: %s", ErrAuth, s.addr, c.username, resp.message())
	default:
		err = fmt.Errorf("%w: server %s: SASL authentication: status %#x: %s", ErrAuth, s.addr, resp.status, resp.message())
	}
	nc.Close()
	return nil, err
}

// statusError turns an error status into an error.
func (s *server) statusError(req *request, resp response) error {
	switch resp.status {
	case statusKeyNotFound:
		return ErrCacheMiss
	case statusKeyExists:
		if req.cas != 0 {
			return ErrCASConflict
		}
		return ErrNotStored
	case statusNotStored:
		return ErrNotStored
	}
	var sentinel error
	switch resp.status {
	case statusTooLarge:
		sentinel = ErrTooLarge
	case statusNonNumeric:
		sentinel = ErrNonNumeric
	case statusAuthError, statusAuthContinue:
		return fmt.Errorf("%w: server %s requires SASL authentication (give a username and password): %s %.60q: %s",
			ErrAuth, s.addr, opName(req.op), req.key, resp.message())
	default:
		sentinel = ErrServer
	}
	what := fmt.Sprintf("%s %.60q", opName(req.op), req.key)
	if req.op == opSet || req.op == opAdd {
		what += fmt.Sprintf(" (%d bytes)", len(req.value))
	}
	return fmt.Errorf("%w: server %s: %s: status %#x: %s", sentinel, s.addr, what, resp.status, resp.message())
}
