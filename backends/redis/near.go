package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/nearcache"
)

// This file is the Redis backend's near cache: hits served from process
// memory, kept coherent by Redis's invalidation messages (client-side
// caching, CLIENT TRACKING).
//
// go-redis v9.22+ has client-side caching of its own (Options
// ClientSideCacheConfig), and fragcache does not use it, for these reasons
// read from go-redis v9.23's source (csc_*.go, local_cache.go) and measured
// (BENCHMARKS.md):
//   - it caches whole commands: MGET a b is one entry, so a GetMany of
//     another set of keys (another page) misses even when every key is
//     cached, and fragment batching reads through GetMany;
//   - it is standalone-only (no Sentinel or Cluster option), DB 0 only,
//     and RESP3 only;
//   - an invalidation that arrives on an idle pooled connection is applied
//     by a drainer every 5 ms by default, and an entry lives until its
//     connection is closed or its invalidation arrives: it has no notion of
//     the key's TTL, so an entry whose key expired on the server is served
//     until Redis's expiry cycle gets round to deleting that key;
//   - it keeps the RESP reply and parses it again on every hit.
//
// Instead the backend runs one dedicated connection in broadcasting mode
// (CLIENT TRACKING ON REDIRECT <itself> BCAST PREFIX <key prefix>, then
// SUBSCRIBE __redis__:invalidate), which receives an invalidation for every
// write to a key under the prefix, by any client, whatever connection read
// the key and whatever database it is in. Reads and writes go through the
// client's ordinary pool, with any protocol. The tracking connection speaks
// RESP2 Pub/Sub, which go-redis reads with its PubSub type, so no RESP
// parsing is written here; through a Sentinel client it follows the master
// (a demoted master keeps sending invalidations as a replica applies the
// new master's writes).
//
// Coherence rules, all tested in near_test.go:
//   - a read takes a ticket before it sends its request; an invalidation
//     that arrives meanwhile drops the read's fill (internal/nearcache);
//   - the near cache is flushed and bypassed whenever the tracking
//     connection is not known to be alive: before it subscribes, on any
//     error, on a FLUSHDB (RESP2 sends it as a nil message), and when a
//     PING sent after heartbeat of silence gets no answer within another
//     heartbeat. An entry is therefore never served more than about two
//     heartbeats after the invalidation stream stopped;
//   - a fill asks for the key's remaining TTL in the same round trip (PTTL
//     pipelined with GET or MGET), so an entry never outlives its key;
//   - this process's own writes (Set, Add, Delete, Inc…) drop their keys at
//     once, and Clear flushes everything.

// DefaultNearCacheHeartbeat is NearCacheOptions.Heartbeat's default.
const DefaultNearCacheHeartbeat = 500 * time.Millisecond

// NearCacheOptions configures a Redis backend's near cache: an in-process
// copy of the entries read, invalidated by Redis when any client changes a
// key (see [NewWithNearCache]).
type NearCacheOptions struct {
	// MaxEntries bounds the entries (0: 10000).
	MaxEntries int
	// MaxBytes bounds what the entries cost: keys, values and 96 bytes each
	// (0: 64 MiB). The near cache is split into up to 32 shards, and a
	// value larger than a shard's share is read from Redis every time.
	MaxBytes int64
	// TTL caps how long an entry is served (0: no cap beyond the key's own
	// TTL in Redis).
	TTL time.Duration
	// Heartbeat is how long the tracking connection may be silent before
	// it is pinged; no answer within another Heartbeat flushes the near
	// cache (0: DefaultNearCacheHeartbeat).
	Heartbeat time.Duration
	// Prefixes are the key prefixes (as the backend sees keys, with the
	// cache's key prefix) whose keys are kept near; other keys are always
	// read from Redis. Empty: every key, and every write on the server
	// sends this process an invalidation. Prefixes must not overlap.
	Prefixes []string
	// Logger receives the tracking connection's trouble (nil: slog.Default()).
	Logger *slog.Logger
}

// ErrNearCacheUnsupported is returned by NewWithNearCache for a client
// it cannot keep a near cache for.
var ErrNearCacheUnsupported = errors.New("redis: the near cache needs a *goredis.Client (standalone or Sentinel)")

