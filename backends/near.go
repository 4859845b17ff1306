package backends

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/fragcache/fragcache/internal/cacheopt"
	"github.com/fragcache/fragcache/internal/nearcache"
)

// DefaultNearCacheStaleness is how long [NearCache] serves a copy when
// NearCacheOptions.Staleness is 0.
const DefaultNearCacheStaleness = time.Second

// NearCacheOptions configure [NewNearCache].
type NearCacheOptions struct {
	// MaxEntries bounds the entries (0: 10000).
	MaxEntries int
	// MaxBytes bounds what the entries cost: keys, values and 96 bytes each
	// (0: 64 MiB).
	MaxBytes int64
	// Staleness is how long a copy is served without asking the backend
	// (0: DefaultNearCacheStaleness): the bound on how stale a read can be
	// after another process changed the key.
	Staleness time.Duration
}

// NearCache keeps a short-lived in-process copy of what a backend without
// server invalidation returns (memcached, uWSGI): a read within Staleness
// of the read that fetched a value is served from memory. Another process's
// write is therefore seen up to Staleness late; this process's own writes
// (Set, Add, Delete, Inc, the Many forms) drop its copies at once and Clear
// flushes them. A miss is not kept. For Redis use the redis package's NewWithNearCache,
// which Redis keeps coherent instead.
type NearCache struct {
	b  Backend
	nc *nearcache.Cache
}

// NewNearCache wraps b in a near cache. Close closes b too.
func NewNearCache(b Backend, opt NearCacheOptions) *NearCache {
	if opt.Staleness <= 0 {
		opt.Staleness = DefaultNearCacheStaleness
	}
	return &NearCache{b: b, nc: nearcache.New(nearcache.Options{
		MaxEntries: opt.MaxEntries, MaxBytes: opt.MaxBytes, TTL: opt.Staleness})}
}

// Unwrap returns the wrapped backend.
func (n *NearCache) Unwrap() Backend { return n.b }

// Stats returns the near cache's counters (Tracking is always false: no
// server keeps it coherent).
func (n *NearCache) Stats() NearCacheStats {
	s := n.nc.Stats()
	return NearCacheStats{
		Hits: s.Hits, Misses: s.Misses, Entries: s.Entries, Bytes: s.Bytes,
		Evictions: s.Evictions, Invalidations: s.Invalidations, Flushes: s.Flushes,
		DroppedFills: s.DroppedFills,
	}
}

// Get serves key from memory or reads it from the backend and keeps it.
func (n *NearCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if v, ok := n.nc.Get(key); ok {
		return v, true, nil
	}
	ticket, keep := n.nc.Begin()
	v, ok, err := n.b.Get(ctx, key)
	if err == nil && ok && keep {
		n.nc.Put(key, v, 0, ticket)
	}
	return v, ok, err
}

// GetMany serves what it can from memory and reads the rest with one
// backend GetMany.
func (n *NearCache) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out, miss := n.nc.GetMany(keys, nil)
	if len(miss) == 0 {
		return out, nil
	}
	ticket, keep := n.nc.Begin()
	mkeys := make([]string, len(miss))
	for j, i := range miss {
		mkeys[j] = keys[i]
	}
	vals, err := n.b.GetMany(ctx, mkeys)
	if err != nil {
		return nil, err
	}
	if len(vals) != len(mkeys) {
		return nil, fmt.Errorf("backends: near cache: GetMany of %d keys returned %d values", len(mkeys), len(vals))
	}
	for j, i := range miss {
		out[i] = vals[j]
		if keep && vals[j] != nil {
			n.nc.Put(keys[i], vals[j], 0, ticket)
		}
	}
	return out, nil
}

// Set stores through the backend and drops the local copy.
func (n *NearCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	defer n.nc.Invalidate(key)
	return n.b.Set(ctx, key, value, ttl)
}

// SetMany stores through the backend and drops the local copies.
func (n *NearCache) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	defer func() {
		for k := range items {
			n.nc.Invalidate(k)
		}
	}()
	return n.b.SetMany(ctx, items, ttl)
}

// Add adds through the backend and drops the local copy.
func (n *NearCache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	defer n.nc.Invalidate(key)
	return n.b.Add(ctx, key, value, ttl)
}

// Delete deletes through the backend and drops the local copy.
func (n *NearCache) Delete(ctx context.Context, key string) (bool, error) {
	defer n.nc.Invalidate(key)
	return n.b.Delete(ctx, key)
}

// DeleteMany deletes through the backend and drops the local copies.
func (n *NearCache) DeleteMany(ctx context.Context, keys []string) (int, error) {
	defer func() {
		for _, k := range keys {
			n.nc.Invalidate(k)
		}
	}()
	return n.b.DeleteMany(ctx, keys)
}

// Has asks the backend: a near copy may be up to Staleness old, and Has is
// how callers check the server.
func (n *NearCache) Has(ctx context.Context, key string) (bool, error) {
	return n.b.Has(ctx, key)
}

// Inc increments through the backend and drops the local copy.
func (n *NearCache) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	defer n.nc.Invalidate(key)
	return n.b.Inc(ctx, key, delta, ttl)
}

