package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fragcache/fragcache/backends"
	goredis "github.com/redis/go-redis/v9"
)

// Redis is Flask-Caching's RedisCache, RedisSentinelCache and
// RedisClusterCache over a go-redis client: a standalone server, the current
// master of a Sentinel set, or a Redis Cluster.
//
// With a near cache ([NewWithNearCache], CACHE_OPTIONS "near_cache"), Get
// and GetMany serve what they can from process memory and read the rest
// with GET or MGET and PTTL in one round trip; see near.go. Otherwise
// every operation is one round trip: Get is GET, Has EXISTS, Delete UNLINK,
// Set one SET with PX (TTLs are rounded up to whole milliseconds; 0 sets no
// expiry) and Add one SET NX PX, so Add is atomic. Inc is one small Lua
// script (EVALSHA) running SET key 0 NX PX ttl and INCRBY, so it is atomic,
// creates a missing key with the given TTL and keeps the TTL of an existing
// one; integers are stored as decimal text, so INCRBY works on what Set
// stored.
// GetMany is MGET, DeleteMany UNLINK and SetMany one pipeline of SETs. On a
// cluster, MGET and UNLINK go once per hash slot in one pipeline, which
// go-redis sends to each node in one round trip (a cluster refuses
// multi-key commands across slots).
//
// Clear with a prefix runs SCAN MATCH prefix* COUNT 1000 and UNLINKs each
// batch it finds, on every cluster master; glob characters in the prefix
// are escaped, so "a[b]" clears keys starting with "a[b]" and nothing else.
// It never uses KEYS, which blocks the server for the whole keyspace. Keys
// written while Clear runs may survive it. Clear without a prefix empties
// the database with FLUSHDB ASYNC on every master: everything in it goes,
// not only this cache's keys.
//
// Reads and writes both go to the master: a Sentinel client follows the
// master the sentinels name, so a value written is read back even right
// after a failover (Flask reads from replicas and can miss).
//
// Errors are go-redis's, wrapped with the command; a refused password also
// wraps [backends.ErrAuth]. Clients built by [Open] have defaults for a cache
// rather than go-redis's (see redisDefaults: 500 ms dials tried once, 250 ms
// reads, writes and pool waits, one retry, the ctx deadline honoured), so
// that a server that is down or hung costs a page milliseconds and the
// fragment cache falls back to rendering; CACHE_REDIS_URL's query and
// CACHE_OPTIONS override each of them.
type Backend struct {
	client goredis.UniversalClient
	topo   topology
	owned  bool  // Close closes the client
	broken error // why every operation fails: a client New cannot use
	closed atomic.Bool
	near   *redisNear // the near cache, or nil (near.go)
	// maxValue is the largest value written (Options.MaxValueSize).
	maxValue int
}

// Options configure a [Backend] built by [New]. The zero value refuses
// values over DefaultMaxValueSize.
type Options struct {
	// MaxValueSize is the largest value, in bytes, that Set, SetMany and
	// Add store; a larger one is refused, before anything is sent, with an
	// error wrapping backends.ErrValueTooLarge. 0 means DefaultMaxValueSize.
	// It is meant to match the read bound [LimitReplies] installs on the
	// client's options, so that nothing is stored that Get would refuse;
	// backends built by Open set both from CACHE_OPTIONS max_value_size.
	MaxValueSize int
}

// New returns a backend over client: a *goredis.Client for a standalone
// server or from goredis.NewFailoverClient for Sentinel, or a
// *goredis.ClusterClient. The client stays the caller's: Close does not close
// it, and its options (pool, timeouts, retries, TLS, hooks) apply as they
// are. Clients from goredis.NewFailoverClusterClient or with replica routing
// read from replicas and so may miss a value just written.
//
// A *goredis.Ring is not supported (go-redis pipelines send its empty key to
// a random shard), nor a nil client: every operation of such a backend
// returns an error saying so.
//
// A negative opts.MaxValueSize is as unusable: every operation returns an
// error wrapping backends.ErrConfig.
func New(client goredis.UniversalClient, opts Options) *Backend {
	r := &Backend{client: client, maxValue: cmp.Or(opts.MaxValueSize, DefaultMaxValueSize)}
	if opts.MaxValueSize < 0 {
		r.broken = fmt.Errorf("%w: redis MaxValueSize %d is negative", backends.ErrConfig, opts.MaxValueSize)
		return r
	}
	switch client.(type) {
	case nil:
		r.broken = errors.New("backends: New was given a nil client")
	case *goredis.Ring:
		r.broken = errors.New("backends: New does not support *goredis.Ring; use a *goredis.Client or *goredis.ClusterClient")
	case *goredis.ClusterClient:
		r.topo = clusterSlots
	}
	return r
}

