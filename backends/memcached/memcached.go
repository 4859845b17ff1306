package memcached

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/cacheopt"
	"github.com/fragcache/fragcache/internal/memcache"
	"github.com/fragcache/fragcache/internal/namespace"
	"github.com/fragcache/fragcache/keys"
)

func init() {
	for _, name := range []string{"MemcachedCache", "SASLMemcachedCache", "SpreadSASLMemcachedCache"} {
		backends.Register(name, func(cfg backends.Config) (backends.Backend, error) { return newMemcachedFromConfig(name, cfg) })
	}
}

// Defaults of Options.
const (
	// DefaultServer is the server used when none is given, as in
	// Flask-Caching.
	DefaultServer = "127.0.0.1:11211"
	// DefaultDialTimeout and DefaultRoundTripTimeout are a
	// cache's timeouts, not a database's, the same as Redis's: a server
	// that is down or hung costs a page milliseconds, and the page renders
	// uncached. A context deadline that comes sooner wins.
	DefaultDialTimeout      = 500 * time.Millisecond
	DefaultRoundTripTimeout = 250 * time.Millisecond
	// DefaultChunkSize is how many bytes of a value each chunk
	// holds when values are spread: Flask-Caching's 1048448 (1 MiB - 128)
	// less 256 bytes, so that the chunk's header and a 250-byte key fit
	// under memcached's default 1 MiB item size too (the largest value
	// memcached 1.6 stores under a 250-byte key is 1048267 bytes; Flask's
	// chunks only fit under keys of about 70 bytes).
	DefaultChunkSize = 1048448 - 256
	// DefaultMaxChunks is Flask-Caching's maxchunk: at most 32
	// chunks per value, about 32 MiB.
	DefaultMaxChunks = 32
	// DefaultMaxConns is the default cap on connections to each
	// server: enough to keep a server busy from one process, and a small
	// share of memcached's own limit of 1024 (-c), past which it answers
	// in ASCII and refuses.
	DefaultMaxConns = memcache.DefaultMaxConns
	// DefaultMaxValueSize is memcached's default item size (-I
	// 1m): no item a default server stores is refused.
	DefaultMaxValueSize = memcache.DefaultMaxValueSize

	// memcachedMaxRelative is the longest exptime memcached reads as
	// seconds from now; larger ones are absolute Unix times.
	memcachedMaxRelative = 30 * 24 * 60 * 60
	// memcachedMaxAttempts bounds the retries of Add, Inc and namespace
	// reads when other clients keep changing the key between two
	// requests.
	memcachedMaxAttempts = 1000
)

// Stored forms. A value that is the canonical decimal text of an int64
// (what Set of an integer writes) is stored as the decimal text of the same
// 64 bits read as a uint64 (two's complement), which memcached's incr
// treats as a number; wrap-around arithmetic then gives exactly the signed
// result. Every other value is stored after a memcachedVerbatim byte, which
// makes it non-numeric to the server. Spread values carry a chunk header
// instead (see spread*).
const memcachedVerbatim = '='

// Reserved keys. The namespace generations live under keys mapped from
// names that start with a NUL byte, so only a caller who writes that exact
// name collides with them; the empty key, which memcached cannot store, maps
// as keys.SafeKey maps any unusable key: '#' and the SHA-256 of the key.
const memcachedGenName = "\x00fragcache namespace generation\x00"

var memcachedEmptyKey = func() string {
	sum := sha256.Sum256(nil)
	return "#" + base64.RawURLEncoding.EncodeToString(sum[:])
}()

// Options configure a Backend. The zero value talks to
// DefaultServer without authentication and stores values whole.
type Options struct {
	// Servers are "host:port" addresses (or Unix socket paths, anything
	// with a "/"). Keys are spread over them by memcache.PickServer: the
	// CRC-32 of the stored key modulo the number of servers, as
	// gomemcache picks. Empty means DefaultServer.
	Servers []string
	// Username and Password, when Username is set, authenticate every
	// connection with SASL PLAIN over the binary protocol.
	Username, Password string
	// Spread stores every value as chunks of at most ChunkSize bytes, so
	// that values larger than the server's item size fit
	// (SpreadSASLMemcachedCache).
	Spread bool
	// ChunkSize is the most bytes of a value one chunk holds; 0 means
	// DefaultChunkSize. Used only with Spread.
	ChunkSize int
	// MaxChunks is the most chunks one value may take, at most 255; 0
	// means DefaultMaxChunks. Used only with Spread.
	MaxChunks int
	// DialTimeout bounds connecting and authenticating; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Timeout bounds each round trip; 0 means DefaultRoundTripTimeout. A context deadline
	// that comes sooner wins.
	Timeout time.Duration
	// MaxIdleConns is how many idle connections are kept per server; 0
	// means 16.
	MaxIdleConns int
	// MaxConns caps the connections open to each server, idle or busy; 0
	// means DefaultMaxConns. An operation that finds them all busy
	// waits for one, as long as its context and Timeout allow.
	MaxConns int
	// MaxValueSize is the largest item value written or read, the
	// backend's marker byte or chunk header included; 0 means
	// DefaultMaxValueSize. Set it to the server's item size
	// (memcached -I) when that is larger. A server reply announcing more is
	// an error, never an allocation of what it announces.
	MaxValueSize int
	// Namespaces are the key prefixes that Clear can remove (see
	// Memcached). Open adds CACHE_KEY_PREFIX.
	Namespaces []string
	// NamespaceRefresh is how long the backend trusts its copy of a
	// namespace's generation, and so how long another process's Clear of
	// that namespace can go unseen here. 0 means 1 s; a negative value
	// reads the generation on every operation, at the cost of a round
	// trip.
	NamespaceRefresh time.Duration
}

