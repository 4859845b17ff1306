// Package redis is Flask-Caching's RedisCache, RedisSentinelCache and
// RedisClusterCache for fragcache: a [backends.Backend] over a go-redis
// client (imported here as goredis) talking to a standalone server, the
// master of a Sentinel set, or a Redis Cluster (see [Backend]).
//
// Importing it registers those three CACHE_TYPE names (and Flask's old
// "redis", "redissentinel", "rediscluster") with [backends.Open], which reads
// the CACHE_REDIS_* settings with Flask's defaults and CACHE_OPTIONS
// (snake_case: "dial_timeout", "read_timeout", "pool_size",
// "max_value_size", "username", "tls"…, unknown keys rejected). Clients
// built by Open have defaults for a cache rather than go-redis's: 500 ms
// dials tried once, 250 ms reads, writes and pool waits, one retry, the
// ctx deadline honoured. [New] wraps a client the application built:
//
//	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
//	cache := backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{KeyPrefix: "myapp_"})
//
// max_value_size (64 MiB by default) means what it means for every
// fragcache backend: the largest value stored, and the bound on what a
// read allocates ([LimitReplies] installs the read bound on a client's
// options).
//
// With CACHE_OPTIONS "near_cache" (or [NewWithNearCache]) a backend keeps a
// near cache: hits from process memory with no round trip, dropped when
// Redis reports that any client changed the key (CLIENT TRACKING in
// broadcasting mode on one dedicated connection), flushed and bypassed
// whenever that report stream is in doubt. near.go says how and why, and
// why it is not go-redis's own client-side cache. Off by default; Cluster
// is not supported (see the README, "Redis in production").
//
// It imports backends, go-redis, fragcache's internal option reader and
// the standard library.
package redis

import "github.com/fragcache/fragcache/backends"

// Every networked backend answers readiness probes.
var _ backends.Pinger = (*Backend)(nil)
