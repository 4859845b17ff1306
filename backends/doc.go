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
// Timeouts follow Flask-Caching: an omitted timeout means the cache's default
// (CACHE_DEFAULT_TIMEOUT, 300 s unless configured), 0 means the entry never
// expires, and a negative timeout is rejected with [ErrInvalidTimeout] before
// any backend sees it.
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
// deadline; Redis backends built by Open have timeouts for a cache, not for a
// database (redisDefaults); and Open guards networked backends with a
// circuit breaker ([Breaker]) that skips a failing backend for a short
// cool-down, so callers that fail open go on at once.
//
// Where Flask-Caching 2.0.2 contradicts its own documentation (DeleteMany
// stopping at the first missing key, never-expiring entries evicted first,
// key prefixes ignored by some backends, Inc resetting TTLs), this package
// does what the documentation promises, the same way on every backend. The
// README lists each difference.
package backends