// Backend is Flask-Caching's MemcachedCache, SASLMemcachedCache and
// SpreadSASLMemcachedCache: entries in one or more memcached servers,
// reached over memcached's binary protocol with a client of this module's
// own (internal/memcache), optionally authenticated with SASL PLAIN.
//
// Keys are stored as they are when memcached accepts them; any other key
// (longer than 250 bytes, or with spaces or control characters) goes
// through [keys.SafeKey], and the empty key maps as an unusable key does.
// Each stored key lives on one server, chosen by the CRC-32 of the key.
//
// Get, Set, Add, Delete and Inc are one round trip each, and Add is
// atomic. The many-key operations pipeline their requests, one connection
// per server, the servers in parallel. Has reads the value, since the
// protocol has no existence check.
//
// Inc is memcached's own incr, so it is atomic and keeps the TTL of an
// existing entry; a missing key is created with add and the given TTL (a
// second round trip). Integers are stored as the two's complement of their
// value read as a uint64, which incr's wrap-around arithmetic adds to
// exactly, and reads turn back into signed decimal text; non-negative
// integers are plain decimal on the server. Where incr refuses a number (a
// negative one, which memcached misreads now and then, see counterCAS), Inc
// falls back to get and compare-and-swap, retried until it wins, so it
// stays atomic; the entry keeps its TTL because every item carries its
// expiry time in its memcached flags. An Inc that would overflow int64 is
// taken back and reports ErrNotInteger; for that moment other clients can
// read the wrapped value. Only the canonical decimal text that Set writes
// for integers counts as an integer: "+5" or "007" stored as bytes are not.
//
// TTLs are whole seconds, rounded up, as memcached keeps them; 0 never
// expires, and TTLs over 30 days are sent as absolute Unix times, which
// memcached requires, so those depend on the server's clock agreeing with
// this machine's.
//
// memcached cannot list keys, so Clear removes a key prefix only if it is a
// declared namespace (Options.Namespaces; Open declares
// CACHE_KEY_PREFIX). Each namespace has a generation number kept in the
// servers themselves, and a key under it is stored with the generation
// after the namespace: "ns" + gen + ":" + rest of the key (a key under
// nested namespaces carries each one's generation). Clear of the namespace
// increments the generation in one round trip, so the old entries can no
// longer be reached; memcached evicts them as memory is needed, or when
// they expire. The backend keeps its copy of a generation for
// NamespaceRefresh, so a Clear by another process is seen within it. Clear
// of an undeclared prefix returns an error wrapping errors.ErrUnsupported,
// and Clear("") sends flush_all to every server, which empties them of
// everything, not only this cache's keys.
//
// With Spread, every value is stored as chunks under "{key}.0",
// "{key}.1", … as Flask-Caching's SpreadSASLMemcachedCache does, at most
// ChunkSize bytes each; a value that fits one chunk (almost all) takes one
// round trip as usual. Chunk 0 carries a header with the chunk count, the
// value's length and CRC-32C, its expiry time and a random number that
// every other chunk of the same write repeats; the other chunks are
// written before chunk 0. A read that finds a chunk missing, left from
// another write, or not adding up to the checksum, is a miss, never a
// corrupted value. Delete removes all MaxChunks chunk keys in one pipeline
// and reports whether chunk 0 was there. Inc and Add work on chunk 0 with
// compare-and-swap, so they stay atomic and Inc keeps the entry's expiry;
// an Add that finds a broken entry (or a many-chunk entry another Add is
// still writing) replaces it. Chunks left over from an earlier, larger
// value stay until they expire or are evicted.
//
// Values are stored in this module's own format, so entries written by
// other clients (Flask's pickles) read as misses.
//
// Servers are not trusted to be sane: a reply announcing a value over
// MaxValueSize is an error and is not read, a value within it is allocated
// as its bytes arrive (32 KiB ahead at most), and a server's error message
// is quoted up to 1 KiB. At most MaxConns connections are open to each
// server; a burst of operations beyond that queues for them instead of
// opening more (memcached refuses connections past its own -c limit, 1024
// by default, with an ASCII error that no binary-protocol client can read).
type Backend struct {
	client     *memcache.Client
	servers    []string
	spread     bool
	chunkSize  int
	maxChunks  int
	namespaces *namespace.Set
	now        func() time.Time
	closed     atomic.Bool
}