// Clear clears the backend and flushes the near cache.
func (n *NearCache) Clear(ctx context.Context, prefix string) error {
	defer n.nc.Flush()
	return n.b.Clear(ctx, prefix)
}

// Close closes the backend and empties the near cache.
func (n *NearCache) Close() error {
	n.nc.Close()
	return n.b.Close()
}

// NearCacheStats are a near cache's counters since it was made.
type NearCacheStats struct {
	Hits, Misses  uint64
	Entries       int
	Bytes         int64
	Evictions     uint64 // entries removed to make room
	Invalidations uint64 // keys dropped by an invalidation or a local write
	Flushes       uint64 // whole-cache flushes (reconnects, lost stream, Clear)
	DroppedFills  uint64 // reads not kept because an invalidation raced them
	Tracking      bool   // a server keeps the copies coherent and its stream is up
}

// NearCacheConfig is what the CACHE_OPTIONS of a near cache say; see
// [ReadNearCacheOptions].
type NearCacheConfig struct {
	On         bool          // near_cache
	MaxEntries int           // near_cache_entries
	MaxBytes   int           // near_cache_bytes
	TTL        time.Duration // near_cache_ttl
	Heartbeat  time.Duration // near_cache_heartbeat (Redis only)
}

// NearCacheOptionNames are the CACHE_OPTIONS keys of a near cache.
var NearCacheOptionNames = []string{"near_cache", "near_cache_entries", "near_cache_bytes", "near_cache_ttl", "near_cache_heartbeat"}

var nearCacheTable = []cacheopt.Option[NearCacheConfig]{
	cacheopt.Bool("near_cache", func(c *NearCacheConfig) *bool { return &c.On }),
	cacheopt.PositiveInt("near_cache_entries", func(c *NearCacheConfig) *int { return &c.MaxEntries }),
	cacheopt.PositiveInt("near_cache_bytes", func(c *NearCacheConfig) *int { return &c.MaxBytes }),
	cacheopt.Duration("near_cache_ttl", func(c *NearCacheConfig) *time.Duration { return &c.TTL }),
	cacheopt.Duration("near_cache_heartbeat", func(c *NearCacheConfig) *time.Duration { return &c.Heartbeat }),
}

// ReadNearCacheOptions reads the near-cache keys of options (a backend's
// CACHE_OPTIONS; other keys are left alone) and returns options without
// them. A bound set while near_cache is not true is an error.
func ReadNearCacheOptions(backend string, options map[string]any) (NearCacheConfig, map[string]any, error) {
	var c NearCacheConfig
	mine := map[string]any{}
	rest := maps.Clone(options)
	for _, k := range NearCacheOptionNames {
		if v, ok := options[k]; ok {
			mine[k] = v
			delete(rest, k)
		}
	}
	if len(mine) == 0 {
		return c, options, nil
	}
	if err := cacheopt.Decode(backend, mine, &c, nearCacheTable); err != nil {
		return c, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !c.On {
		for _, k := range NearCacheOptionNames[1:] {
			if _, ok := mine[k]; ok {
				return c, nil, fmt.Errorf("%w: CACHE_OPTIONS %s is set but near_cache is not true", ErrConfig, k)
			}
		}
	}
	return c, rest, nil
}

// staleNearBackends are the built-in backends Open gives a TTL-bounded
// near cache when CACHE_OPTIONS asks: those no server keeps coherent.
// (Redis backends read their own near-cache options.)
var staleNearBackends = map[string]bool{
	"MemcachedCache": true, "SASLMemcachedCache": true, "SpreadSASLMemcachedCache": true, "UWSGICache": true,
}

// takeNearOptions reads and removes the near cache's CACHE_OPTIONS of a
// memcached or uWSGI backend (near_cache, near_cache_entries,
// near_cache_bytes, near_cache_ttl: the staleness bound).
func takeNearOptions(name string, cfg *Config) (opt NearCacheOptions, on bool, err error) {
	if !staleNearBackends[name] {
		return opt, false, nil
	}
	c, rest, err := ReadNearCacheOptions(name, cfg.Options)
	if err != nil {
		return opt, false, err
	}
	if c.Heartbeat != 0 || cfg.Options["near_cache_heartbeat"] != nil {
		return opt, false, fmt.Errorf("%w: CACHE_OPTIONS near_cache_heartbeat: %s has no invalidation stream (near_cache_ttl bounds its staleness)", ErrConfig, name)
	}
	cfg.Options = rest
	return NearCacheOptions{MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes), Staleness: c.TTL}, c.On, nil
}

// Ping pings the backend if it is a [Pinger] (nil otherwise): a near copy
// says nothing about whether the server answers, and readiness probes ask
// exactly that.
func (n *NearCache) Ping(ctx context.Context) error {
	if p, ok := n.b.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// SetEntries stores through the backend in one call and drops the local
// copies, so that a near cache over a [Batcher] stays one. The backend
// must be a Batcher ([Cache.Batches] checks the whole chain).
func (n *NearCache) SetEntries(ctx context.Context, entries []Entry) error {
	b, ok := n.b.(Batcher)
	if !ok {
		return fmt.Errorf("backends: %T is not a Batcher", n.b)
	}
	defer func() {
		for _, e := range entries {
			n.nc.Invalidate(e.Key)
		}
	}()
	return b.SetEntries(ctx, entries)
}