// Client returns the go-redis client the backend uses, for instrumentation
// (hooks) and for commands the Backend interface does not cover.
func (r *Backend) Client() goredis.UniversalClient { return r.client }

// Ping checks that the server answers and accepts the credentials. Open does
// not connect, so an application that wants to fail at startup rather than
// at its first cache operation calls Ping.
func (r *Backend) Ping(ctx context.Context) error {
	if err := r.ready(); err != nil {
		return err
	}
	return redisError("PING", r.client.Ping(ctx).Err())
}

func (r *Backend) ready() error {
	if r.closed.Load() {
		return backends.ErrClosed
	}
	return r.broken
}

// Get returns the value under key.
func (r *Backend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := r.ready(); err != nil {
		return nil, false, err
	}
	if r.near != nil {
		return r.near.get(ctx, r, key)
	}
	return r.getDirect(ctx, key)
}

// getDirect reads key with GET.
func (r *Backend) getDirect(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.client.Get(ctx, key).Bytes()
	switch {
	case err == goredis.Nil:
		return nil, false, nil
	case err != nil:
		return nil, false, redisError("GET", err)
	case b == nil:
		b = []byte{}
	}
	return b, true, nil
}

// GetMany reads keys with MGET (one per hash slot on a cluster,
// pipelined). A value over max_value_size fails MGET, which then gives way
// to one GET per key: such values are misses, listed in a
// *backends.MissedKeysError returned with the others' values.
func (r *Backend) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	vals, err := r.getMany(ctx, keys)
	if errors.Is(err, ErrReplyTooLarge) {
		return backends.GetEach(ctx, r, keys, func(err error) bool { return errors.Is(err, ErrReplyTooLarge) })
	}
	return vals, err
}

func (r *Backend) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	if r.near != nil {
		return r.near.getMany(ctx, r, keys)
	}
	out := make([][]byte, len(keys))
	groups := r.topo.groups(keys)
	switch len(groups) {
	case 0:
		return out, nil
	case 1:
		vals, err := r.client.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, redisError("MGET", err)
		}
		return out, fillValues(out, groups[0], vals)
	}
	cmds := make([]*goredis.SliceCmd, len(groups))
	_, err := r.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for g, idx := range groups {
			cmds[g] = p.MGet(ctx, pick(keys, idx)...)
		}
		return nil
	})
	if err != nil {
		return nil, redisError("MGET", err)
	}
	for g, idx := range groups {
		if err := fillValues(out, idx, cmds[g].Val()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillValues stores MGET's reply for the keys at idx into out.
func fillValues(out [][]byte, idx []int, vals []any) error {
	if len(vals) != len(idx) {
		return fmt.Errorf("redis MGET: %d replies for %d keys", len(vals), len(idx))
	}
	for j, v := range vals {
		switch s := v.(type) {
		case nil:
		case string:
			if s == "" {
				out[idx[j]] = []byte{} // found, and non-nil
				continue
			}
			// The string is this reply's own copy of the bytes read, so it
			// is handed out without another copy, as go-redis's
			// StringCmd.Bytes does; callers must not modify values.
			out[idx[j]] = unsafe.Slice(unsafe.StringData(s), len(s))
		default:
			return fmt.Errorf("redis MGET: unexpected reply %T", v)
		}
	}
	return nil
}

func pick(keys []string, idx []int) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = keys[i]
	}
	return out
}

