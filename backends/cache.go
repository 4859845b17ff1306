package backends

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unsafe"
)

// Timeouts. A timeout is a time.Duration: 0 means the default (the zero
// value is useful), NoExpiry means never expires, a positive one is a TTL,
// and any other negative one is ErrInvalidTimeout.
const (
	// NoExpiry as a timeout stores an entry that never expires: only
	// Delete, Clear and the store's own eviction remove it.
	NoExpiry time.Duration = -1
	// DefaultTimeout is what a DefaultTimeout of 0 means: Flask-Caching's
	// CACHE_DEFAULT_TIMEOUT default, 300 s.
	DefaultTimeout = 300 * time.Second
)

// CacheOptions configure a [Cache] built with [New]. The zero value is usable:
// no key prefix, msgpack values, entries that expire after Flask's 300 s
// unless a call passes a timeout.
type CacheOptions struct {
	// KeyPrefix is prepended to every key of every operation, and Clear
	// removes only keys under it.
	KeyPrefix string
	// DefaultTimeout is used when a call omits its timeout or passes 0.
	// 0 means DefaultTimeout (300 s), NoExpiry never expires; any other
	// negative value is invalid.
	DefaultTimeout time.Duration
	// Codec encodes values that are not integers, strings or byte slices.
	// Nil means MsgpackCodec.
	Codec Codec
	// IgnoreErrors (CACHE_IGNORE_ERRORS) makes SetMany and DeleteMany log
	// per-key failures instead of returning them.
	IgnoreErrors bool
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Cache is the cache users hold: the Flask-Caching API over a [Backend].
// It is safe for concurrent use.
type Cache struct {
	backend        Backend
	prefix         string
	defaultTimeout time.Duration
	codec          Codec
	ignoreErrors   bool
	logger         *slog.Logger
}

// New returns a Cache over b. It panics if opts.DefaultTimeout is negative
// other than NoExpiry, since that is a programming error rather than user
// input.
func New(b Backend, opts CacheOptions) *Cache {
	switch {
	case opts.DefaultTimeout == 0:
		opts.DefaultTimeout = DefaultTimeout
	case opts.DefaultTimeout < 0 && opts.DefaultTimeout != NoExpiry:
		panic(fmt.Sprintf("backends.New: negative DefaultTimeout %v (use NoExpiry for entries that never expire)", opts.DefaultTimeout))
	}
	if opts.Codec == nil {
		opts.Codec = MsgpackCodec{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Cache{
		backend:        b,
		prefix:         opts.KeyPrefix,
		defaultTimeout: opts.DefaultTimeout,
		codec:          opts.Codec,
		ignoreErrors:   opts.IgnoreErrors,
		logger:         opts.Logger,
	}
}

// Backend returns the backend the cache stores into (the one a circuit
// breaker guards, not the breaker).
func (c *Cache) Backend() Backend { return unwrapBreaker(c.backend) }

// Ping checks, within ctx, that the backend's server answers: for a
// readiness probe, or to fail at startup rather than at the first cache
// operation. It returns nil for a backend without a server (Null, Simple,
// FileSystem: any backend that is not a [Pinger]). A circuit breaker in
// front of the backend does not answer for it: Ping always asks the
// server.
func (c *Cache) Ping(ctx context.Context) error {
	if p, ok := c.backend.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// KeyPrefix returns the prefix prepended to every key.
func (c *Cache) KeyPrefix() string { return c.prefix }

// DefaultTimeout returns the timeout used when a call omits one or passes
// 0: positive, or NoExpiry.
func (c *Cache) DefaultTimeout() time.Duration { return c.defaultTimeout }

// Timeout resolves an optional timeout as every method does, into what the
// backend is given: none or 0 means the default, NoExpiry and positive
// timeouts are themselves, any other negative one or more than one is
// ErrInvalidTimeout.
func (c *Cache) Timeout(timeout ...time.Duration) (time.Duration, error) {
	switch {
	case len(timeout) == 0:
		return c.defaultTimeout, nil
	case len(timeout) > 1:
		return 0, fmt.Errorf("%w: got %d timeouts, want at most one", ErrInvalidTimeout, len(timeout))
	case timeout[0] == 0:
		return c.defaultTimeout, nil
	case timeout[0] < 0 && timeout[0] != NoExpiry:
		return 0, fmt.Errorf("%w: %v is negative (use NoExpiry for entries that never expire)", ErrInvalidTimeout, timeout[0])
	}
	return timeout[0], nil
}

func (c *Cache) key(k string) string {
	if c.prefix == "" {
		return k
	}
	return c.prefix + k
}

// Get decodes the value stored under key into dst, a non-nil pointer (see
// [Value.Decode] for what decodes into what). A miss returns found=false and
// leaves dst alone; it is not an error.
func (c *Cache) Get(ctx context.Context, key string, dst any) (found bool, err error) {
	v, err := c.GetValue(ctx, key)
	if err != nil || !v.Found() {
		return false, err
	}
	if err := v.Decode(dst); err != nil {
		return false, fmt.Errorf("get %q: %w", key, err)
	}
	return true, nil
}

// GetValue returns the stored value under key without decoding it; a miss
// is the zero Value. Its Bytes method reads strings and byte slices without
// a copy, which is what fragment caching uses on its hot path.
func (c *Cache) GetValue(ctx context.Context, key string) (Value, error) {
	b, found, err := c.backend.Get(ctx, c.key(key))
	if err != nil {
		return Value{}, fmt.Errorf("get %q: %w", key, err)
	}
	if !found {
		return Value{}, nil
	}
	if b == nil {
		b = []byte{}
	}
	return Value{data: b, codec: c.codec}, nil
}

// GetValueBytes is GetValue for a key held in a byte slice, for a read
// path that builds its keys in a reused buffer (fragment's block lookups).
// The Cache keeps no reference to key once it returns. On a Simple backend
// (not wrapped by Observe) the lookup makes no string of the key, so a hit
// allocates nothing; other backends are given string(key).
func (c *Cache) GetValueBytes(ctx context.Context, key []byte) (Value, error) {
	s, ok := c.backend.(*Simple)
	if !ok {
		return c.GetValue(ctx, string(key))
	}
	full := key
	if c.prefix != "" {
		var arr [keyBufLen]byte
		full = append(append(arr[:0], c.prefix...), key...)
	}
	// Simple.Get only compares the key with the stored ones: the string
	// does not outlive the call, so it may share the caller's buffer.
	b, found, err := s.Get(ctx, unsafe.String(unsafe.SliceData(full), len(full)))
	if err != nil {
		return Value{}, fmt.Errorf("get %q: %w", string(key), err)
	}
	if !found {
		return Value{}, nil
	}
	return Value{data: b, codec: c.codec}, nil
}

// keyBufLen is the size of the stack buffer GetValueBytes joins the prefix
// and a key in; longer keys are joined on the heap.
const keyBufLen = 256

// GetMany returns one Value per key, in order; a miss is a zero Value.
func (c *Cache) GetMany(ctx context.Context, keys ...string) ([]Value, error) {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = c.key(k)
	}
	raw, err := c.backend.GetMany(ctx, full)
	if err != nil && !c.missedKeys(err, raw, len(keys)) {
		return nil, fmt.Errorf("get many: %w", err)
	}
	if len(raw) != len(keys) {
		return nil, fmt.Errorf("get many: backend returned %d values for %d keys", len(raw), len(keys))
	}
	out := make([]Value, len(keys))
	for i, b := range raw {
		if b != nil {
			out[i] = Value{data: b, codec: c.codec}
		}
	}
	return out, nil
}

// GetDict is Flask's get_dict: the values of keys as a map. Only keys that
// hold a live entry are present, so `v, ok := m[k]` tells a miss.
func (c *Cache) GetDict(ctx context.Context, keys ...string) (map[string]Value, error) {
	vals, err := c.GetMany(ctx, keys...)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Value, len(keys))
	for i, v := range vals {
		if v.Found() {
			m[keys[i]] = v
		}
	}
	return m, nil
}

// Set stores value under key. Integers are stored as decimal text (so Inc
// works on them), strings and []byte verbatim, anything else through the
// codec. The optional timeout is described in the package doc.
func (c *Cache) Set(ctx context.Context, key string, value any, timeout ...time.Duration) error {
	ttl, err := c.Timeout(timeout...)
	if err != nil {
		return fmt.Errorf("set %q: %w", key, err)
	}
	b, err := encode(c.codec, value)
	if err != nil {
		return fmt.Errorf("set %q: %w", key, err)
	}
	if err := c.backend.Set(ctx, c.key(key), b, ttl); err != nil {
		return fmt.Errorf("set %q: %w", key, err)
	}
	return nil
}

// Add stores value only if key holds no live entry and reports whether it
// did; an existing entry is never overwritten.
func (c *Cache) Add(ctx context.Context, key string, value any, timeout ...time.Duration) (added bool, err error) {
	ttl, err := c.Timeout(timeout...)
	if err != nil {
		return false, fmt.Errorf("add %q: %w", key, err)
	}
	b, err := encode(c.codec, value)
	if err != nil {
		return false, fmt.Errorf("add %q: %w", key, err)
	}
	added, err = c.backend.Add(ctx, c.key(key), b, ttl)
	if err != nil {
		return false, fmt.Errorf("add %q: %w", key, err)
	}
	return added, nil
}

// SetMany stores every item with one timeout. Every item is attempted; the
// error, if any, joins a *KeyError per failed key (logged and dropped
// instead when the cache ignores errors).
func (c *Cache) SetMany(ctx context.Context, items map[string]any, timeout ...time.Duration) error {
	ttl, err := c.Timeout(timeout...)
	if err != nil {
		return fmt.Errorf("set many: %w", err)
	}
	var errs []error
	enc := make(map[string][]byte, len(items))
	unprefixed := make(map[string]string, len(items))
	for k, v := range items {
		b, err := encode(c.codec, v)
		if err != nil {
			errs = append(errs, &KeyError{Key: k, Err: err})
			continue
		}
		enc[c.key(k)] = b
		unprefixed[c.key(k)] = k
	}
	if len(enc) > 0 {
		if err := c.backend.SetMany(ctx, enc, ttl); err != nil {
			errs = append(errs, c.unprefixErrors(err, unprefixed))
		}
	}
	return c.manyResult("set many", errs)
}

// Delete removes key and reports whether a live entry was there.
func (c *Cache) Delete(ctx context.Context, key string) (deleted bool, err error) {
	deleted, err = c.backend.Delete(ctx, c.key(key))
	if err != nil {
		return false, fmt.Errorf("delete %q: %w", key, err)
	}
	return deleted, nil
}

// DeleteMany removes every key, continuing past missing ones (Flask 2.0.2
// stops at the first), and returns how many live entries it removed.
func (c *Cache) DeleteMany(ctx context.Context, keys ...string) (deleted int, err error) {
	full := make([]string, len(keys))
	unprefixed := make(map[string]string, len(keys))
	for i, k := range keys {
		full[i] = c.key(k)
		unprefixed[full[i]] = k
	}
	n, err := c.backend.DeleteMany(ctx, full)
	if err != nil {
		return n, c.manyResult("delete many", []error{c.unprefixErrors(err, unprefixed)})
	}
	return n, nil
}

// Has reports whether key holds a live entry.
func (c *Cache) Has(ctx context.Context, key string) (bool, error) {
	ok, err := c.backend.Has(ctx, c.key(key))
	if err != nil {
		return false, fmt.Errorf("has %q: %w", key, err)
	}
	return ok, nil
}

// Clear removes every entry under the cache's key prefix, or everything the
// backend holds when the prefix is empty.
func (c *Cache) Clear(ctx context.Context) error {
	if err := c.backend.Clear(ctx, c.prefix); err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	return nil
}

// Inc adds delta to the integer stored under key and returns the new value.
// A missing key starts from 0 and is stored with the default timeout; an
// existing entry keeps its TTL (Flask resets it). A value that is not an
// integer gives ErrNotInteger.
func (c *Cache) Inc(ctx context.Context, key string, delta int64) (int64, error) {
	n, err := c.backend.Inc(ctx, c.key(key), delta, c.defaultTimeout)
	if err != nil {
		return 0, fmt.Errorf("inc %q: %w", key, err)
	}
	return n, nil
}

// Dec subtracts delta from the integer stored under key; see Inc.
func (c *Cache) Dec(ctx context.Context, key string, delta int64) (int64, error) {
	if delta == -delta && delta != 0 { // math.MinInt64 cannot be negated
		return 0, fmt.Errorf("dec %q: %w: delta %d", key, ErrNotInteger, delta)
	}
	n, err := c.backend.Inc(ctx, c.key(key), -delta, c.defaultTimeout)
	if err != nil {
		return 0, fmt.Errorf("dec %q: %w", key, err)
	}
	return n, nil
}

// Close closes the backend.
func (c *Cache) Close() error { return c.backend.Close() }

// unprefixErrors rewrites backend *KeyErrors to name the caller's keys.
func (c *Cache) unprefixErrors(err error, unprefixed map[string]string) error {
	if c.prefix == "" {
		return err
	}
	var out []error
	for _, e := range flatten(err) {
		var ke *KeyError
		if errors.As(e, &ke) {
			if k, ok := unprefixed[ke.Key]; ok {
				e = &KeyError{Key: k, Err: ke.Err}
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

func (c *Cache) manyResult(op string, errs []error) error {
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	if c.ignoreErrors {
		c.logger.Warn("fragcache: ignored errors", "op", op, "err", err)
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}

// flatten splits an errors.Join into its parts.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
