// Package backends is fragcache's general cache API: the Go form of
// Flask-Caching's Cache object and its backends.
//
// The design follows database/sql. Backend authors implement the small
// [Backend] interface, which speaks raw bytes and explicit TTLs. Users hold a
// [Cache], the frontend that adds typed values (through a [Codec]), the key
// prefix, the default timeout and the whole Flask-Caching API: Get, Set, Add,
// Delete, GetMany, SetMany, DeleteMany, Has, Clear, Inc, Dec and GetDict.
// Backends are chosen by name through a registry ([Register], [Open]) that
// knows Flask-Caching's CACHE_TYPE names, old and new, and is configured with
// the same CACHE_* keys ([FromMap], [FromEnv]).
//
// This package is the core only: the Backend contract, the Cache frontend,
// values and codecs, errors, the generic Config, the registry, the
// [Breaker] wrapper, and the two in-process backends, [Null] and [Simple].
// It imports no network client. Each of Flask's other backend families is
// a package of its own, registering its CACHE_TYPE names when imported, as
// a database/sql driver does: backends/filesystem, backends/redis (Redis,
// Sentinel, Cluster), backends/memcached (Memcached, SASL, Spread) and
// backends/uwsgi; backends/all imports the four. Opening a Flask CACHE_TYPE
// whose package the program does not import is an error wrapping
// [ErrUnknownBackend] that names the import to add. The core keeps the
// names and kinds of every CACHE_* key, so that [FromMap] and [FromEnv]
// check them whatever the program imports; each family interprets its own
// (Config.Settings) and its CACHE_OPTIONS. This package imports the
// standard library, msgpack, gobreaker and fragcache's internal option
// reader.
//
// A timeout is a time.Duration, the same way in every package of the
// module: 0 means "the default" (an omitted timeout too), [NoExpiry] means
// the entry never expires, a positive one is a TTL, and any other negative
// one is rejected with [ErrInvalidTimeout] before any backend sees it. The
// cache's default is CacheOptions.DefaultTimeout, whose own 0 is Flask's
// 300 s ([DefaultTimeout]). Flask's texts keep Flask's meaning at the
// edges: CACHE_DEFAULT_TIMEOUT=0, CACHE_OPTIONS default_timeout 0 and a
// template's `cache 0` never expire, and are read as NoExpiry. A Backend is
// given the resolved TTL only: positive, or NoExpiry.
//
// [Simple], Flask's SimpleCache, is written here rather than over a Go
// cache library: its lock-free index and its optional W-TinyLFU policy do
// what otter v2 does well, but Simple must also hold exactly CACHE_THRESHOLD
// entries, evict expired entries before any live one, keep Inc and Add
// atomic with the evictions they cause and clear by key prefix, which no
// such library offers together (see the comments in simple_table.go and
// simple_policy.go, and BENCHMARKS.md for the comparison).
//
// Values are stored in a small envelope so that every backend agrees on the
// bytes, and so that what other programs wrote reads back as they wrote it:
//
//   - an integer (every int and uint kind) is bare decimal text, so Inc and
//     Dec work on values written by Set and map to atomic server commands
//     (Redis INCRBY, memcached incr);
//   - a string is the byte 0xF5 followed by its bytes, a []byte is 0xF6
//     followed by its bytes, and any other value is 0xF7 followed by codec
//     bytes (msgpack by default). 0xF5–0xF7 never occur in valid UTF-8, so
//     no text another program wrote is taken for one of these;
//   - a value starting with '!' is the marker of a pickle written by
//     Flask-Caching (cachelib): it is never decoded, Get reports an error
//     wrapping [ErrDecode], and callers such as fragment and memoize treat
//     it as a miss and log it;
//   - anything else is foreign (a raw SET from redis-cli, another
//     language's cache) and reads back byte for byte into a string or a
//     []byte, and through [Value.Text].
//
// Cache contents are untrusted input. No codec decodes into types chosen by
// the stored bytes, so a value is never code (unlike Python's pickle); a
// panic inside a codec is an [ErrDecode] error; and msgpack decoding is
// bounded, so that decoding N stored bytes allocates at most 64 KiB + 64·N
// bytes in the destination types the fuzz targets cover (see
// [MsgpackCodec.Unmarshal] and README's security section).
//
// A cache backend that is down or hung must cost a page milliseconds. Every
// operation takes the caller's context and networked backends honour its
// deadline; networked backends built by Open have timeouts for a cache, not
// for a database; and Open guards networked backends with a
// circuit breaker ([Breaker]) that skips a failing backend for a short
// cool-down, so callers that fail open go on at once.
//
// A networked backend may keep a near cache (CACHE_OPTIONS "near_cache"):
// hits served from process memory. Package redis keeps its copies coherent
// with Redis's invalidations (its near.go says why it is not go-redis's
// own client-side cache); memcached and uWSGI get [NearCache], whose
// copies live a short, fixed time. Package internal/nearcache holds the
// bounded store both use.
//
// Where Flask-Caching 2.0.2 contradicts its own documentation (DeleteMany
// stopping at the first missing key, never-expiring entries evicted first,
// key prefixes ignored by some backends, Inc resetting TTLs), this package
// does what the documentation promises, the same way on every backend. The
// README lists each difference.
package backends
