package backends

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// ErrRedisAuth is wrapped by errors of a Redis backend whose server refused
// its credentials (WRONGPASS, NOAUTH and the like): a wrong
// CACHE_REDIS_PASSWORD, CACHE_OPTIONS "username", or password in
// CACHE_REDIS_URL.
var ErrRedisAuth = errors.New("backends: redis authentication failed")

// Redis is Flask-Caching's RedisCache, RedisSentinelCache and
// RedisClusterCache over a go-redis client: a standalone server, the current
// master of a Sentinel set, or a Redis Cluster.
//
// With a near cache ([NewRedisWithNearCache], CACHE_OPTIONS "near_cache"),
// Get and GetMany serve what they can from process memory and read the
// rest with GET or MGET and PTTL in one round trip; see redis_near.go.
// Otherwise every operation is one round trip: Get is GET, Has EXISTS, Delete UNLINK,
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
// wraps [ErrRedisAuth]. Clients built by [Open] have defaults for a cache
// rather than go-redis's (see redisDefaults: 500 ms dials tried once, 250 ms
// reads, writes and pool waits, one retry, the ctx deadline honoured), so
// that a server that is down or hung costs a page milliseconds and the
// fragment cache falls back to rendering; CACHE_REDIS_URL's query and
// CACHE_OPTIONS override each of them.
type Redis struct {
	client redis.UniversalClient
	topo   topology
	owned  bool  // Close closes the client
	broken error // why every operation fails: a client NewRedis cannot use
	closed atomic.Bool
	near   *redisNear // the near cache, or nil (redis_near.go)
}

// NewRedis returns a backend over client: a *redis.Client for a standalone
// server or from redis.NewFailoverClient for Sentinel, or a
// *redis.ClusterClient. The client stays the caller's: Close does not close
// it, and its options (pool, timeouts, retries, TLS, hooks) apply as they
// are. Clients from redis.NewFailoverClusterClient or with replica routing
// read from replicas and so may miss a value just written.
//
// A *redis.Ring is not supported (go-redis pipelines send its empty key to
// a random shard), nor a nil client: every operation of such a backend
// returns an error saying so.
func NewRedis(client redis.UniversalClient) *Redis {
	r := &Redis{client: client}
	switch client.(type) {
	case nil:
		r.broken = errors.New("backends: NewRedis was given a nil client")
	case *redis.Ring:
		r.broken = errors.New("backends: NewRedis does not support *redis.Ring; use a *redis.Client or *redis.ClusterClient")
	case *redis.ClusterClient:
		r.topo = clusterSlots
	}
	return r
}

// Client returns the go-redis client the backend uses, for instrumentation
// (hooks) and for commands the Backend interface does not cover.
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Ping checks that the server answers and accepts the credentials. Open does
// not connect, so an application that wants to fail at startup rather than
// at its first cache operation calls Ping.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.ready(); err != nil {
		return err
	}
	return redisError("PING", r.client.Ping(ctx).Err())
}

func (r *Redis) ready() error {
	if r.closed.Load() {
		return ErrClosed
	}
	return r.broken
}

// Get returns the value under key.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := r.ready(); err != nil {
		return nil, false, err
	}
	if r.near != nil {
		return r.near.get(ctx, r, key)
	}
	return r.getDirect(ctx, key)
}

// getDirect reads key with GET.
func (r *Redis) getDirect(ctx context.Context, key string) ([]byte, bool, error) {
	b, err := r.client.Get(ctx, key).Bytes()
	switch {
	case err == redis.Nil:
		return nil, false, nil
	case err != nil:
		return nil, false, redisError("GET", err)
	case b == nil:
		b = []byte{}
	}
	return b, true, nil
}

// GetMany reads keys with MGET (one per hash slot on a cluster, pipelined).
func (r *Redis) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
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
	cmds := make([]*redis.SliceCmd, len(groups))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
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

// Set stores value with one SET.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := r.ready(); err != nil {
		return err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	cmd := redis.NewStatusCmd(ctx, setArgs(key, value, false, ttl)...)
	_ = r.client.Process(ctx, cmd)
	return redisError("SET", cmd.Err())
}

// SetMany sends one SET per item in one pipeline.
func (r *Redis) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if err := r.ready(); err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	if r.near != nil {
		defer func() {
			for k := range items {
				r.near.forget(k)
			}
		}()
	}
	keys := make([]string, 0, len(items))
	cmds := make([]*redis.StatusCmd, 0, len(items))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, v := range items {
			cmd := redis.NewStatusCmd(ctx, setArgs(k, v, false, ttl)...)
			_ = p.Process(ctx, cmd)
			keys = append(keys, k)
			cmds = append(cmds, cmd)
		}
		return nil
	})
	var errs []error
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs = append(errs, &KeyError{Key: keys[i], Err: redisError("SET", err)})
		}
	}
	return errors.Join(errs...)
}