// New returns a backend for the servers opts names. It does not
// connect; [Backend.Ping] does.
func New(opts Options) (*Backend, error) {
	servers := opts.Servers
	if len(servers) == 0 {
		servers = []string{DefaultServer}
	}
	switch {
	case opts.ChunkSize < 0 || opts.MaxChunks < 0:
		return nil, fmt.Errorf("%w: memcached chunk size %d and chunk count %d must not be negative", backends.ErrConfig, opts.ChunkSize, opts.MaxChunks)
	case opts.MaxChunks > math.MaxUint8:
		return nil, fmt.Errorf("%w: memcached MaxChunks %d is over 255", backends.ErrConfig, opts.MaxChunks)
	case opts.MaxConns < 0 || opts.MaxValueSize < 0:
		return nil, fmt.Errorf("%w: memcached MaxConns %d and MaxValueSize %d must not be negative", backends.ErrConfig, opts.MaxConns, opts.MaxValueSize)
	}
	client, err := memcache.New(memcache.Options{
		Servers:      servers,
		Username:     opts.Username,
		Password:     opts.Password,
		DialTimeout:  cmp.Or(opts.DialTimeout, DefaultDialTimeout),
		Timeout:      cmp.Or(opts.Timeout, DefaultRoundTripTimeout),
		MaxIdleConns: opts.MaxIdleConns,
		MaxConns:     opts.MaxConns,
		MaxValueSize: opts.MaxValueSize,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backends.ErrConfig, err)
	}
	m := &Backend{
		client:    client,
		servers:   slices.Clone(servers),
		spread:    opts.Spread,
		chunkSize: opts.ChunkSize,
		maxChunks: opts.MaxChunks,
		now:       time.Now,
	}
	if m.chunkSize == 0 {
		m.chunkSize = DefaultChunkSize
	}
	if m.maxChunks == 0 {
		m.maxChunks = DefaultMaxChunks
	}
	if maxValue := cmp.Or(opts.MaxValueSize, DefaultMaxValueSize); m.spread && spreadHeader0Len+m.chunkSize > maxValue {
		return nil, fmt.Errorf("%w: memcached chunk size %d plus its %d-byte header is over the value limit of %d (CACHE_OPTIONS max_value_size)",
			backends.ErrConfig, m.chunkSize, spreadHeader0Len, maxValue)
	}
	m.namespaces, err = namespace.New(opts.Namespaces, opts.NamespaceRefresh, func(ns string) error {
		if ns == "" {
			return fmt.Errorf("%w: empty memcached namespace: Clear(\"\") flushes the servers without one", backends.ErrConfig)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// newMemcachedFromConfig is the factory of the three memcached types:
// CACHE_MEMCACHED_SERVERS, the SASL credentials the SASL types require,
// CACHE_KEY_PREFIX as a namespace, and CACHE_OPTIONS. MemcachedCache
// ignores the credentials, as Flask's does.
func newMemcachedFromConfig(name string, cfg backends.Config) (backends.Backend, error) {
	spread := name == "SpreadSASLMemcachedCache"
	table := memcachedOptionTable
	if spread {
		table = append(slices.Clip(table), memcachedSpreadOptionTable...)
	}
	var opts Options
	if err := cacheopt.Decode(name, cfg.Options, &opts, table); err != nil {
		return nil, fmt.Errorf("%w: %w", backends.ErrConfig, err)
	}
	servers, err := backends.Setting(cfg, "CACHE_MEMCACHED_SERVERS", []string{DefaultServer})
	if err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: %s needs CACHE_MEMCACHED_SERVERS", backends.ErrConfig, name)
	}
	opts.Servers = servers
	if name != "MemcachedCache" {
		for _, c := range []struct {
			key string
			dst *string
		}{{"CACHE_MEMCACHED_USERNAME", &opts.Username}, {"CACHE_MEMCACHED_PASSWORD", &opts.Password}} {
			if *c.dst, err = backends.Setting(cfg, c.key, ""); err != nil {
				return nil, err
			}
			if *c.dst == "" {
				return nil, fmt.Errorf("%w: %s needs %s", backends.ErrConfig, name, c.key)
			}
		}
	}
	opts.Spread = spread
	if cfg.KeyPrefix != "" {
		opts.Namespaces = append(opts.Namespaces, cfg.KeyPrefix)
	}
	return New(opts)
}

// memcachedOptionTable lists the CACHE_OPTIONS of the memcached types, and
// memcachedSpreadOptionTable those of SpreadSASLMemcachedCache alone.
var (
	memcachedOptionTable = []cacheopt.Option[Options]{
		cacheopt.Duration("dial_timeout", func(o *Options) *time.Duration { return &o.DialTimeout }),
		cacheopt.Duration("timeout", func(o *Options) *time.Duration { return &o.Timeout }),
		cacheopt.PositiveInt("max_idle_conns", func(o *Options) *int { return &o.MaxIdleConns }),
		cacheopt.PositiveInt("max_conns", func(o *Options) *int { return &o.MaxConns }),
		cacheopt.PositiveInt("max_value_size", func(o *Options) *int { return &o.MaxValueSize }),
		cacheopt.Strings("namespaces", func(o *Options) *[]string { return &o.Namespaces }),
		cacheopt.Func("namespace_refresh", func(o *Options, v any) (err error) {
			o.NamespaceRefresh, err = namespace.ParseRefresh(v)
			return err
		}),
	}
	memcachedSpreadOptionTable = []cacheopt.Option[Options]{
		cacheopt.PositiveInt("chunk_size", func(o *Options) *int { return &o.ChunkSize }),
		cacheopt.PositiveInt("max_chunks", func(o *Options) *int { return &o.MaxChunks }),
	}
)

// String names the servers.
func (m *Backend) String() string { return "memcached " + strings.Join(m.servers, ",") }

// Ping checks that every server answers and accepts the credentials. Open
// does not connect, so an application that wants to fail at startup rather
// than at its first cache operation calls Ping.
func (m *Backend) Ping(ctx context.Context) error {
	if m.closed.Load() {
		return backends.ErrClosed
	}
	return memcachedError(m.client.Ping(ctx))
}

// Get returns the value under key.
func (m *Backend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if m.closed.Load() {
		return nil, false, backends.ErrClosed
	}
	if m.spread {
		return m.spreadGet(ctx, key)
	}
	k, err := m.itemKey(ctx, key)
	if err != nil {
		return nil, false, err
	}
	it, err := m.client.Get(ctx, k)
	if err == memcache.ErrCacheMiss {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, memcachedError(err)
	}
	v, ok := decodeMemcached(it.Value)
	return v, ok, nil
}

// GetMany gets every key in one pipeline per server.
// A value over max_value_size fails the multi-get, which then gives way
// to one Get per key: such values are misses, listed in a
// *backends.MissedKeysError returned with the others' values.
func (m *Backend) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := m.getMany(ctx, keys)
	if tooLarge(err) {
		return backends.GetEach(ctx, m, keys, tooLarge)
	}
	return vals, err
}

func (m *Backend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if m.closed.Load() {
		return nil, backends.ErrClosed
	}
	if m.spread {
		return m.spreadGetMany(ctx, keys)
	}
	ks := make([]string, len(keys))
	for i, key := range keys {
		var err error
		if ks[i], err = m.itemKey(ctx, key); err != nil {
			return nil, err
		}
	}
	items, err := m.client.GetMulti(ctx, ks)
	if err != nil {
		return nil, memcachedError(err)
	}
	out := make([][]byte, len(keys))
	for i, it := range items {
		if it.Value != nil {
			out[i], _ = decodeMemcached(it.Value)
		}
	}
	return out, nil
}

// Set stores value under key.
func (m *Backend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if m.closed.Load() {
		return backends.ErrClosed
	}
	if m.spread {
		return m.spreadSet(ctx, key, value, ttl)
	}
	k, err := m.itemKey(ctx, key)
	if err != nil {
		return err
	}
	return memcachedError(m.client.Set(ctx, memcache.Item{Key: k, Value: encodeMemcached(value), Flags: m.expiryFlags(ttl), Expiration: m.exptime(ttl)}))
}

// SetMany stores every item in one pipeline per server and reports
// failures as *KeyError.
func (m *Backend) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return m.SetEntries(ctx, backends.EntriesOf(items, ttl))
}

// Add stores value with memcached's add, which refuses present keys.
func (m *Backend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if m.closed.Load() {
		return false, backends.ErrClosed
	}
	if m.spread {
		return m.spreadAdd(ctx, key, value, ttl)
	}
	k, err := m.itemKey(ctx, key)
	if err != nil {
		return false, err
	}
	err = m.client.Add(ctx, memcache.Item{Key: k, Value: encodeMemcached(value), Flags: m.expiryFlags(ttl), Expiration: m.exptime(ttl)})
	if err == memcache.ErrNotStored {
		return false, nil
	}
	return err == nil, memcachedError(err)
}

// Delete removes key.
func (m *Backend) Delete(ctx context.Context, key string) (bool, error) {
	n, err := m.DeleteMany(ctx, []string{key})
	if ke := (*backends.KeyError)(nil); errors.As(err, &ke) {
		err = ke.Err // one key: the key is the caller's to name
	}
	return n == 1, err
}

// DeleteMany removes every key in one pipeline per server and counts the
// entries that were there. Failures are reported as *KeyError.
func (m *Backend) DeleteMany(ctx context.Context, keys []string) (int, error) {
	if m.closed.Load() {
		return 0, backends.ErrClosed
	}
	per := 1 // stored keys per key
	if m.spread {
		per = m.maxChunks
	}
	var errs []error
	ks := make([]string, 0, len(keys)*per)
	owners := make([]int, 0, len(keys)*per)
	for i, key := range keys {
		logical, err := m.logical(ctx, key)
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: key, Err: err})
			continue
		}
		if !m.spread {
			ks = append(ks, memcachedSafeKey(logical))
			owners = append(owners, i)
			continue
		}
		for c := range per {
			ks = append(ks, spreadKey(logical, c))
			owners = append(owners, i)
		}
	}
	res := m.client.DeleteMulti(ctx, ks)
	n := 0
	failed := make(map[int]bool)
	for j := range ks {
		var err error
		if res != nil {
			err = res[j]
		}
		first := j == 0 || owners[j-1] != owners[j] // the item itself, or chunk 0
		switch {
		case err == nil && first:
			n++
		case err == nil || err == memcache.ErrCacheMiss:
		case !failed[owners[j]]:
			failed[owners[j]] = true
			errs = append(errs, &backends.KeyError{Key: keys[owners[j]], Err: memcachedError(err)})
		}
	}
	return n, errors.Join(errs...)
}