// NewWithNearCache is New (with the default Options) plus a near cache: reads are served
// from process memory when they can be, and a dedicated tracking
// connection (a second client built from client's options: same address or
// Sentinel set, credentials, TLS and dialer) keeps the copies coherent.
// client must be a *goredis.Client (standalone, or from
// goredis.NewFailoverClient); a Redis Cluster client gives
// ErrNearCacheUnsupported. Close stops the tracking connection.
func NewWithNearCache(client goredis.UniversalClient, opt NearCacheOptions) (*Backend, error) {
	r := New(client, Options{})
	if r.broken != nil {
		return nil, r.broken
	}
	c, ok := client.(*goredis.Client)
	if !ok {
		return nil, fmt.Errorf("%w, not %T", ErrNearCacheUnsupported, client)
	}
	r.near = startRedisNear(c, opt)
	return r, nil
}

// NearCacheStats returns the near cache's counters; ok is false when the
// backend has none.
func (r *Backend) NearCacheStats() (st backends.NearCacheStats, ok bool) {
	if r.near == nil {
		return st, false
	}
	s := r.near.nc.Stats()
	return backends.NearCacheStats{
		Hits: s.Hits, Misses: s.Misses, Entries: s.Entries, Bytes: s.Bytes,
		Evictions: s.Evictions, Invalidations: s.Invalidations, Flushes: s.Flushes,
		DroppedFills: s.DroppedFills, Tracking: r.near.nc.Enabled(),
	}, true
}