// setArgs is SET key value [NX] [PX ms] for a TTL of ttl (0 = none).
func setArgs(key string, value any, nx bool, ttl time.Duration) []any {
	args := make([]any, 3, 6)
	args[0], args[1], args[2] = "set", key, value
	if nx {
		args = append(args, "nx")
	}
	if ttl > 0 {
		args = append(args, "px", ttlMillis(ttl))
	}
	return args
}

// ttlMillis rounds ttl up to whole milliseconds, so that a TTL under 1 ms
// still expires rather than being rejected (PX 0 is an error).
func ttlMillis(ttl time.Duration) int64 {
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms
}

// checkSize refuses a value over the size limit: Get could never read it
// back.
func (r *Backend) checkSize(value []byte) error {
	if len(value) > r.maxValue {
		return fmt.Errorf("%w: %d bytes, over the limit of %d (CACHE_OPTIONS max_value_size)", backends.ErrValueTooLarge, len(value), r.maxValue)
	}
	return nil
}

// Set stores value with one SET.
func (r *Backend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.ready(); err != nil {
		return err
	}
	if err := r.checkSize(value); err != nil {
		return err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	cmd := goredis.NewStatusCmd(ctx, setArgs(key, value, false, ttl)...)
	_ = r.client.Process(ctx, cmd)
	return redisError("SET", cmd.Err())
}

// SetMany sends one SET per item in one pipeline.
func (r *Backend) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return r.SetEntries(ctx, backends.EntriesOf(items, ttl))
}

// Add stores value with SET NX.
func (r *Backend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := r.ready(); err != nil {
		return false, err
	}
	if err := r.checkSize(value); err != nil {
		return false, err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	cmd := goredis.NewStatusCmd(ctx, setArgs(key, value, true, ttl)...)
	_ = r.client.Process(ctx, cmd)
	switch err := cmd.Err(); err {
	case nil:
		return true, nil
	case goredis.Nil:
		return false, nil
	default:
		return false, redisError("SET NX", err)
	}
}

// Delete removes key with UNLINK.
func (r *Backend) Delete(ctx context.Context, key string) (bool, error) {
	if err := r.ready(); err != nil {
		return false, err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	n, err := r.client.Unlink(ctx, key).Result()
	if err != nil {
		return false, redisError("UNLINK", err)
	}
	return n > 0, nil
}

// DeleteMany removes keys with UNLINK (one per hash slot on a cluster,
// pipelined) and returns how many existed.
func (r *Backend) DeleteMany(ctx context.Context, keys []string) (int, error) {
	if err := r.ready(); err != nil {
		return 0, err
	}
	if r.near != nil {
		defer r.near.forget(keys...)
	}
	groups := r.topo.groups(keys)
	switch len(groups) {
	case 0:
		return 0, nil
	case 1:
		n, err := r.client.Unlink(ctx, keys...).Result()
		if err != nil {
			return 0, redisError("UNLINK", err)
		}
		return int(n), nil
	}
	cmds := make([]*goredis.IntCmd, len(groups))
	_, _ = r.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for g, idx := range groups {
			cmds[g] = p.Unlink(ctx, pick(keys, idx)...)
		}
		return nil
	})
	deleted := 0
	var errs []error
	for g, idx := range groups {
		n, err := cmds[g].Result()
		if err != nil {
			for _, i := range idx {
				errs = append(errs, &backends.KeyError{Key: keys[i], Err: redisError("UNLINK", err)})
			}
			continue
		}
		deleted += int(n)
	}
	return deleted, errors.Join(errs...)
}

// Has checks key with EXISTS.
func (r *Backend) Has(ctx context.Context, key string) (bool, error) {
	if err := r.ready(); err != nil {
		return false, err
	}
	n, err := r.client.Exists(ctx, key).Result()
	if err != nil {
		return false, redisError("EXISTS", err)
	}
	return n > 0, nil
}

// incScript is Inc: create a missing key as 0 with the TTL (ARGV[2]
// milliseconds, 0 for none), then INCRBY, as one atomic script. It returns
// the new value as GET's text because Lua holds INCRBY's integer reply as a
// double, which cannot hold every int64. (A MULTI/EXEC would do on one
// server, but go-redis sends a cluster transaction on the empty key to a
// random slot and fails it with CROSSSLOT.)
var incScript = goredis.NewScript(`
if tonumber(ARGV[2]) > 0 then
	redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[2])
else
	redis.call('SET', KEYS[1], '0', 'NX')
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])`)