// Has reads the value, as the protocol has no existence check.
func (m *Backend) Has(ctx context.Context, key string) (bool, error) {
	_, found, err := m.Get(ctx, key)
	return found, err
}

// Inc adds delta with memcached's incr (see Backend for how signed
// values are kept), falling back to compare-and-swap where incr cannot.
func (m *Backend) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if m.closed.Load() {
		return 0, backends.ErrClosed
	}
	if m.spread {
		return m.spreadInc(ctx, key, delta, ttl)
	}
	k, err := m.itemKey(ctx, key)
	if err != nil {
		return 0, err
	}
	for range memcachedMaxAttempts {
		r, err := m.client.Incr(ctx, k, uint64(delta), 0, memcache.NoCreate)
		switch {
		case err == memcache.ErrCacheMiss:
			// Created with add rather than by incr, so that the item's
			// flags carry its expiry like every other item's.
			err := m.client.Add(ctx, memcache.Item{Key: k, Value: encodeMemcached(backends.FormatInt(delta)), Flags: m.expiryFlags(ttl), Expiration: m.exptime(ttl)})
			if err == nil {
				return delta, nil
			}
			if err != memcache.ErrNotStored {
				return 0, memcachedError(err)
			}
			continue // created by another client since the incr
		case errors.Is(err, memcache.ErrNonNumeric):
			// Not an integer, or a negative one that memcached misreads.
			var sum int64
			found, err := m.counterCAS(ctx, key, k, func(old uint64) (uint64, error) {
				var err error
				// old is the two's complement of the signed counter.
				sum, _, err = backends.AddInt(backends.FormatInt(int64(old)), delta)
				return uint64(sum), err
			})
			if !found && err == nil {
				continue // gone since the incr: create it
			}
			return sum, err
		case err != nil:
			return 0, memcachedError(err)
		}
		got, old := int64(r), int64(r-uint64(delta))
		if (delta > 0 && got < old) || (delta < 0 && got > old) {
			// Overflowed int64: take the delta back, which commutes with
			// whatever other clients did meanwhile.
			_, uerr := m.client.Incr(ctx, k, uint64(-delta), 0, memcache.NoCreate)
			if errors.Is(uerr, memcache.ErrNonNumeric) {
				_, uerr = m.counterCAS(ctx, key, k, func(v uint64) (uint64, error) { return v - uint64(delta), nil })
			}
			if uerr != nil && uerr != memcache.ErrCacheMiss {
				return 0, fmt.Errorf("%w: %d%+d overflows int64, and taking the increment back failed: %w", backends.ErrNotInteger, old, delta, memcachedError(uerr))
			}
			return 0, fmt.Errorf("%w: %d%+d overflows int64", backends.ErrNotInteger, old, delta)
		}
		return got, nil
	}
	return 0, fmt.Errorf("memcached: inc %.60q: the key kept changing over %d attempts", key, memcachedMaxAttempts)
}