// redisNear is a Redis backend's near cache and its tracking connection.
type redisNear struct {
	nc        *nearcache.Cache
	prefixes  []string
	heartbeat time.Duration
	log       *slog.Logger
	tracker   *goredis.Client

	mu     sync.Mutex
	pubsub *goredis.PubSub // the current subscription, closed by stop
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// nearWarnInterval spaces the warnings about a tracking connection that
// keeps failing.
const nearWarnInterval = 30 * time.Second

// trackingChannel is where Redis sends invalidations to a RESP2 client.
const trackingChannel = "__redis__:invalidate"

func startRedisNear(c *goredis.Client, opt NearCacheOptions) *redisNear {
	n := &redisNear{
		nc:        nearcache.New(nearcache.Options{MaxEntries: opt.MaxEntries, MaxBytes: opt.MaxBytes, TTL: opt.TTL}),
		prefixes:  append([]string(nil), opt.Prefixes...),
		heartbeat: opt.Heartbeat,
		log:       opt.Logger,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if n.heartbeat <= 0 {
		n.heartbeat = DefaultNearCacheHeartbeat
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.nc.Disable() // until the tracking connection has subscribed
	n.tracker = goredis.NewClient(n.trackerOptions(c.Options()))
	go n.run()
	return n
}

// trackerOptions derives the tracking client's options from the data
// client's: one RESP2 connection, whose OnConnect turns tracking on.
func (n *redisNear) trackerOptions(base *goredis.Options) *goredis.Options {
	clone := *base
	o := &clone
	o.MaintNotificationsConfig = nil // RESP2: none arrive
	o.Protocol = 2
	o.PoolSize = 1
	o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 0, 0, 0
	o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
	o.ClientName = strings.TrimSpace(o.ClientName + " fragcache-tracking")
	userOnConnect := o.OnConnect
	o.OnConnect = func(ctx context.Context, cn *goredis.Conn) error {
		// A new connection: whatever was cached may have missed
		// invalidations; nothing is kept until it has subscribed.
		n.nc.Disable()
		if userOnConnect != nil {
			if err := userOnConnect(ctx, cn); err != nil {
				return err
			}
		}
		id, err := cn.ClientID(ctx).Result()
		if err != nil {
			return fmt.Errorf("redis near cache: CLIENT ID: %w", err)
		}
		args := []any{"client", "tracking", "on", "redirect", id, "bcast"}
		for _, p := range n.prefixes {
			args = append(args, "prefix", p)
		}
		if err := cn.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("redis near cache: CLIENT TRACKING: %w", err)
		}
		return nil
	}
	return o
}

// run keeps a subscription to the invalidation channel until stop,
// reconnecting after trouble with a backoff of up to 1 s.
func (n *redisNear) run() {
	defer close(n.done)
	backoff := 10 * time.Millisecond
	var lastWarn time.Time
	for {
		ps := n.tracker.Subscribe(context.Background(), trackingChannel)
		n.mu.Lock()
		select {
		case <-n.stop:
			n.mu.Unlock()
			_ = ps.Close()
			return
		default:
		}
		n.pubsub = ps
		n.mu.Unlock()
		up, err := n.listen(ps)
		n.nc.Disable()
		_ = ps.Close()
		if up {
			backoff = 10 * time.Millisecond
		}
		select {
		case <-n.stop:
			return
		default:
		}
		if strings.HasSuffix(err.Error(), "payload: <nil>") {
			// RESP2's form of FLUSHDB/FLUSHALL's invalidation, which go-redis
			// cannot decode: the flush and reconnection are what it asks for.
			n.log.Info("fragcache: redis near cache: the server flushed its keys; near cache flushed")
		} else if time.Since(lastWarn) >= nearWarnInterval {
			// A server that cannot track (Redis before 6, an ACL without
			// CLIENT TRACKING or the channel) fails every attempt: one
			// line per interval is enough.
			lastWarn = time.Now()
			n.log.Warn("fragcache: redis near cache: invalidation stream lost or refused; reads go to Redis until it is back", "err", err)
		}
		select {
		case <-n.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// listen reads the subscription until it fails; up reports whether it
// got as far as subscribing.
func (n *redisNear) listen(ps *goredis.PubSub) (up bool, err error) {
	ctx := context.Background()
	pinged := false
	for {
		msg, err := receive(ctx, ps, n.heartbeat)
		if err != nil {
			if isTimeout(err) && !pinged && up {
				// Silence: ask. No answer within another heartbeat ends
				// the stream.
				if err := ps.Ping(ctx); err != nil {
					return up, err
				}
				pinged = true
				continue
			}
			// Includes the nil message of a FLUSHDB or FLUSHALL, which
			// go-redis reports as an unsupported payload: the flush that
			// follows is what it asks for.
			return up, err
		}
		pinged = false
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Channel != trackingChannel || m.Kind != "subscribe" {
				return up, fmt.Errorf("redis near cache: unexpected %s %s", m.Kind, m.Channel)
			}
			// Tracking was turned on (OnConnect) before this subscription:
			// from here every write to a tracked key is reported.
			up = true
			n.nc.Enable()
		case *goredis.Message:
			if m.Channel != trackingChannel {
				continue
			}
			if m.PayloadSlice == nil {
				// A single key arrives as Payload in some servers' replies.
				n.nc.Invalidate(m.Payload)
				continue
			}
			for _, k := range m.PayloadSlice {
				n.nc.Invalidate(k)
			}
		case *goredis.Pong:
		}
	}
}

// receive is ps.ReceiveTimeout, with a panic turned into an error.
// go-redis v9.23's PubSub.newMessage indexes and type-asserts the message
// without checking its shape, so a malformed message from a hostile or
// broken server (["message"] alone) panics; it does so after releasing the
// connection, so the subscription can be closed and replaced.
func receive(ctx context.Context, ps *goredis.PubSub, timeout time.Duration) (msg any, err error) {
	defer func() {
		if p := recover(); p != nil {
			msg, err = nil, fmt.Errorf("redis near cache: malformed message on the tracking connection (go-redis: %v)", p)
		}
	}()
	return ps.ReceiveTimeout(ctx, timeout)
}

// isTimeout reports a read that ended by its deadline.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// close stops the tracking goroutine and releases everything.
func (n *redisNear) close() {
	n.once.Do(func() {
		n.mu.Lock()
		close(n.stop)
		if n.pubsub != nil {
			_ = n.pubsub.Close() // unblocks ReceiveTimeout
		}
		n.mu.Unlock()
		<-n.done
		_ = n.tracker.Close()
		n.nc.Close()
	})
}

// covers reports whether key may be kept near.
func (n *redisNear) covers(key string) bool {
	if len(n.prefixes) == 0 {
		return true
	}
	for _, p := range n.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// get serves key from the near cache, or reads it with GET and PTTL in one
// round trip and keeps it.
func (n *redisNear) get(ctx context.Context, r *Backend, key string) ([]byte, bool, error) {
	if !n.covers(key) {
		return r.getDirect(ctx, key)
	}
	if v, ok := n.nc.Get(key); ok {
		return v, true, nil
	}
	ticket, ok := n.nc.Begin()
	if !ok {
		return r.getDirect(ctx, key)
	}
	var get *goredis.StringCmd
	var pttl *goredis.DurationCmd
	_, _ = r.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, key)
		pttl = p.PTTL(ctx, key)
		return nil
	})
	b, err := get.Bytes()
	switch {
	case err == goredis.Nil:
		return nil, false, nil
	case err != nil:
		return nil, false, redisError("GET", err)
	case b == nil:
		b = []byte{}
	}
	n.keep(key, b, pttl, ticket)
	return b, true, nil
}

// keep puts a value just read, with the key's remaining TTL.
func (n *redisNear) keep(key string, v []byte, pttl *goredis.DurationCmd, ticket uint64) {
	ttl, err := pttl.Result()
	switch {
	case err != nil, ttl == -2, ttl == 0: // unknown, gone, or expiring now
		return
	case ttl == -1: // no expiry
		ttl = 0
	case ttl < 0:
		return
	}
	n.nc.Put(key, v, ttl, ticket)
}

// getMany serves what it can from the near cache and reads the rest with
// one MGET and their PTTLs in one round trip.
func (n *redisNear) getMany(ctx context.Context, r *Backend, keys []string) ([][]byte, error) {
	out, miss := n.nc.GetMany(keys, n.covers)
	if len(miss) == 0 {
		return out, nil
	}
	ticket, tracking := n.nc.Begin()
	mkeys := pick(keys, miss)
	var mget *goredis.SliceCmd
	pttls := make([]*goredis.DurationCmd, len(mkeys))
	_, _ = r.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		mget = p.MGet(ctx, mkeys...)
		if tracking {
			for j, k := range mkeys {
				pttls[j] = p.PTTL(ctx, k)
			}
		}
		return nil
	})
	vals, err := mget.Result()
	if err != nil {
		return nil, redisError("MGET", err)
	}
	if err := fillValues(out, miss, vals); err != nil {
		return nil, err
	}
	if tracking {
		for j, i := range miss {
			if out[i] != nil && n.covers(keys[i]) {
				n.keep(keys[i], out[i], pttls[j], ticket)
			}
		}
	}
	return out, nil
}

