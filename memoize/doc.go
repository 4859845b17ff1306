// Package memoize caches a function's results by its arguments in a
// backends.Cache: Flask-Caching's @cache.memoize, delete_memoized and
// delete_memoized_verhash, with Go types.
//
// [Func] wraps a function of a context and one argument; [Method] wraps a
// method expression such as (*Repo).Find, whose receiver identifies itself
// through [Identifier]. Go's generics have no variadic type parameters, so
// a function of several arguments takes them as a struct (the struct is
// the parameter list): every field is part of the key unless
// Options.IgnoreFields names it, as Flask's args_to_ignore names
// parameters. Two generic types, [Memoized] and [MemoizedMethod], are the
// whole API.
//
// A result is stored under a key made of the function's identity (its
// qualified name, or Options.Name), the static types of its arguments and
// result, the receiver's CacheID, and an encoding of the arguments, hashed
// with SHA-256 to 22 characters. Arguments are encoded by value and type,
// never by address: pointers are followed, map entries sorted, unexported
// fields included, and 1, int64(1), 1.0 and "1" behind an interface all
// differ, so equal arguments give equal keys in every process and unequal
// ones never share a key. A value with a CacheID method ([Identifier]) is
// encoded as its CacheID alone, one with MarshalBinary (time.Time) as its
// binary form. Funcs, channels and cyclic values have no such encoding:
// Call returns [ErrUnsupportedArg].
//
// Each entry also holds the function's version, a random string stored in
// the cache under the function's name plus "_memver" that never expires;
// one GetMany reads both, so a hit costs one round trip. DeleteMemoized
// invalidates every argument combination by writing a new version: an
// entry holding an older one is a miss, and is overwritten by the next
// call or ages out with its own timeout. Methods add a per-receiver
// version, created only by DeleteInstance, so invalidating one receiver's
// entries is O(1) as well and costs no storage for receivers that were
// never invalidated. That key never expires either; a store that evicted it
// (an LRU under memory pressure) while entries written before the
// DeleteInstance survived would serve those again, but a store that evicts
// least recently used keys first keeps it, since every call for that
// receiver reads it.
//
// Results travel through the cache's codec (msgpack by default), so R
// must survive it: exported fields only, as with encoding/json. Callers
// that shared one execution receive the same R value; treat results that
// are pointers, slices or maps as read-only.
//
// Beyond Flask: errors returned by the function are never stored;
// concurrent calls with the same arguments in a process run the function
// once and share its result; backend errors are fail-open — counted,
// logged at most once per interval, and the function runs uncached (once
// for concurrent calls with the same arguments, as for a miss) — unless
// Options.Strict asks for them to be returned. A caller cancelled while
// running the function for waiting callers hands the run to one of them; a
// backend whose circuit breaker is open is skipped without a log line per
// call (Stats.Skips, Stats.Breaker). Options.StaleWhileRevalidate returns a
// result past its timeout, within a grace period, while the function runs
// again in the background, and returns results kept in memory while the
// backend cannot be reached; Options.EarlyRefresh re-runs it in the
// background shortly before a hot result expires (probabilistic early
// expiration, "XFetch").
package memoize