// counterCAS replaces the counter under server key k by f of its value,
// read with get and written with compare-and-swap, keeping its flags and
// so its expiry. found is false when k holds nothing; a value that is not
// a counter is ErrNotInteger.
//
// Inc needs it because memcached (1.6 at least) checks a number of 2^63 or
// more for a minus sign with strchr, which reads on past the value into
// whatever memory follows it: incr on such a value, which is how negative
// numbers are stored, fails as non-numeric whenever a '-' happens to lie
// there.
func (m *Backend) counterCAS(ctx context.Context, key, k string, f func(uint64) (uint64, error)) (found bool, err error) {
	for range memcachedMaxAttempts {
		it, err := m.client.Get(ctx, k)
		if err == memcache.ErrCacheMiss {
			return false, nil
		}
		if err != nil {
			return true, memcachedError(err)
		}
		v, ok := decodeMemcached(it.Value)
		if !ok || it.Value[0] == memcachedVerbatim {
			return true, fmt.Errorf("%w: the value under %.60q is not an integer", backends.ErrNotInteger, key)
		}
		n, _ := strconv.ParseInt(string(v), 10, 64) // decodeMemcached wrote it
		next, err := f(uint64(n))
		if err != nil {
			return true, err
		}
		err = m.client.CompareAndSwap(ctx, memcache.Item{Key: k, Value: strconv.AppendUint(nil, next, 10),
			Flags: it.Flags, Expiration: m.exptimeAt(int64(it.Flags)), CAS: it.CAS})
		switch err {
		case nil:
			return true, nil
		case memcache.ErrCacheMiss:
			return false, nil
		case memcache.ErrCASConflict:
			continue
		}
		return true, memcachedError(err)
	}
	return true, fmt.Errorf("memcached: inc %.60q: the key kept changing over %d attempts", key, memcachedMaxAttempts)
}

// Clear flushes every server for an empty prefix, or increments the
// generation of a declared namespace.
func (m *Backend) Clear(ctx context.Context, prefix string) error {
	if m.closed.Load() {
		return backends.ErrClosed
	}
	if prefix == "" {
		err := m.client.FlushAll(ctx)
		m.namespaces.ForgetAll() // flushed with everything else
		return memcachedError(err)
	}
	ns := m.namespaces.Lookup(prefix)
	if ns == nil {
		return m.namespaces.Undeclared(m.String(), "memcached", "memcached.Options.Namespaces", prefix)
	}
	_, err := m.bumpGen(ctx, ns, 1)
	return err
}

// Close closes the connections; operations after it return ErrClosed.
func (m *Backend) Close() error {
	m.closed.Store(true)
	return m.client.Close()
}

// memcachedError adds the backend's sentinels to the client's errors.
func memcachedError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrAuth):
		return fmt.Errorf("%w: %w", backends.ErrAuth, err)
	case errors.Is(err, memcache.ErrPoolTimeout):
		return fmt.Errorf("%w: %w", backends.ErrPoolTimeout, err)
	case errors.Is(err, memcache.ErrProtocol):
		return fmt.Errorf("%w: %w", backends.ErrUnavailable, err)
	case errors.Is(err, memcache.ErrTooLarge):
		return fmt.Errorf("%w (the server's item size is set by memcached -I, 1 MiB by default; SpreadSASLMemcachedCache splits larger values): %w",
			backends.ErrValueTooLarge, err)
	}
	return err
}

// exptime converts a TTL to memcached's exptime: whole seconds rounded up,
// absolute Unix time beyond 30 days.
func (m *Backend) exptime(ttl time.Duration) uint32 {
	if ttl <= 0 {
		return 0
	}
	secs := ceilSeconds(ttl)
	if secs <= memcachedMaxRelative {
		return uint32(secs)
	}
	return memcachedAbsolute(m.now().Unix() + min(secs, math.MaxUint32))
}

// expiryFlags is what items store in their flags: their expiry as a Unix
// time (0: never), which Inc needs to rewrite an item with its TTL since
// the protocol cannot read one.
func (m *Backend) expiryFlags(ttl time.Duration) uint32 {
	if ttl <= 0 {
		return 0
	}
	return memcachedAbsolute(m.now().Unix() + min(ceilSeconds(ttl), math.MaxUint32))
}

// ceilSeconds is ttl in whole seconds, rounded up.
func ceilSeconds(ttl time.Duration) int64 {
	secs := int64(ttl / time.Second)
	if ttl%time.Second != 0 {
		secs++
	}
	return secs
}

// memcachedAbsolute is the exptime of a Unix time, capped below NoCreate
// (early 2106).
func memcachedAbsolute(unix int64) uint32 {
	return uint32(min(unix, memcache.NoCreate-1))
}

// encodeMemcached is the stored form of value (see memcachedVerbatim).
func encodeMemcached(value []byte) []byte {
	if n, ok := canonicalInt(value); ok {
		return strconv.AppendUint(make([]byte, 0, 20), uint64(n), 10)
	}
	out := make([]byte, 1+len(value))
	out[0] = memcachedVerbatim
	copy(out[1:], value)
	return out
}