// Add stores value with SET NX.
func (r *Redis) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := r.ready(); err != nil {
		return false, err
	}
	if r.near != nil {
		defer r.near.forget(key)
	}
	cmd := redis.NewStatusCmd(ctx, setArgs(key, value, true, ttl)...)
	_ = r.client.Process(ctx, cmd)
	switch err := cmd.Err(); err {
	case nil:
		return true, nil
	case redis.Nil:
		return false, nil
	default:
		return false, redisError("SET NX", err)
	}
}

// Delete removes key with UNLINK.
func (r *Redis) Delete(ctx context.Context, key string) (bool, error) {
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
func (r *Redis) DeleteMany(ctx context.Context, keys []string) (int, error) {
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
	cmds := make([]*redis.IntCmd, len(groups))
	_, _ = r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
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
				errs = append(errs, &KeyError{Key: keys[i], Err: redisError("UNLINK", err)})
			}
			continue
		}
		deleted += int(n)
	}
	return deleted, errors.Join(errs...)
}

// Has checks key with EXISTS.
func (r *Redis) Has(ctx context.Context, key string) (bool, error) {
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
var incScript = redis.NewScript(`
if tonumber(ARGV[2]) > 0 then
	redis.call('SET', KEYS[1], '0', 'NX', 'PX', ARGV[2])
else
	redis.call('SET', KEYS[1], '0', 'NX')
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return redis.call('GET', KEYS[1])`)

// Inc runs incScript: EVALSHA, or EVAL once after the server lost its
// script cache.
func (r *Redis) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
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
			return 0, fmt.Errorf("%w: redis INCRBY: %w", ErrNotInteger, err)
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
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.Contains(msg, "not an integer") || strings.Contains(msg, "overflow")
}

