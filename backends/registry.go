package backends

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Factory builds a backend from a Config: the Go form of Flask-Caching's
// custom backend factory(app, config, args, kwargs). Args and Options carry
// CACHE_ARGS and CACHE_OPTIONS; a factory should reject option keys it does
// not know (see [CheckOptions]) and report a missing setting with
// [MissingKeyError].
type Factory func(cfg Config) (Backend, error)

var registry = struct {
	sync.RWMutex
	factories map[string]Factory
}{factories: map[string]Factory{}}

// Flask-Caching's built-in backend names. The lowercase names are Flask's
// older (deprecated) spellings of the same backends.
var (
	builtinNames = []string{
		"NullCache", "SimpleCache", "FileSystemCache", "RedisCache", "RedisSentinelCache",
		"RedisClusterCache", "UWSGICache", "MemcachedCache", "SASLMemcachedCache",
		"SpreadSASLMemcachedCache",
	}
	aliases = map[string]string{
		"null": "NullCache", "simple": "SimpleCache", "filesystem": "FileSystemCache",
		"redis": "RedisCache", "redissentinel": "RedisSentinelCache",
		"rediscluster": "RedisClusterCache", "uwsgi": "UWSGICache",
		"memcached": "MemcachedCache", "gaememcached": "MemcachedCache",
		"saslmemcached": "SASLMemcachedCache", "spreadsaslmemcached": "SpreadSASLMemcachedCache",
	}
)

func init() {
	Register("NullCache", func(cfg Config) (Backend, error) {
		return NewNull(), CheckOptions("NullCache", cfg.Options)
	})
	Register("SimpleCache", simpleFromConfig)
}

// Register makes a backend available to [Open] under name (CACHE_TYPE). It
// panics if name is empty, already registered, or one of Flask's old
// lowercase aliases, as database/sql.Register does for drivers; call it from
// an init function.
func Register(name string, f Factory) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || f == nil {
		panic("backends.Register: empty name or nil factory")
	}
	if _, dup := registry.factories[name]; dup {
		panic("backends.Register: duplicate backend " + name)
	}
	if _, alias := aliases[name]; alias {
		panic("backends.Register: " + name + " is an alias of " + aliases[name])
	}
	registry.factories[name] = f
}

// Types returns every CACHE_TYPE name Open accepts, sorted: registered
// backends, Flask's built-in names and their old aliases.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	set := map[string]bool{}
	for n := range registry.factories {
		set[n] = true
	}
	for _, n := range builtinNames {
		set[n] = true
	}
	for n := range aliases {
		set[n] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// Open builds the backend cfg.Type names and returns a Cache over it with
// cfg's key prefix, default timeout, codec and error policy. CACHE_OPTIONS
// "default_timeout" overrides CACHE_DEFAULT_TIMEOUT, as in Flask.
// Networked backends (Redis, memcached, uWSGI) are guarded by a circuit
// breaker ([Breaker]; [Cache.Breaker] returns it): CACHE_OPTIONS
// "breaker_failures" (consecutive failures that open it, default 5; 0
// turns it off, a positive number turns it on for any backend) and
// "breaker_cooldown" (default 100 ms) configure it. Choosing
// NullCache logs a warning unless cfg.NoNullWarning is set.
func Open(cfg Config) (*Cache, error) {
	name := cfg.Type
	if canonical, ok := aliases[name]; ok {
		name = canonical
	}
	registry.RLock()
	f := registry.factories[name]
	registry.RUnlock()
	if f == nil {
		if slices.Contains(builtinNames, name) {
			return nil, fmt.Errorf("%w: CACHE_TYPE %q (%s) is part of Flask-Caching's backend set but not available in this version of fragcache",
				ErrNotImplemented, cfg.Type, name)
		}
		return nil, fmt.Errorf("%w: CACHE_TYPE %q; known types: %s", ErrUnknownBackend, cfg.Type, strings.Join(Types(), ", "))
	}
	if dt, ok := cfg.Options["default_timeout"]; ok {
		d, err := seconds(dt)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS default_timeout: %w", ErrConfig, err)
		}
		cfg.DefaultTimeout = d
		cfg.Options = maps.Clone(cfg.Options)
		delete(cfg.Options, "default_timeout")
	}
	if cfg.DefaultTimeout < 0 {
		return nil, fmt.Errorf("%w: CACHE_DEFAULT_TIMEOUT: %w: %v", ErrConfig, ErrInvalidTimeout, cfg.DefaultTimeout)
	}
	breaker, guard, err := takeBreakerOptions(name, &cfg)
	if err != nil {
		return nil, err
	}
	b, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if b == nil { // a factory bug, reported here rather than as a nil dereference later
		return nil, fmt.Errorf("open %s: factory returned a nil Backend and no error", name)
	}
	if guard {
		b = NewBreaker(b, breaker)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if name == "NullCache" && !cfg.NoNullWarning {
		logger.Warn("fragcache: CACHE_TYPE is " + cfg.Type + ", caching is effectively disabled (set CACHE_NO_NULL_WARNING to silence this)")
	}
	return New(b, Options{
		KeyPrefix:      cfg.KeyPrefix,
		DefaultTimeout: cfg.DefaultTimeout,
		Codec:          cfg.Codec,
		IgnoreErrors:   cfg.IgnoreErrors,
		Logger:         logger,
	}), nil
}
