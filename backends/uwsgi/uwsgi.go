package uwsgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/cacheopt"
	"github.com/fragcache/fragcache/internal/namespace"
	wire "github.com/fragcache/fragcache/internal/uwsgi"
)

func init() {
	backends.Register("UWSGICache", newUWSGIFromConfig)
}

// Errors of the uWSGI backend, for errors.Is.
var (
	// ErrMalformedKey is returned for a key longer than
	// Options.MaxKeySize, or one in the space the backend reserves for
	// its own entries (keys starting with "\x00fragcache:").
	ErrMalformedKey = errors.New("backends: key not usable with the uWSGI cache")
	// ErrNotStored is returned when the server refused a write it had
	// read: almost always because the cache is full.
	ErrNotStored = errors.New("backends: the uWSGI cache refused the write")
)

// Defaults of Options.
const (
	// DefaultAddr is the server address used when CACHE_UWSGI_NAME is a
	// cache name alone: uWSGI's customary uwsgi socket on this host.
	DefaultAddr = "127.0.0.1:3031"
	// DefaultMaxValueSize is uWSGI's default item size for --cache2
	// caches (their blocksize), counting the backend's header of 1 to 17
	// bytes.
	DefaultMaxValueSize = 65536
	// DefaultMaxKeySize is uWSGI's default keysize.
	DefaultMaxKeySize = 2048
	// DefaultMaxConns is how many connections a Backend opens
	// to its server at once unless told otherwise: enough to keep a
	// server's workers busy, and well below uWSGI's default listen backlog
	// of 100 (--listen), past which connections are refused or time out,
	// so that a few processes sharing one server stay under it too.
	DefaultMaxConns = 32

	// DefaultDialTimeout and DefaultReadTimeout are a cache's timeouts, not
	// a database's, the same as Redis's and memcached's: a server that is
	// down or hung costs a page milliseconds, and the page renders
	// uncached. A context deadline that comes sooner wins.
	DefaultDialTimeout = 500 * time.Millisecond
	DefaultReadTimeout = 250 * time.Millisecond
	// uwsgiParallelism bounds the connections one many-key operation opens
	// at once: enough to overlap round trips, few enough not to flood the
	// server's listen backlog (100 by default) from one call.
	uwsgiParallelism = 8
	// uwsgiMaxAttempts bounds the retries of Add, Inc and token creation
	// when other clients keep changing the key between two requests.
	uwsgiMaxAttempts = 3
)

// Reserved keys: the empty key, which uWSGI cannot store, and the namespace
// tokens. No caller's key can start with uwsgiReserved.
const (
	uwsgiReserved    = "\x00fragcache:"
	uwsgiEmptyKey    = uwsgiReserved + "empty"
	uwsgiTokenPrefix = uwsgiReserved + "namespace:"
)

// Stored values start with a header: a flags byte, '0' plus
// uwsgiHasExpiry and uwsgiHasToken, then, as the flags say, the expiry in
// Unix milliseconds (little-endian) and the 8-byte token of the key's
// namespace at the time of the write.
const (
	uwsgiFlagsBase = '0'
	uwsgiHasToken  = 1
	uwsgiHasExpiry = 2
	uwsgiToken     = 8
	uwsgiExpiry    = 8
	uwsgiMaxHeader = 1 + uwsgiExpiry + uwsgiToken
)