// Clear removes the keys under prefix, or flushes the database.
func (r *Redis) Clear(ctx context.Context, prefix string) error {
	if err := r.ready(); err != nil {
		return err
	}
	if r.near != nil {
		defer r.near.nc.Flush()
	}
	if prefix == "" {
		return redisError("FLUSHDB", r.forEachServer(ctx, func(ctx context.Context, c redis.Cmdable) error {
			return c.FlushDBAsync(ctx).Err()
		}))
	}
	pattern := escapeGlob(prefix) + "*"
	return r.forEachServer(ctx, func(ctx context.Context, c redis.Cmdable) error {
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
func unlinkGroups(ctx context.Context, c redis.Cmdable, t topology, keys []string) error {
	groups := t.groups(keys)
	switch len(groups) {
	case 0:
		return nil
	case 1:
		return redisError("UNLINK", c.Unlink(ctx, keys...).Err())
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
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
func (r *Redis) Close() error {
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

// redisError wraps a go-redis error with the command that failed, and with
// ErrRedisAuth when the server refused the credentials.
func redisError(cmd string, err error) error {
	if err == nil {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
			strings.HasPrefix(msg, "ERR AUTH") || strings.HasPrefix(msg, "ERR invalid password") ||
			strings.Contains(msg, "invalid username-password pair") {
			return fmt.Errorf("redis %s: %w: %w", cmd, ErrRedisAuth, err)
		}
	}
	return fmt.Errorf("redis %s: %w", cmd, err)
}

func init() {
	Register("RedisCache", openRedis)
	Register("RedisSentinelCache", openRedisSentinel)
	Register("RedisClusterCache", openRedisCluster)
}

// openRedis is RedisCache's factory: CACHE_REDIS_URL, or CACHE_REDIS_HOST
// and CACHE_REDIS_PORT, with CACHE_REDIS_PASSWORD and CACHE_REDIS_DB.
func openRedis(cfg Config) (Backend, error) {
	const name = "RedisCache"
	if cfg.RedisDB < 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB %d is negative", ErrConfig, cfg.RedisDB)
	}
	var opt *redis.Options
	if cfg.RedisURL != "" {
		var err error
		if opt, err = parseRedisURL(cfg.RedisURL, cfg.RedisDB); err != nil {
			return nil, err
		}
		if opt.Password == "" {
			opt.Password = cfg.RedisPassword
		}
	} else {
		if cfg.RedisHost == "" {
			return nil, MissingKeyError(name, "CACHE_REDIS_HOST (or CACHE_REDIS_URL)")
		}
		if cfg.RedisPort < 1 || cfg.RedisPort > 65535 {
			return nil, fmt.Errorf("%w: CACHE_REDIS_PORT %d is not a port number from 1 to 65535", ErrConfig, cfg.RedisPort)
		}
		opt = &redis.Options{
			Addr:     net.JoinHostPort(cfg.RedisHost, strconv.Itoa(cfg.RedisPort)),
			Password: cfg.RedisPassword,
			DB:       cfg.RedisDB,
		}
	}
	applyRedisDefaults(opt, urlQuery(cfg.RedisURL))
	if err := applyRedisOptions(name, cfg.Options, opt, nil); err != nil {
		return nil, err
	}
	if err := applyRedisLogger(cfg); err != nil {
		return nil, err
	}
	near, on, err := nearCacheFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(opt)
	return openNear(&Redis{client: client, topo: oneServer, owned: true}, client, near, on), nil
}

// parseRedisURL reads CACHE_REDIS_URL as redis.ParseURL does. As in Flask,
// CACHE_REDIS_DB applies when the URL names no database.
func parseRedisURL(raw string, db int) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%w: CACHE_REDIS_URL is not a URL: %w", ErrConfig, err)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: CACHE_REDIS_URL (redis://, rediss:// or unix://): %w", ErrConfig, err)
	}
	namesDB := u.Query().Has("db") || (u.Scheme != "unix" && strings.Trim(u.Path, "/") != "")
	if !namesDB {
		opt.DB = db
	}
	return opt, nil
}

// openRedisSentinel is RedisSentinelCache's factory.
func openRedisSentinel(cfg Config) (Backend, error) {
	const name = "RedisSentinelCache"
	if len(cfg.RedisSentinels) == 0 {
		return nil, MissingKeyError(name, "CACHE_REDIS_SENTINELS")
	}
	for _, a := range cfg.RedisSentinels {
		if err := redisAddr("CACHE_REDIS_SENTINELS", a); err != nil {
			return nil, err
		}
	}
	if cfg.RedisSentinelMaster == "" {
		return nil, MissingKeyError(name, "CACHE_REDIS_SENTINEL_MASTER")
	}
	if cfg.RedisDB < 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB %d is negative", ErrConfig, cfg.RedisDB)
	}
	opt := &redis.FailoverOptions{
		MasterName:       cfg.RedisSentinelMaster,
		SentinelAddrs:    cfg.RedisSentinels,
		SentinelPassword: cfg.RedisSentinelPassword,
		Password:         cfg.RedisPassword,
		DB:               cfg.RedisDB,
	}
	applyRedisDefaults(opt, nil)
	if err := applyRedisOptions(name, cfg.Options, opt, sentinelOptionFields); err != nil {
		return nil, err
	}
	if err := applyRedisLogger(cfg); err != nil {
		return nil, err
	}
	near, on, err := nearCacheFromConfig(cfg)
	if err != nil {
		return nil, err
	}
	client := redis.NewFailoverClient(opt)
	return openNear(&Redis{client: client, topo: oneServer, owned: true}, client, near, on), nil
}

// openRedisCluster is RedisClusterCache's factory.
func openRedisCluster(cfg Config) (Backend, error) {
	const name = "RedisClusterCache"
	addrs, err := parseRedisCluster(cfg.RedisCluster)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, MissingKeyError(name, "CACHE_REDIS_CLUSTER")
	}
	if cfg.RedisDB != 0 {
		return nil, fmt.Errorf("%w: CACHE_REDIS_DB is %d, but a Redis Cluster has only database 0", ErrConfig, cfg.RedisDB)
	}
	opt := &redis.ClusterOptions{Addrs: addrs, Password: cfg.RedisPassword}
	applyRedisDefaults(opt, nil)
	if err := applyRedisOptions(name, cfg.Options, opt, clusterOptionFields); err != nil {
		return nil, err
	}
	if err := applyRedisLogger(cfg); err != nil {
		return nil, err
	}
	if _, on, err := nearCacheFromConfig(cfg); err != nil || on {
		if err == nil {
			err = fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, nearCacheOption, ErrNearCacheUnsupported)
		}
		return nil, err
	}
	return &Redis{client: redis.NewClusterClient(opt), topo: clusterSlots, owned: true}, nil
}

