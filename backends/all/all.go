// Package all imports every backend family of fragcache, so that
// [backends.Open] knows every Flask-Caching CACHE_TYPE: for programs that
// choose the backend by name at run time (a CLI, a demo, an app configured
// from Flask settings). A program that knows its backend imports only that
// family's package and links no other client:
//
//	import _ "github.com/fragcache/fragcache/backends/all"
//
// It imports the four family packages (filesystem, memcached, redis,
// uwsgi) and nothing else.
package all

import (
	_ "github.com/fragcache/fragcache/backends/filesystem" // FileSystemCache
	_ "github.com/fragcache/fragcache/backends/memcached"  // MemcachedCache, SASLMemcachedCache, SpreadSASLMemcachedCache
	_ "github.com/fragcache/fragcache/backends/redis"      // RedisCache, RedisSentinelCache, RedisClusterCache
	_ "github.com/fragcache/fragcache/backends/uwsgi"      // UWSGICache
)