// Options configure a Backend. The zero value talks to the first
// cache of a server at DefaultAddr with the default limits.
type Options struct {
	// Addr is the server's uwsgi socket (its --socket, not an HTTP one):
	// "host:port", or, as in uWSGI, anything without a colon is the path of
	// a Unix socket. Empty means DefaultAddr.
	Addr string
	// Cache is the name of the --cache2 cache; empty means the server's
	// first cache.
	Cache string
	// DialTimeout bounds connecting; 0 means DefaultDialTimeout. Each
	// operation connects
	// anew, because the server closes the connection after every reply.
	DialTimeout time.Duration
	// ReadTimeout bounds each request after connecting: sending it and
	// reading the reply. 0 means DefaultReadTimeout. A context deadline
	// that comes sooner wins.
	ReadTimeout time.Duration
	// MaxValueSize is the largest stored value, header included; 0 means
	// DefaultMaxValueSize. Set it to the cache's item size: its
	// blocksize, or blocksize×blocks with bitmap=1.
	MaxValueSize int
	// MaxKeySize is the longest key; 0 means DefaultMaxKeySize. Set it
	// to the cache's keysize; keys over about 4000 bytes also need a larger
	// --buffer-size on the server.
	MaxKeySize int
	// MaxConns is the most connections open to the server at once; an
	// operation that finds them all taken waits for one as long as its
	// context and ReadTimeout allow, then fails with an error wrapping
	// backends.ErrPoolTimeout (memcached's rule). 0 means DefaultMaxConns.
	MaxConns int
	// Namespaces are the key prefixes that Clear can remove (see Backend).
	// Open adds CACHE_KEY_PREFIX.
	Namespaces []string
	// NamespaceRefresh is how long the backend trusts its copy of a
	// namespace's token, and so how long another process's Clear of that
	// namespace can go unseen here. 0 means 1 s; a negative value reads the
	// token on every operation, at the cost of a second round trip.
	NamespaceRefresh time.Duration
}

// Backend is Flask's UWSGICache, reached over the network: it stores entries
// in a uWSGI server's --cache2 cache through the cache plugin's remote
// interface, so any Go program can share a uWSGI cache. The server must
// load the plugin (--plugin cache) and should run a master (--master),
// without which uWSGI never sweeps expired entries out of memory.
//
// Each operation opens its own connection, since the server answers one
// request per connection: 0.1 to 0.2 ms on loopback (BenchmarkUWSGI). At
// most MaxConns are open at once; an operation past the cap waits for one
// as long as its context and ReadTimeout allow, so a burst of renders queues here instead
// of overrunning the server's listen backlog.
// Operations the protocol lacks are built from others and are not atomic:
// Inc and Dec read and then write, so concurrent increments of one key can
// lose updates; Delete reads and then deletes; GetMany, SetMany and
// DeleteMany run one request per key, up to 8 at a time. Add is atomic for
// missing keys (uWSGI refuses to set a present key); replacing an expired
// entry the server still holds is not.
//
// Every value is stored behind a header of 1 to 17 bytes: a flags byte,
// the expiry time if the entry has one, and the token of its namespace if
// it is in one. The header lets empty values be stored (uWSGI refuses
// them) and makes expiry exact: uWSGI counts whole seconds, keeps expired
// entries until its sweeper runs (every --cache-expire-freq seconds, 3 by
// default), and in a purge_lru cache never expires anything. The backend
// checks the stored expiry against this machine's clock to the millisecond
// on every read, so an expired entry is a miss for Get and Has, Add and
// Inc replace it, and Delete does not count it; the server is given the
// timeout rounded up to whole seconds plus one, so its sweeper frees the
// memory afterwards. Clocks of machines sharing a cache must agree. Values
// written by other clients, such as Flask's pickles, are misses; keys are
// stored verbatim, except the empty key, which uWSGI refuses too.
//
// uWSGI cannot list keys remotely, so Clear removes a key prefix only if it
// is a declared namespace (Options.Namespaces; Open declares
// CACHE_KEY_PREFIX). Values under a namespace carry its current token, a
// random number kept in the cache itself; Clear of the namespace replaces
// the token in one request, and values carrying an old one are misses from
// then on, here at once and in other processes within NamespaceRefresh.
// Their memory is not freed: they stay until they expire or their key is
// written again, so entries in a namespace that is cleared often should
// have timeouts. In a purge_lru cache a token can itself be evicted, which
// clears its namespace. Clear of an undeclared prefix returns an error
// wrapping errors.ErrUnsupported, and Clear("") sends uWSGI's own clear of
// the whole cache, which uWSGI 2.0 only performs safely on the server's
// first cache or when all its caches have the same item count (otherwise
// it crashes a worker and hangs the server).
//
// A full cache refuses new keys (ErrNotStored) unless the server
// evicts with purge_lru=1, and a value over the item size is refused
// (backends.ErrValueTooLarge); the server reports neither in so many words, so
// the errors name the likely causes.
type Backend struct {
	client           wire.Client
	maxValue, maxKey int
	namespaces       *namespace.Set
	now              func() time.Time
	closed           atomic.Bool
}