// parseRedisCluster splits CACHE_REDIS_CLUSTER, "host1:port1,host2:port2",
// as Flask does: at commas, each part trimmed.
func parseRedisCluster(s string) ([]string, error) {
	var addrs []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			if strings.TrimSpace(s) == "" {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: CACHE_REDIS_CLUSTER %q has an empty item (want e.g. \"host1:port1,host2:port2\")", ErrConfig, s)
		}
		if err := redisAddr("CACHE_REDIS_CLUSTER", part); err != nil {
			return nil, fmt.Errorf("%w (want e.g. \"host1:port1,host2:port2\")", err)
		}
		addrs = append(addrs, part)
	}
	return addrs, nil
}

// redisAddr checks one "host:port" of the CACHE_* key named key.
func redisAddr(key, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s: %q is not host:port", ErrConfig, key, addr)
	}
	if host == "" {
		return fmt.Errorf("%w: %s: %q has no host", ErrConfig, key, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%w: %s: %q: port %q is not a number from 1 to 65535", ErrConfig, key, addr, port)
	}
	return nil
}

// redisDefaults are the go-redis options that Open's Redis backends set
// where go-redis's defaults suit a database more than a cache, unless
// CACHE_REDIS_URL's query or CACHE_OPTIONS set them. A cache that cannot
// answer quickly is better skipped than waited for: every fragment of a
// page would wait it out (go-redis's defaults cost a page seconds per
// fragment while the server hangs: 3 s reads, 5 s dials, 3 retries). So:
// short timeouts, one retry (enough to replace a pooled connection that
// died with a restarted server), and the caller's ctx deadline honoured on
// every socket read and write.
var redisDefaults = []struct {
	option, field string
	value         any
}{
	{"dial_timeout", "DialTimeout", 500 * time.Millisecond}, // go-redis: 5 s
	{"read_timeout", "ReadTimeout", 250 * time.Millisecond}, // go-redis: 3 s
	{"write_timeout", "WriteTimeout", 250 * time.Millisecond},
	{"pool_timeout", "PoolTimeout", 250 * time.Millisecond}, // go-redis: read_timeout + 1 s
	{"max_retries", "MaxRetries", 1},                        // go-redis: 3
	{"dialer_retries", "DialerRetries", 1},                  // go-redis: 5
	{"context_timeout_enabled", "ContextTimeoutEnabled", true},
}

// applyRedisDefaults sets redisDefaults in opt (a *redis.Options,
// *redis.FailoverOptions or *redis.ClusterOptions), except those query (a
// CACHE_REDIS_URL's) sets; CACHE_OPTIONS are applied after, over them.
func applyRedisDefaults(opt any, query url.Values) {
	o := reflect.ValueOf(opt).Elem()
	for _, d := range redisDefaults {
		if query.Has(d.option) {
			continue
		}
		o.FieldByName(d.field).Set(reflect.ValueOf(d.value))
	}
}

// urlQuery returns the query of CACHE_REDIS_URL, or nil; the URL itself is
// checked by parseRedisURL.
func urlQuery(raw string) url.Values {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u.Query()
}

// redisOptionFields maps the CACHE_OPTIONS keys every Redis backend accepts
// to the go-redis option fields they set. The names are the ones
// redis.ParseURL reads from a URL's query, plus username, which a URL gives
// in its user info.
var redisOptionFields = []struct{ option, field string }{
	{"username", "Username"},
	{"client_name", "ClientName"},
	{"protocol", "Protocol"},
	{"max_retries", "MaxRetries"},
	{"min_retry_backoff", "MinRetryBackoff"},
	{"max_retry_backoff", "MaxRetryBackoff"},
	{"dial_timeout", "DialTimeout"},
	{"dialer_retries", "DialerRetries"},
	{"read_timeout", "ReadTimeout"},
	{"write_timeout", "WriteTimeout"},
	{"context_timeout_enabled", "ContextTimeoutEnabled"},
	{"pool_fifo", "PoolFIFO"},
	{"pool_size", "PoolSize"},
	{"pool_timeout", "PoolTimeout"},
	{"min_idle_conns", "MinIdleConns"},
	{"max_idle_conns", "MaxIdleConns"},
	{"max_active_conns", "MaxActiveConns"},
	{"conn_max_idle_time", "ConnMaxIdleTime"},
	{"conn_max_lifetime", "ConnMaxLifetime"},
}

var (
	sentinelOptionFields = []struct{ option, field string }{
		{"sentinel_username", "SentinelUsername"},
		{"sentinel_password", "SentinelPassword"},
	}
	clusterOptionFields = []struct{ option, field string }{
		{"max_redirects", "MaxRedirects"},
	}
)

