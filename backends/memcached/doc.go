// Package memcached is Flask-Caching's MemcachedCache, SASLMemcachedCache
// and SpreadSASLMemcachedCache for fragcache: a [backends.Backend] over
// fragcache's own memcached binary-protocol client (internal/memcache),
// with SASL authentication and values spread over several items when they
// are larger than the server's item size (see [Backend]).
//
// Importing it registers those three CACHE_TYPE names (and Flask's old
// "memcached", "gaememcached", "saslmemcached", "spreadsaslmemcached")
// with [backends.Open], which reads CACHE_MEMCACHED_SERVERS,
// CACHE_MEMCACHED_USERNAME and CACHE_MEMCACHED_PASSWORD and CACHE_OPTIONS
// (snake_case, unknown keys rejected). [New] builds one directly:
//
//	mc, err := memcached.New(memcached.Options{Servers: []string{"127.0.0.1:11211"}})
//	cache := backends.New(mc, backends.CacheOptions{KeyPrefix: "myapp_"})
//
// max_value_size (1 MiB by default, memcached's own -I) means what it
// means for every fragcache backend: the largest value stored, refused on
// write with an error wrapping backends.ErrValueTooLarge, and the bound on
// what a read allocates.
//
// It imports backends, fragcache's internal memcache client, namespace and
// option packages, keys, and the standard library.
package memcached

import "github.com/fragcache/fragcache/backends"

// Every networked backend answers readiness probes.
var _ backends.Pinger = (*Backend)(nil)
