package backends

import (
	"context"
	"time"
)

// Backend is what a cache backend implements: storage of raw bytes under
// string keys with per-entry TTLs. Users do not call it directly; they hold a
// [Cache], which validates timeouts, applies the key prefix and encodes values
// before a Backend sees them.
//
// Every method must be safe for concurrent use. Keys arrive already prefixed.
// A ttl is resolved by the Cache before a Backend sees it: it is either
// positive, a TTL, or NoExpiry, an entry that never expires (never 0, never
// another negative value). Value slices
// returned by Get and GetMany may share memory with the backend and must not
// be modified by the caller, nor by the backend afterwards (fragment hands a
// hit to the page, and html/template as a string, without copying it);
// slices passed to Set, SetMany and Add belong to
// the backend after the call. A found value is never nil (use a non-nil empty
// slice), because nil marks a miss in GetMany.
//
// Package backendtest checks an implementation against this contract.
type Backend interface {
	// Get returns the value stored under key, or found=false on a miss
	// (including an expired entry). A miss is not an error.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// GetMany returns one slice per key, in order; nil marks a miss.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
	// Set stores value under key, replacing any previous value and TTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetMany stores every item with the same TTL. It attempts every item
	// even when some fail and reports failures as an errors.Join of
	// *KeyError.
	SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error
	// Add stores value only if key holds no live entry; added reports
	// whether it did.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (added bool, err error)
	// Delete removes key; deleted reports whether a live entry was there.
	Delete(ctx context.Context, key string) (deleted bool, err error)
	// DeleteMany removes every key, continuing past missing ones, and
	// returns how many live entries it removed.
	DeleteMany(ctx context.Context, keys []string) (deleted int, err error)
	// Has reports whether key holds a live entry.
	Has(ctx context.Context, key string) (bool, error)
	// Inc adds delta to the decimal integer stored under key and returns the
	// new value. A missing key is created as delta with the given ttl; an
	// existing entry keeps its TTL. A value that is not a decimal int64, or a
	// result that overflows, gives ErrNotInteger. It should be atomic where
	// the store allows it.
	Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	// Clear removes every key starting with prefix; an empty prefix removes
	// everything the backend holds.
	Clear(ctx context.Context, prefix string) error
	// Close releases the backend's resources. Operations after Close return
	// ErrClosed.
	Close() error
}

// Pinger is implemented by backends that talk to a server: Ping checks,
// within ctx, that the server answers (and accepts the credentials, where
// there are some). Open does not connect, so a readiness probe or a
// program that wants to fail at startup calls [Cache.Ping], which uses
// it. The networked backends (Redis, memcached, uWSGI) implement it;
// in-process ones need not.
type Pinger interface {
	Ping(ctx context.Context) error
}