// redisTLSOptions are the CACHE_OPTIONS keys that configure TLS; any of them
// turns TLS on, as a rediss:// URL does.
var redisTLSOptions = []string{"tls", "tls_server_name", "tls_skip_verify", "tls_ca_file", "tls_cert_file", "tls_key_file"}

var durationType = reflect.TypeFor[time.Duration]()

// applyRedisOptions sets the go-redis options in opt (a *redis.Options,
// *redis.FailoverOptions or *redis.ClusterOptions) from CACHE_OPTIONS,
// after rejecting keys the backend does not know.
func applyRedisOptions(backend string, options map[string]any, opt any, extra []struct{ option, field string }) error {
	fields := append(slices.Clone(redisOptionFields), extra...)
	known := append(slices.Clone(redisTLSOptions), redisLimitOption, redisLoggerOption)
	known = append(known, nearCacheOptions...)
	for _, f := range fields {
		known = append(known, f.option)
	}
	if err := CheckOptions(backend, options, known...); err != nil {
		return err
	}
	o := reflect.ValueOf(opt).Elem()
	for _, f := range fields {
		v, ok := options[f.option]
		if !ok {
			continue
		}
		if err := setRedisOption(o.FieldByName(f.field), f.option, v); err != nil {
			return fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, f.option, err)
		}
	}
	tlsField := o.FieldByName("TLSConfig")
	base, _ := tlsField.Interface().(*tls.Config)
	conf, err := redisTLSConfig(options, base)
	if err != nil {
		return err
	}
	if conf != nil {
		tlsField.Set(reflect.ValueOf(conf))
	}
	return limitRedisFromOptions(options, opt)
}

// setRedisOption stores v, the value of CACHE_OPTIONS key name, into the
// option field f.
func setRedisOption(f reflect.Value, name string, v any) error {
	switch {
	case f.Type() == durationType:
		d, err := durationOption(v)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		s, ok := v.(string)
		if !ok {
			return typeError(v, "a string")
		}
		f.SetString(s)
	case f.Kind() == reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return typeError(v, "a bool")
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int:
		n, ok := asInt(v)
		if !ok {
			return typeError(v, "an integer")
		}
		low := 0
		if name == "max_retries" || name == "max_redirects" {
			low = -1 // go-redis: -1 disables retries, redirects
		}
		switch {
		case name == "protocol" && n != 2 && n != 3:
			return fmt.Errorf("%d is not a RESP version (2 or 3)", n)
		case n < low:
			return fmt.Errorf("%d is below %d", n, low)
		}
		f.SetInt(int64(n))
	default: // a table entry naming a field of a type not handled above
		return fmt.Errorf("field of type %s cannot be set", f.Type())
	}
	return nil
}

// redisTLSConfig builds the TLS configuration CACHE_OPTIONS ask for on top
// of base (from a rediss:// URL, or nil), or returns nil for no TLS.
func redisTLSConfig(options map[string]any, base *tls.Config) (*tls.Config, error) {
	var str = func(name string) (string, error) {
		v, ok := options[name]
		if !ok {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, name, typeError(v, "a string"))
		}
		return s, nil
	}
	var flag = func(name string) (bool, error) {
		v, ok := options[name]
		if !ok {
			return false, nil
		}
		b, ok := v.(bool)
		if !ok {
			return false, fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, name, typeError(v, "a bool"))
		}
		return b, nil
	}
	on, err := flag("tls")
	if err != nil {
		return nil, err
	}
	skip, err := flag("tls_skip_verify")
	if err != nil {
		return nil, err
	}
	var serverName, caFile, certFile, keyFile string
	for _, p := range []struct {
		name string
		dst  *string
	}{{"tls_server_name", &serverName}, {"tls_ca_file", &caFile}, {"tls_cert_file", &certFile}, {"tls_key_file", &keyFile}} {
		if *p.dst, err = str(p.name); err != nil {
			return nil, err
		}
	}
	if !on && !skip && serverName == "" && caFile == "" && certFile == "" && keyFile == "" {
		return base, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		conf = base.Clone()
	}
	if serverName != "" {
		conf.ServerName = serverName
	}
	conf.InsecureSkipVerify = conf.InsecureSkipVerify || skip
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_ca_file: %w", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_ca_file: no PEM certificate in %s", ErrConfig, caFile)
		}
		conf.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_cert_file and tls_key_file go together (client certificate and its key)", ErrConfig)
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS tls_cert_file, tls_key_file: %w", ErrConfig, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