// decodeMemcached returns the caller's bytes of a stored value, or false
// for a value this backend did not write.
func decodeMemcached(raw []byte) ([]byte, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	if raw[0] == memcachedVerbatim {
		return raw[1:], true
	}
	// A counter: decimal digits, padded with spaces by an incr that
	// shortened it in place.
	end := len(raw)
	for end > 0 && raw[end-1] == ' ' {
		end--
	}
	u, err := strconv.ParseUint(string(raw[:end]), 10, 64)
	if err != nil || raw[0] < '0' || raw[0] > '9' {
		return nil, false
	}
	return strconv.AppendInt(make([]byte, 0, 20), int64(u), 10), true
}

// canonicalInt reports whether b is exactly the decimal text Set writes for
// an int64: no sign but a leading '-', no leading zeros, no "-0".
func canonicalInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	var buf [20]byte
	return n, string(strconv.AppendInt(buf[:0], n, 10)) == string(b)
}

// memcachedSafeKey is the server key of a logical key.
func memcachedSafeKey(s string) string {
	if s == "" {
		return memcachedEmptyKey
	}
	return keys.SafeKey(s)
}

// itemKey is the server key of key, namespace generations included.
func (m *Backend) itemKey(ctx context.Context, key string) (string, error) {
	logical, err := m.logical(ctx, key)
	return memcachedSafeKey(logical), err
}

// logical inserts the generation of every declared namespace key is in
// after that namespace's prefix. Since generations are digits and a colon
// and every enclosing namespace's generation is inserted too, two different
// keys never give the same result.
func (m *Backend) logical(ctx context.Context, key string) (string, error) {
	if m.namespaces.Len() == 0 {
		return key, nil
	}
	var b strings.Builder
	pos := 0
	err := m.namespaces.Containing(key, func(ns *namespace.Namespace) error {
		gen, err := m.namespaces.Generation(ctx, ns, func(ctx context.Context) (string, error) { return m.bumpGen(ctx, ns, 0) })
		if err != nil {
			return err
		}
		if pos == 0 {
			b.Grow(len(key) + 16)
		}
		b.WriteString(key[pos:len(ns.Prefix)])
		b.WriteString(gen)
		b.WriteByte(':')
		pos = len(ns.Prefix)
		return nil
	})
	if err != nil {
		return "", err
	}
	if pos == 0 {
		return key, nil
	}
	b.WriteString(key[pos:])
	return b.String(), nil
}

// bumpGen adds delta to the generation of ns and remembers the result. A
// missing generation (a new namespace, a flushed or evicting server) is
// created at a random number rather than a constant, so that entries
// written under an earlier generation stay unreachable.
func (m *Backend) bumpGen(ctx context.Context, ns *namespace.Namespace, delta uint64) (string, error) {
	genKey := keys.SafeKey(memcachedGenName + ns.Prefix)
	for range memcachedMaxAttempts {
		v, err := m.client.Incr(ctx, genKey, delta, uint64(rand.Uint32()), 0)
		switch {
		case err == memcache.ErrNotStored:
			continue // created by another client at the same moment
		case errors.Is(err, memcache.ErrNonNumeric):
			// Overwritten by someone: start a new generation.
			err = m.client.Set(ctx, memcache.Item{Key: genKey, Value: strconv.AppendUint(nil, uint64(rand.Uint32()), 10)})
			if err != nil {
				return "", fmt.Errorf("memcached: reset the generation of namespace %q: %w", ns.Prefix, memcachedError(err))
			}
			continue
		case err != nil:
			return "", fmt.Errorf("memcached: generation of namespace %q: %w", ns.Prefix, memcachedError(err))
		}
		gen := strconv.FormatUint(v, 36)
		m.namespaces.Remember(ns, gen)
		return gen, nil
	}
	return "", fmt.Errorf("memcached: generation of namespace %q kept changing over %d attempts", ns.Prefix, memcachedMaxAttempts)
}