// forget drops keys this process is writing: whatever the write's outcome,
// the near copy may be wrong.
func (n *redisNear) forget(keys ...string) {
	for _, k := range keys {
		n.nc.Invalidate(k)
	}
}

// takeNearOptions reads the near cache's CACHE_OPTIONS (near_cache,
// near_cache_entries, near_cache_bytes, near_cache_ttl,
// near_cache_heartbeat) and removes them from cfg, before the client's
// options are read. Keys are kept near only under the cache's key prefix
// (CACHE_KEY_PREFIX), which is also the only prefix tracked.
func takeNearOptions(name string, cfg *backends.Config) (opt NearCacheOptions, on bool, err error) {
	c, rest, err := backends.ReadNearCacheOptions(name, cfg.Options)
	if err != nil {
		return opt, false, err
	}
	cfg.Options = rest
	opt = NearCacheOptions{MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes), TTL: c.TTL, Heartbeat: c.Heartbeat, Logger: cfg.Logger}
	if cfg.KeyPrefix != "" {
		opt.Prefixes = []string{cfg.KeyPrefix}
	}
	return opt, c.On, nil
}

// openNear returns r with the near cache opt (if on), over client, which
// Open has just built.
func openNear(r *Backend, client *goredis.Client, opt NearCacheOptions, on bool) *Backend {
	if on {
		r.near = startRedisNear(client, opt)
	}
	return r
}