// Inc runs incScript: EVALSHA, or EVAL once after the server lost its
// script cache.
func (r *Backend) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := r.ready(); err != nil {
		return 0, err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	var ms int64
	if ttl > 0 {
		ms = ttlMillis(ttl)
	}
	text, err := incScript.Run(ctx, r.client, []string{key}, delta, ms).Text()
	if err != nil {
		if isNotInteger(err) {
			return 0, fmt.Errorf("%w: redis INCRBY: %w", backends.ErrNotInteger, err)
		}
		return 0, redisError("INCRBY", err)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis INCRBY: the script returned %q: %w", text, err)
	}
	return n, nil
}

// isNotInteger reports Redis's refusal to INCRBY a value that is not a
// decimal int64, or to overflow.
func isNotInteger(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow")
}

// Clear removes the keys under prefix, or flushes the database.
func (r *Backend) Clear(ctx context.Context, prefix string) error {
	if err := r.ready(); err != nil {
		return err
	}
	if r.near != nil {
		defer r.near.nc.Flush()
	}
	if prefix == "" {
		return redisError("FLUSHDB", r.forEachServer(ctx, func(ctx context.Context, c goredis.Cmdable) error {
			return c.FlushDBAsync(ctx).Err()
		}))
	}
	pattern := escapeGlob(prefix) + "*"
	return r.forEachServer(ctx, func(ctx context.Context, c goredis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, clearScanCount).Result()
			if err != nil {
				return redisError("SCAN", err)
			}
			// The keys one cluster node holds still fall into many
			// slots, so they are grouped as for the whole cluster.
			if err := unlinkGroups(ctx, c, r.topo, keys); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	})
}

// clearScanCount is the COUNT hint of Clear's SCAN: roughly how many
// entries of the keyspace one call walks, which bounds how long each call
// holds the server and how many keys one UNLINK names.
const clearScanCount = 1000

// unlinkGroups UNLINKs keys on one server, in one command per group.
func unlinkGroups(ctx context.Context, c goredis.Cmdable, t topology, keys []string) error {
	groups := t.groups(keys)
	switch len(groups) {
	case 0:
		return nil
	case 1:
		return redisError("UNLINK", c.Unlink(ctx, keys...).Err())
	}
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, idx := range groups {
			p.Unlink(ctx, pick(keys, idx)...)
		}
		return nil
	})
	return redisError("UNLINK", err)
}

// escapeGlob escapes the characters that Redis's glob patterns treat
// specially, so that MATCH compares prefix literally.
func escapeGlob(prefix string) string {
	if !strings.ContainsAny(prefix, `*?[]\`) {
		return prefix
	}
	var b strings.Builder
	for i := 0; i < len(prefix); i++ {
		switch prefix[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(prefix[i])
	}
	return b.String()
}

// Close closes the client if the backend made it (Open), and makes every
// later operation return ErrClosed.
func (r *Backend) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.near != nil {
		r.near.close()
	}
	if !r.owned {
		return nil
	}
	return r.client.Close()
}

// redisError wraps a go-redis error with the command that failed, with
// backends.ErrAuth when the server refused the credentials, and with
// ErrUnavailable (ErrPoolTimeout) when the server cannot serve.
func redisError(cmd string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.ErrPoolTimeout) {
		return fmt.Errorf("redis %s: %w: %w", cmd, backends.ErrPoolTimeout, err)
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
			strings.HasPrefix(msg, "ERR AUTH") || strings.HasPrefix(msg, "ERR invalid password") ||
			strings.Contains(msg, "invalid username-password pair") {
			return fmt.Errorf("redis %s: %w: %w", cmd, backends.ErrAuth, err)
		}
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN"} {
			if strings.HasPrefix(msg, p) {
				return fmt.Errorf("redis %s: %w: %w", cmd, backends.ErrUnavailable, err)
			}
		}
	}
	return fmt.Errorf("redis %s: %w", cmd, err)
}