// Spread chunks. Chunk 0 starts with spreadHeader0Len bytes: a magic byte,
// the write's random nonce, the chunk count, the value's length and CRC-32C,
// and its expiry as a Unix time (0: never), which Inc needs to rewrite the
// entry with its TTL since the protocol cannot read one. Chunk i > 0 starts
// with a magic byte and the nonce.
const (
	spreadMagic0     = 0xc0
	spreadMagicN     = 0xc1
	spreadHeader0Len = 1 + 8 + 1 + 8 + 4 + 8
	spreadHeaderNLen = 1 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type spreadHeader struct {
	nonce  uint64
	count  int
	length uint64
	sum    uint32
	expiry int64
}

// spreadKey is the server key of chunk i of a logical key: Flask's
// "{key}.{i}", through keys.SafeKey so that it stays within 250 bytes.
func spreadKey(logical string, i int) string {
	return keys.SafeKey(logical + "." + strconv.Itoa(i))
}

// spreadChunks splits value into the items of one write.
func (m *Backend) spreadChunks(logical string, value []byte, ttl time.Duration) ([]memcache.Item, error) {
	n := max(1, (len(value)+m.chunkSize-1)/m.chunkSize)
	if n > m.maxChunks {
		return nil, fmt.Errorf("%w: a value of %d bytes needs %d chunks of %d bytes, more than the %d allowed (MaxChunks, CACHE_OPTIONS max_chunks)",
			backends.ErrValueTooLarge, len(value), n, m.chunkSize, m.maxChunks)
	}
	var expiry int64
	if ttl > 0 {
		expiry = m.now().Unix() + ceilSeconds(ttl)
	}
	return m.spreadItems(logical, value, n, expiry, m.exptime(ttl)), nil
}

func (m *Backend) spreadItems(logical string, value []byte, n int, expiry int64, exptime uint32) []memcache.Item {
	h := spreadHeader{nonce: rand.Uint64(), count: n, length: uint64(len(value)), sum: crc32.Checksum(value, castagnoli), expiry: expiry}
	items := make([]memcache.Item, n)
	for i := range items {
		part := value[min(i*m.chunkSize, len(value)):min((i+1)*m.chunkSize, len(value))]
		var b []byte
		if i == 0 {
			b = make([]byte, spreadHeader0Len, spreadHeader0Len+len(part))
			b[0] = spreadMagic0
			binary.BigEndian.PutUint64(b[1:9], h.nonce)
			b[9] = byte(h.count)
			binary.BigEndian.PutUint64(b[10:18], h.length)
			binary.BigEndian.PutUint32(b[18:22], h.sum)
			binary.BigEndian.PutUint64(b[22:30], uint64(h.expiry))
		} else {
			b = make([]byte, spreadHeaderNLen, spreadHeaderNLen+len(part))
			b[0] = spreadMagicN
			binary.BigEndian.PutUint64(b[1:9], h.nonce)
		}
		items[i] = memcache.Item{Key: spreadKey(logical, i), Value: append(b, part...), Expiration: exptime}
	}
	return items
}

func parseSpreadHeader(chunk0 []byte) (spreadHeader, []byte, bool) {
	if len(chunk0) < spreadHeader0Len || chunk0[0] != spreadMagic0 || chunk0[9] == 0 {
		return spreadHeader{}, nil, false
	}
	return spreadHeader{
		nonce:  binary.BigEndian.Uint64(chunk0[1:9]),
		count:  int(chunk0[9]),
		length: binary.BigEndian.Uint64(chunk0[10:18]),
		sum:    binary.BigEndian.Uint32(chunk0[18:22]),
		expiry: int64(binary.BigEndian.Uint64(chunk0[22:30])),
	}, chunk0[spreadHeader0Len:], true
}

// spreadJoin reassembles a value from the data of chunk 0 and the other
// chunks as read; false means a chunk is missing, left from another write,
// or the whole does not match the length and checksum.
func spreadJoin(h spreadHeader, data0 []byte, rest []memcache.Item) ([]byte, bool) {
	total := uint64(len(data0))
	for _, it := range rest {
		if len(it.Value) < spreadHeaderNLen || it.Value[0] != spreadMagicN || binary.BigEndian.Uint64(it.Value[1:9]) != h.nonce {
			return nil, false
		}
		total += uint64(len(it.Value) - spreadHeaderNLen)
	}
	if total != h.length {
		return nil, false
	}
	value := data0
	if len(rest) > 0 {
		value = make([]byte, 0, total)
		value = append(value, data0...)
		for _, it := range rest {
			value = append(value, it.Value[spreadHeaderNLen:]...)
		}
	}
	if crc32.Checksum(value, castagnoli) != h.sum {
		return nil, false
	}
	return value, true
}

// spreadRead reads the entry whose chunk 0 is chunk0.
func (m *Backend) spreadRead(ctx context.Context, logical string, chunk0 []byte) ([]byte, spreadHeader, bool, error) {
	h, data0, ok := parseSpreadHeader(chunk0)
	if !ok {
		return nil, h, false, nil
	}
	var rest []memcache.Item
	if h.count > 1 {
		ks := make([]string, h.count-1)
		for i := range ks {
			ks[i] = spreadKey(logical, i+1)
		}
		var err error
		if rest, err = m.client.GetMulti(ctx, ks); err != nil {
			return nil, h, false, memcachedError(err)
		}
	}
	v, ok := spreadJoin(h, data0, rest)
	return v, h, ok, nil
}

func (m *Backend) spreadGet(ctx context.Context, key string) ([]byte, bool, error) {
	logical, err := m.logical(ctx, key)
	if err != nil {
		return nil, false, err
	}
	it, err := m.client.Get(ctx, spreadKey(logical, 0))
	if err == memcache.ErrCacheMiss {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, memcachedError(err)
	}
	v, _, ok, err := m.spreadRead(ctx, logical, it.Value)
	return v, ok, err
}

// spreadGetMany reads every chunk 0 in one pipeline, then every other
// chunk they list in a second one.
func (m *Backend) spreadGetMany(ctx context.Context, keys []string) ([][]byte, error) {
	logicals := make([]string, len(keys))
	ks := make([]string, len(keys))
	for i, key := range keys {
		var err error
		if logicals[i], err = m.logical(ctx, key); err != nil {
			return nil, err
		}
		ks[i] = spreadKey(logicals[i], 0)
	}
	firsts, err := m.client.GetMulti(ctx, ks)
	if err != nil {
		return nil, memcachedError(err)
	}
	headers := make([]spreadHeader, len(keys))
	data0 := make([][]byte, len(keys))
	var restKeys []string
	for i, it := range firsts {
		if it.Value == nil {
			continue
		}
		h, d, ok := parseSpreadHeader(it.Value)
		if !ok {
			continue
		}
		headers[i], data0[i] = h, d
		for c := 1; c < h.count; c++ {
			restKeys = append(restKeys, spreadKey(logicals[i], c))
		}
	}
	var rest []memcache.Item
	if len(restKeys) > 0 {
		if rest, err = m.client.GetMulti(ctx, restKeys); err != nil {
			return nil, memcachedError(err)
		}
	}
	out := make([][]byte, len(keys))
	for i := range keys {
		if data0[i] == nil {
			continue
		}
		n := headers[i].count - 1
		out[i], _ = spreadJoin(headers[i], data0[i], rest[:n])
		rest = rest[n:]
	}
	return out, nil
}

// spreadSet writes the chunks after the first, then the first.
func (m *Backend) spreadSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	logical, err := m.logical(ctx, key)
	if err != nil {
		return err
	}
	items, err := m.spreadChunks(logical, value, ttl)
	if err != nil {
		return err
	}
	if len(items) > 1 {
		if errs := m.client.SetMulti(ctx, items[1:]); errs != nil {
			return memcachedError(errors.Join(errs...))
		}
	}
	return memcachedError(m.client.Set(ctx, items[0]))
}