// uwsgiEntry is what a read found under a key.
type uwsgiEntry struct {
	payload []byte // the caller's bytes, when live
	expires int64  // Unix milliseconds, 0 for never
	present bool   // the server holds the key, live or not
	live    bool
}

// New returns a backend for the cache opts describes. It does not
// connect: uWSGI offers no request that checks a cache exists without side
// effects, so a wrong address or cache name shows in the first operation.
func New(opts Options) (*Backend, error) {
	u := &Backend{
		client: wire.Client{
			Network:     "tcp",
			Addr:        opts.Addr,
			Cache:       opts.Cache,
			DialTimeout: opts.DialTimeout,
			Timeout:     opts.ReadTimeout,
		},
		maxValue: opts.MaxValueSize,
		maxKey:   opts.MaxKeySize,
		now:      time.Now,
	}
	if u.client.Addr == "" {
		u.client.Addr = DefaultAddr
	}
	if !strings.Contains(u.client.Addr, ":") {
		u.client.Network = "unix"
	}
	switch {
	case strings.Contains(opts.Cache, "@"):
		return nil, fmt.Errorf("%w: uWSGI cache name %q contains @", backends.ErrConfig, opts.Cache)
	case opts.DialTimeout < 0 || opts.ReadTimeout < 0:
		return nil, fmt.Errorf("%w: uWSGI timeouts must not be negative (dial %v, read %v)", backends.ErrConfig, opts.DialTimeout, opts.ReadTimeout)
	case opts.MaxValueSize < 0 || opts.MaxKeySize < 0:
		return nil, fmt.Errorf("%w: uWSGI size limits must not be negative (value %d, key %d)", backends.ErrConfig, opts.MaxValueSize, opts.MaxKeySize)
	case opts.MaxConns < 0:
		return nil, fmt.Errorf("%w: uWSGI MaxConns %d is negative", backends.ErrConfig, opts.MaxConns)
	case opts.MaxKeySize >= 1<<16:
		return nil, fmt.Errorf("%w: uWSGI MaxKeySize %d is not below 65536, uWSGI's limit", backends.ErrConfig, opts.MaxKeySize)
	}
	if u.client.DialTimeout == 0 {
		u.client.DialTimeout = DefaultDialTimeout
	}
	if u.client.Timeout == 0 {
		u.client.Timeout = DefaultReadTimeout
	}
	if u.maxValue == 0 {
		u.maxValue = DefaultMaxValueSize
	}
	if u.maxValue <= uwsgiMaxHeader {
		return nil, fmt.Errorf("%w: uWSGI MaxValueSize %d leaves no room for values after the header of up to %d bytes", backends.ErrConfig, u.maxValue, uwsgiMaxHeader)
	}
	u.client.MaxValueSize = u.maxValue
	maxConns := opts.MaxConns
	if maxConns == 0 {
		maxConns = DefaultMaxConns
	}
	u.client.Conns = semaphore.NewWeighted(int64(maxConns))
	if u.maxKey == 0 {
		u.maxKey = DefaultMaxKeySize
	}
	var err error
	u.namespaces, err = namespace.New(opts.Namespaces, opts.NamespaceRefresh, func(ns string) error {
		switch {
		case ns == "":
			return fmt.Errorf("%w: empty uWSGI namespace: Clear(\"\") clears the whole cache without one", backends.ErrConfig)
		case len(uwsgiTokenPrefix)+len(ns) > u.maxKey:
			return fmt.Errorf("%w: uWSGI namespace of %d bytes is too long for the %d-byte key limit", backends.ErrConfig, len(ns), u.maxKey)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// newUWSGIFromConfig is the UWSGICache factory: CACHE_UWSGI_NAME as Flask
// takes it, CACHE_KEY_PREFIX as a namespace, and CACHE_OPTIONS.
func newUWSGIFromConfig(cfg backends.Config) (backends.Backend, error) {
	name, err := backends.Setting(cfg, "CACHE_UWSGI_NAME", "")
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%w: UWSGICache needs CACHE_UWSGI_NAME", backends.ErrConfig)
	}
	var opts Options
	if err := cacheopt.Decode("UWSGICache", cfg.Options, &opts, uwsgiOptionTable); err != nil {
		return nil, fmt.Errorf("%w: %w", backends.ErrConfig, err)
	}
	if opts.Cache, opts.Addr, err = parseUWSGIName(name); err != nil {
		return nil, err
	}
	if cfg.KeyPrefix != "" {
		opts.Namespaces = append(opts.Namespaces, cfg.KeyPrefix)
	}
	return New(opts)
}

// uwsgiOptionTable lists UWSGICache's CACHE_OPTIONS.
var uwsgiOptionTable = []cacheopt.Option[Options]{
	cacheopt.Duration("dial_timeout", func(o *Options) *time.Duration { return &o.DialTimeout }),
	cacheopt.Duration("read_timeout", func(o *Options) *time.Duration { return &o.ReadTimeout }),
	cacheopt.PositiveInt("max_value_size", func(o *Options) *int { return &o.MaxValueSize }),
	cacheopt.PositiveInt("max_key_size", func(o *Options) *int { return &o.MaxKeySize }),
	cacheopt.PositiveInt("max_conns", func(o *Options) *int { return &o.MaxConns }),
	cacheopt.Strings("namespaces", func(o *Options) *[]string { return &o.Namespaces }),
	cacheopt.Func("namespace_refresh", func(o *Options, v any) (err error) {
		o.NamespaceRefresh, err = namespace.ParseRefresh(v)
		return err
	}),
}

// parseUWSGIName splits CACHE_UWSGI_NAME at its first "@" as uWSGI does:
// "name@host:port", "name@/path/to/socket", "@host:port" for the server's
// first cache, or a name alone for DefaultAddr. Flask reads a name
// alone as a cache of the uWSGI process it runs in; a Go program has none.
func parseUWSGIName(s string) (cache, addr string, err error) {
	cache, addr, found := strings.Cut(s, "@")
	if !found {
		return s, DefaultAddr, nil
	}
	if addr == "" {
		return "", "", fmt.Errorf("%w: CACHE_UWSGI_NAME %q has no server address after @ (want name@host:port)", backends.ErrConfig, s)
	}
	return cache, addr, nil
}

// String returns the cache as CACHE_UWSGI_NAME spells it: "name@address".
func (u *Backend) String() string { return u.client.Cache + "@" + u.client.Addr }

// Get returns the value of a live entry.
func (u *Backend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if u.closed.Load() {
		return nil, false, backends.ErrClosed
	}
	e, err := u.read(ctx, key)
	return e.payload, e.live, err
}

// GetMany gets every key, up to 8 at a time, and stops at the first error.
func (u *Backend) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if u.closed.Load() {
		return nil, backends.ErrClosed
	}
	out := make([][]byte, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uwsgiParallelism)
	for i, k := range keys {
		g.Go(func() error {
			e, err := u.read(gctx, k)
			out[i] = e.payload
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Set stores value under key with uWSGI's update.
func (u *Backend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if u.closed.Load() {
		return backends.ErrClosed
	}
	return u.store(ctx, "update", key, value, u.expiresAt(ttl))
}

// SetMany sets every item, up to 8 at a time, and reports failures as
// *KeyError.
func (u *Backend) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if u.closed.Load() {
		return backends.ErrClosed
	}
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(uwsgiParallelism)
	expires := u.expiresAt(ttl)
	for k, v := range items {
		g.Go(func() error {
			if err := u.store(ctx, "update", k, v, expires); err != nil {
				mu.Lock()
				errs = append(errs, &backends.KeyError{Key: k, Err: err})
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// Add stores value with uWSGI's set, which refuses present keys. A refusal
// is followed by a read: a live entry makes Add report false, a dead one
// (expired but not yet swept, or cleared) is replaced.
func (u *Backend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if u.closed.Load() {
		return false, backends.ErrClosed
	}
	var err error
	expires := u.expiresAt(ttl)
	for range uwsgiMaxAttempts {
		if err = u.store(ctx, "set", key, value, expires); !errors.Is(err, ErrNotStored) {
			return err == nil, err
		}
		e, rerr := u.read(ctx, key)
		switch {
		case rerr != nil:
			return false, rerr
		case e.live:
			return false, nil
		case e.present:
			err = u.store(ctx, "update", key, value, expires)
			return err == nil, err
		}
		// Absent: the refusal had another cause (a full cache), or the
		// entry went away in between; the next attempt tells.
	}
	return false, err
}

// Delete reads key, to know whether it was live, and deletes it.
func (u *Backend) Delete(ctx context.Context, key string) (bool, error) {
	if u.closed.Load() {
		return false, backends.ErrClosed
	}
	return u.delete(ctx, key)
}

func (u *Backend) delete(ctx context.Context, key string) (bool, error) {
	e, err := u.read(ctx, key)
	if err != nil || !e.present {
		return false, err
	}
	// A dead entry is deleted too, to free its slot.
	err = u.client.Del(ctx, u.storedKey(key))
	switch {
	case errors.Is(err, wire.ErrNoReply):
		return false, nil // someone else deleted it first
	case err != nil:
		return false, u.opError("del", key, err)
	}
	return e.live, nil
}

// DeleteMany deletes every key, up to 8 at a time, and counts the live
// ones. Failures are reported as *KeyError.
func (u *Backend) DeleteMany(ctx context.Context, keys []string) (int, error) {
	if u.closed.Load() {
		return 0, backends.ErrClosed
	}
	var (
		n    atomic.Int64
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(uwsgiParallelism)
	for _, k := range slices.Compact(slices.Sorted(slices.Values(keys))) {
		g.Go(func() error {
			deleted, err := u.delete(ctx, k)
			if deleted {
				n.Add(1)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, &backends.KeyError{Key: k, Err: err})
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	return int(n.Load()), errors.Join(errs...)
}

// Ping checks that the server accepts a connection and answers a cache
// request (an exists of a key no caller can write) within ctx. uWSGI
// answers a missing key, and a cache name it does not know, alike by
// closing the connection, so Ping cannot tell a wrong cache name from an
// empty cache. Open does not connect; a readiness probe calls Ping
// (through [backends.Cache.Ping]).
func (u *Backend) Ping(ctx context.Context) error {
	if u.closed.Load() {
		return backends.ErrClosed
	}
	err := u.client.Exists(ctx, uwsgiReserved+"ping")
	if err == nil || errors.Is(err, wire.ErrNoReply) {
		return nil
	}
	return u.opError("ping", "", err)
}

// Has reads the entry, since uWSGI's exists reports expired entries until
// they are swept and cannot see namespace tokens.
func (u *Backend) Has(ctx context.Context, key string) (bool, error) {
	if u.closed.Load() {
		return false, backends.ErrClosed
	}
	e, err := u.read(ctx, key)
	return e.live, err
}

// Inc reads the integer under key and writes the sum back with the entry's
// remaining TTL. It is not atomic: uWSGI's own increments work only inside
// the server.
func (u *Backend) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if u.closed.Load() {
		return 0, backends.ErrClosed
	}
	var err error
	for range uwsgiMaxAttempts {
		var e uwsgiEntry
		if e, err = u.read(ctx, key); err != nil {
			return 0, err
		}
		if e.live {
			n, stored, err := backends.AddInt(e.payload, delta)
			if err != nil {
				return 0, err
			}
			if err := u.store(ctx, "update", key, stored, e.expires); err != nil {
				return 0, err
			}
			return n, nil
		}
		cmd := "set" // atomic creation when nothing is there
		if e.present {
			cmd = "update"
		}
		err = u.store(ctx, cmd, key, backends.FormatInt(delta), u.expiresAt(ttl))
		if err == nil {
			return delta, nil
		}
		if !errors.Is(err, ErrNotStored) || cmd == "update" {
			return 0, err
		}
		// Someone created the key since the read, or the cache is full.
	}
	return 0, err
}

// Clear removes the whole cache for an empty prefix, or replaces the token
// of a declared namespace and of the declared namespaces inside it.
func (u *Backend) Clear(ctx context.Context, prefix string) error {
	if u.closed.Load() {
		return backends.ErrClosed
	}
	if prefix == "" {
		err := u.client.Clear(ctx)
		if errors.Is(err, wire.ErrNoReply) {
			return fmt.Errorf("uwsgi cache %s: the server did not confirm clear: it has no cache of that name", u)
		}
		if err != nil {
			return fmt.Errorf("uwsgi cache %s: clear: %w", u, uwsgiUnavailable(err))
		}
		u.namespaces.ForgetAll() // the clear removed them from the server too
		return nil
	}
	if u.namespaces.Lookup(prefix) == nil {
		return u.namespaces.Undeclared("uwsgi cache "+u.String(), "uWSGI", "uwsgi.Options.Namespaces", prefix)
	}
	for _, ns := range u.namespaces.Within(prefix) {
		if _, err := u.newToken(ctx, ns, "update"); err != nil {
			return err
		}
	}
	return nil
}

// Close marks the backend closed; it holds no connections.
func (u *Backend) Close() error {
	u.closed.Store(true)
	return nil
}

// storedKey is the server's key for key, which checkKey has accepted.
func (u *Backend) storedKey(key string) string {
	if key == "" {
		return uwsgiEmptyKey
	}
	return key
}

func (u *Backend) checkKey(key string) error {
	if strings.HasPrefix(key, uwsgiReserved) {
		return fmt.Errorf("%w: key %.60q starts with %q, which the uWSGI backend reserves for its own entries", ErrMalformedKey, key, uwsgiReserved)
	}
	if len(key) > u.maxKey {
		return fmt.Errorf("%w: key %.60q is %d bytes, over the %d-byte limit (the cache's keysize: Options.MaxKeySize, CACHE_OPTIONS max_key_size)",
			ErrMalformedKey, key, len(key), u.maxKey)
	}
	return nil
}

// read gets key and decides whether its entry is live: not expired by this
// machine's clock, written by this backend, and, in a namespace, carrying
// the namespace's current token.
func (u *Backend) read(ctx context.Context, key string) (uwsgiEntry, error) {
	if err := u.checkKey(key); err != nil {
		return uwsgiEntry{}, err
	}
	// The server's own expiry is not used: it counts whole seconds, is
	// enforced only by its sweeper, and is not converted at all in a
	// purge_lru cache (it reports the relative timeout as given).
	raw, _, err := u.client.Get(ctx, u.storedKey(key))
	if errors.Is(err, wire.ErrNoReply) {
		return uwsgiEntry{}, nil
	}
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			err = fmt.Errorf("%w: %w", backends.ErrValueTooLarge, err)
		}
		return uwsgiEntry{}, u.opError("get", key, err)
	}
	dead := uwsgiEntry{present: true}
	if len(raw) == 0 || raw[0]&^(uwsgiHasToken|uwsgiHasExpiry) != uwsgiFlagsBase {
		return dead, nil // not written by this backend
	}
	flags := raw[0] - uwsgiFlagsBase
	e, rest := uwsgiEntry{present: true}, raw[1:]
	if flags&uwsgiHasExpiry != 0 {
		if len(rest) < uwsgiExpiry {
			return dead, nil
		}
		e.expires, rest = int64(binary.LittleEndian.Uint64(rest)), rest[uwsgiExpiry:]
		if u.now().UnixMilli() >= e.expires {
			return dead, nil
		}
	}
	var stamp []byte
	if flags&uwsgiHasToken != 0 {
		if len(rest) < uwsgiToken {
			return dead, nil
		}
		stamp, rest = rest[:uwsgiToken], rest[uwsgiToken:]
	}
	if ns := u.namespaces.Longest(key); ns != nil {
		// A value without a token was written by a client that does not
		// declare the namespace, so Clear cannot have reached it: dead.
		if stamp == nil {
			return dead, nil
		}
		token, err := u.token(ctx, ns)
		if err != nil {
			return uwsgiEntry{}, err
		}
		if !bytes.Equal(stamp, token[:]) {
			return dead, nil
		}
	}
	e.payload = rest
	e.live = true
	return e, nil
}

// expiresAt is the Unix millisecond at which an entry written now with
// ttl expires, or 0 for never.
func (u *Backend) expiresAt(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return u.now().UnixMilli() + int64((ttl+time.Millisecond-1)/time.Millisecond)
}

// store writes value under key with cmd "set" (only if absent) or
// "update", behind a header with its expiry (Unix ms, 0 for never) and the
// token of key's namespace.
func (u *Backend) store(ctx context.Context, cmd, key string, value []byte, expires int64) error {
	if err := u.checkKey(key); err != nil {
		return err
	}
	ns := u.namespaces.Longest(key)
	size := 1 + len(value)
	if expires != 0 {
		size += uwsgiExpiry
	}
	if ns != nil {
		size += uwsgiToken
	}
	if size > u.maxValue {
		return fmt.Errorf("%w: value of %.60q is %d bytes (%d with the backend's header), over the %d-byte limit (the cache's item size: Options.MaxValueSize, CACHE_OPTIONS max_value_size)",
			backends.ErrValueTooLarge, key, len(value), size, u.maxValue)
	}
	hdr := make([]byte, 1, uwsgiMaxHeader)
	hdr[0] = uwsgiFlagsBase
	// The server gets the timeout rounded up to whole seconds, plus one
	// since it counts from the start of the current second: its sweeper
	// frees the entry after this backend stops reading it, never before.
	var secs int64
	if expires != 0 {
		hdr[0] |= uwsgiHasExpiry
		hdr = binary.LittleEndian.AppendUint64(hdr, uint64(expires))
		left := max(expires-u.now().UnixMilli(), 1)
		secs = (left+999)/1000 + 1
	}
	if ns != nil {
		token, err := u.token(ctx, ns)
		if err != nil {
			return err
		}
		hdr[0] |= uwsgiHasToken
		hdr = append(hdr, token[:]...)
	}
	var err error
	if cmd == "set" {
		err = u.client.Set(ctx, u.storedKey(key), secs, hdr, value)
	} else {
		err = u.client.Update(ctx, u.storedKey(key), secs, hdr, value)
	}
	return u.writeError(cmd, key, size, err)
}

// writeError explains a write the server did not confirm.
func (u *Backend) writeError(cmd, key string, size int, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wire.ErrReset):
		return fmt.Errorf("%w: uwsgi cache %s: %s %.60q: the server reset the connection without reading the %d-byte value: it is larger than the cache's item size (blocksize, or blocksize×blocks with bitmap=1), or the server has no cache of that name",
			backends.ErrValueTooLarge, u, cmd, key, size)
	case errors.Is(err, wire.ErrNoReply):
		// A refused set is followed by a read that tells whether the key
		// was present, so only refusals for other reasons get here.
		return fmt.Errorf("%w: uwsgi cache %s: %s %.60q (%d bytes): the cache is full (every one of its items slots, or with bitmap=1 its blocks, is taken; expired entries are freed only by the server's sweeper), or the value or key exceeds the cache's blocksize or keysize, or the server has no cache of that name",
			ErrNotStored, u, cmd, key, size)
	}
	return u.opError(cmd, key, err)
}

func (u *Backend) opError(cmd, key string, err error) error {
	return fmt.Errorf("uwsgi cache %s: %s %.60q: %w", u, cmd, key, uwsgiUnavailable(err))
}

// uwsgiUnavailable adds ErrUnavailable to the client's errors that say the
// server does not answer as a uWSGI cache should.
func uwsgiUnavailable(err error) error {
	if errors.Is(err, wire.ErrPoolTimeout) {
		return fmt.Errorf("%w: %w", backends.ErrPoolTimeout, err)
	}
	if errors.Is(err, wire.ErrNoReply) || errors.Is(err, wire.ErrReset) || errors.Is(err, wire.ErrProtocol) {
		return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
	}
	return err
}

// token returns the current token of namespace ns, from the local copy if
// it is fresh enough.
func (u *Backend) token(ctx context.Context, ns *namespace.Namespace) ([uwsgiToken]byte, error) {
	t, err := u.namespaces.Generation(ctx, ns, func(ctx context.Context) (string, error) {
		t, err := u.readToken(ctx, ns)
		return string(t[:]), err
	})
	if err != nil {
		return [uwsgiToken]byte{}, err
	}
	return [uwsgiToken]byte([]byte(t)), nil
}

// readToken reads the token of ns from the server, creating it if it is
// missing or replacing it if it is malformed.
func (u *Backend) readToken(ctx context.Context, ns *namespace.Namespace) ([uwsgiToken]byte, error) {
	var err error
	for range uwsgiMaxAttempts {
		var raw []byte
		raw, _, err = u.client.Get(ctx, uwsgiTokenPrefix+ns.Prefix)
		if err == nil && len(raw) == uwsgiToken {
			return [uwsgiToken]byte(raw), nil
		}
		if err != nil && !errors.Is(err, wire.ErrNoReply) {
			return [uwsgiToken]byte{}, u.opError("get token of namespace", ns.Prefix, err)
		}
		// A missing token (a new namespace, a cleared or evicting cache)
		// is created rather than read as a constant, so that values
		// stamped before it went missing stay dead; a malformed one is
		// replaced. Creation uses set, so concurrent creators agree.
		cmd := "set"
		if err == nil {
			cmd = "update"
		}
		var t [uwsgiToken]byte
		if t, err = u.newToken(ctx, ns, cmd); !errors.Is(err, ErrNotStored) {
			return t, err
		}
	}
	return [uwsgiToken]byte{}, err
}

// newToken writes a fresh random token for ns with cmd and remembers it.
func (u *Backend) newToken(ctx context.Context, ns *namespace.Namespace, cmd string) ([uwsgiToken]byte, error) {
	var t [uwsgiToken]byte
	binary.LittleEndian.PutUint64(t[:], rand.Uint64())
	var err error
	if cmd == "set" {
		err = u.client.Set(ctx, uwsgiTokenPrefix+ns.Prefix, 0, t[:])
	} else {
		err = u.client.Update(ctx, uwsgiTokenPrefix+ns.Prefix, 0, t[:])
	}
	if err = u.writeError(cmd+" token of namespace", ns.Prefix, len(t), err); err != nil {
		return [uwsgiToken]byte{}, err
	}
	u.namespaces.Remember(ns, string(t[:]))
	return t, nil
}