// spreadSetEntries writes every chunk after the first of every entry in
// one pipeline per server, then the first chunks of the entries whose
// other chunks were stored.
func (m *Backend) spreadSetEntries(ctx context.Context, entries []backends.Entry) error {
	var (
		errs        []error
		firsts      []memcache.Item
		rest        []memcache.Item
		firstOwner  []string
		restOwner   []string
		restFailure = map[string]error{}
	)
	for _, e := range entries {
		logical, err := m.logical(ctx, e.Key)
		var chunks []memcache.Item
		if err == nil {
			chunks, err = m.spreadChunks(logical, e.Value, e.TTL)
		}
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: e.Key, Err: err})
			continue
		}
		firsts = append(firsts, chunks[0])
		firstOwner = append(firstOwner, e.Key)
		for _, c := range chunks[1:] {
			rest = append(rest, c)
			restOwner = append(restOwner, e.Key)
		}
	}
	for i, err := range m.client.SetMulti(ctx, rest) {
		if err != nil && restFailure[restOwner[i]] == nil {
			restFailure[restOwner[i]] = err
		}
	}
	var toWrite []memcache.Item
	var owners []string
	for i, it := range firsts {
		if err := restFailure[firstOwner[i]]; err != nil {
			errs = append(errs, &backends.KeyError{Key: firstOwner[i], Err: memcachedError(err)})
			continue
		}
		toWrite = append(toWrite, it)
		owners = append(owners, firstOwner[i])
	}
	for i, err := range m.client.SetMulti(ctx, toWrite) {
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: owners[i], Err: memcachedError(err)})
		}
	}
	return errors.Join(errs...)
}

// spreadAdd claims chunk 0 with memcached's add (or, over a broken entry,
// with compare-and-swap), then writes the other chunks.
func (m *Backend) spreadAdd(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	logical, err := m.logical(ctx, key)
	if err != nil {
		return false, err
	}
	items, err := m.spreadChunks(logical, value, ttl)
	if err != nil {
		return false, err
	}
	claimed := false
	for attempt := 0; !claimed && attempt < memcachedMaxAttempts; attempt++ {
		err := m.client.Add(ctx, items[0])
		if err == nil {
			claimed = true
			break
		}
		if err != memcache.ErrNotStored {
			return false, memcachedError(err)
		}
		cur, err := m.client.Get(ctx, items[0].Key)
		if err == memcache.ErrCacheMiss {
			continue
		}
		if err != nil {
			return false, memcachedError(err)
		}
		_, _, live, err := m.spreadRead(ctx, logical, cur.Value)
		if err != nil || live {
			return false, err
		}
		swap := items[0]
		swap.CAS = cur.CAS
		switch err := m.client.CompareAndSwap(ctx, swap); {
		case err == nil:
			claimed = true
		case err != memcache.ErrCASConflict && err != memcache.ErrCacheMiss:
			return false, memcachedError(err)
		}
	}
	if !claimed {
		return false, fmt.Errorf("memcached: add %.60q: the key kept changing over %d attempts", key, memcachedMaxAttempts)
	}
	if len(items) > 1 {
		if errs := m.client.SetMulti(ctx, items[1:]); errs != nil {
			_ = m.client.Delete(ctx, items[0].Key) // do not leave a claim that can never be read
			return false, memcachedError(errors.Join(errs...))
		}
	}
	return true, nil
}

// spreadInc reads chunk 0 and writes the sum back with compare-and-swap,
// retrying when another client got there first.
func (m *Backend) spreadInc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	logical, err := m.logical(ctx, key)
	if err != nil {
		return 0, err
	}
	k0 := spreadKey(logical, 0)
	for attempt := range memcachedMaxAttempts {
		if attempt > 2 { // contended: let the others finish
			time.Sleep(time.Duration(rand.IntN(min(attempt, 20))+1) * 20 * time.Microsecond)
		}
		cur, err := m.client.Get(ctx, k0)
		if err == memcache.ErrCacheMiss {
			items, _ := m.spreadChunks(logical, backends.FormatInt(delta), ttl) // one chunk: never too large
			switch err := m.client.Add(ctx, items[0]); err {
			case nil:
				return delta, nil
			case memcache.ErrNotStored:
				continue
			default:
				return 0, memcachedError(err)
			}
		}
		if err != nil {
			return 0, memcachedError(err)
		}
		v, h, live, err := m.spreadRead(ctx, logical, cur.Value)
		if err != nil {
			return 0, err
		}
		var item memcache.Item
		result := delta
		if !live { // a broken entry is a miss: replace it
			items, _ := m.spreadChunks(logical, backends.FormatInt(delta), ttl)
			item = items[0]
		} else {
			sum, stored, err := backends.AddInt(v, delta)
			if err != nil {
				return 0, err
			}
			result = sum
			item = m.spreadItems(logical, stored, 1, h.expiry, m.exptimeAt(h.expiry))[0]
		}
		item.CAS = cur.CAS
		switch err := m.client.CompareAndSwap(ctx, item); err {
		case nil:
			return result, nil
		case memcache.ErrCASConflict, memcache.ErrCacheMiss:
			continue
		default:
			return 0, memcachedError(err)
		}
	}
	return 0, fmt.Errorf("memcached: inc %.60q: the key kept changing over %d attempts", key, memcachedMaxAttempts)
}

// exptimeAt is the exptime that makes an entry expire at the Unix time
// expiry (0: never), as close as memcached's whole seconds allow.
func (m *Backend) exptimeAt(expiry int64) uint32 {
	if expiry == 0 {
		return 0
	}
	left := expiry - m.now().Unix()
	switch {
	case left < 1:
		return 1 // due now: let it go within the second
	case left <= memcachedMaxRelative:
		return uint32(left)
	}
	return memcachedAbsolute(expiry)
}
