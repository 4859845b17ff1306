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
// CACHE_ARGS and CACHE_OPTIONS, Settings the backend-specific keys; a
// factory should reject option keys it does not know (see
// [CheckOptions]) and report a missing or invalid setting with an error
// wrapping ErrConfig that names the key.
type Factory func(cfg Config) (Backend, error)

var registry = struct {
	sync.RWMutex
	factories map[string]Factory
}{factories: map[string]Factory{}}

// ImportPath is the import path of this package; the packages of Flask's
// backend families are below it.
const ImportPath = "github.com/fragcache/fragcache/backends"

// builtin is one of Flask-Caching's backends: the package that registers
// it, and whether Open guards it with a circuit breaker by default (it
// waits on a server).
type builtin struct {
	pkg       string
	networked bool
}

// builtins are Flask-Caching's backend names (data, not code: the packages
// register themselves when imported), and aliases Flask's older (deprecated)
// lowercase spellings of the same backends.
var (
	builtins = map[string]builtin{
		"NullCache":                {pkg: ImportPath},
		"SimpleCache":              {pkg: ImportPath},
		"FileSystemCache":          {pkg: ImportPath + "/filesystem"},
		"RedisCache":               {pkg: ImportPath + "/redis", networked: true},
		"RedisSentinelCache":       {pkg: ImportPath + "/redis", networked: true},
		"RedisClusterCache":        {pkg: ImportPath + "/redis", networked: true},
		"UWSGICache":               {pkg: ImportPath + "/uwsgi", networked: true},
		"MemcachedCache":           {pkg: ImportPath + "/memcached", networked: true},
		"SASLMemcachedCache":       {pkg: ImportPath + "/memcached", networked: true},
		"SpreadSASLMemcachedCache": {pkg: ImportPath + "/memcached", networked: true},
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

// Register makes a backend available to [Open] under name (CACHE_TYPE), as
// database/sql.Register does for drivers; call it from an init function.
// The packages of Flask's backend families register Flask's names, so that
// Flask's old lowercase aliases of those names open them too. It panics if
// name is empty, already registered, or one of those aliases.
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

// Types returns every CACHE_TYPE name Open accepts, sorted: the registered
// backends and Flask's old aliases of those registered.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	set := map[string]bool{}
	for n := range registry.factories {
		set[n] = true
	}
	for alias, n := range aliases {
		if registry.factories[n] != nil {
			set[alias] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Open builds the backend cfg.Type names and returns a Cache over it with
// cfg's key prefix, default timeout, codec and error policy. CACHE_OPTIONS
// "default_timeout" (seconds, 0 for never, as in Flask) overrides
// CACHE_DEFAULT_TIMEOUT.
//
// A backend's package must be imported for Open to know it, as a
// database/sql driver must: a Flask CACHE_TYPE whose package the program
// does not import is an error wrapping ErrUnknownBackend that names the
// import to add (backends/all imports every one).
//
// Networked backends (Redis, memcached, uWSGI) are guarded by a circuit
// breaker ([Breaker]; [Cache.Breaker] returns it): CACHE_OPTIONS
// "breaker_failures" (consecutive failures that open it, default 5; 0
// turns it off, a positive number turns it on for any backend) and
// "breaker_cooldown" (default 100 ms) configure it. Choosing NullCache logs
// a warning unless cfg.NoNullWarning is set.
func Open(cfg Config) (*Cache, error) {
	name := cfg.Type
	if canonical, ok := aliases[name]; ok {
		name = canonical
	}
	registry.RLock()
	f := registry.factories[name]
	registry.RUnlock()
	if f == nil {
		if b, ok := builtins[name]; ok {
			return nil, fmt.Errorf("%w: CACHE_TYPE %q needs import _ %q (or %q, which imports every backend)",
				ErrUnknownBackend, cfg.Type, b.pkg, ImportPath+"/all")
		}
		return nil, fmt.Errorf("%w: CACHE_TYPE %q; known types: %s (Flask's other backends are known once their package is imported, such as %s/all)",
			ErrUnknownBackend, cfg.Type, strings.Join(Types(), ", "), ImportPath)
	}
	if dt, ok := cfg.Options["default_timeout"]; ok {
		d, err := flaskTimeout(dt)
		if err != nil {
			return nil, fmt.Errorf("%w: CACHE_OPTIONS default_timeout: %w", ErrConfig, err)
		}
		cfg.DefaultTimeout = d
		cfg.Options = maps.Clone(cfg.Options)
		delete(cfg.Options, "default_timeout")
	}
	if cfg.DefaultTimeout < 0 && cfg.DefaultTimeout != NoExpiry {
		return nil, fmt.Errorf("%w: CACHE_DEFAULT_TIMEOUT: %w: %v", ErrConfig, ErrInvalidTimeout, cfg.DefaultTimeout)
	}
	breaker, guard, err := takeBreakerOptions(name, &cfg)
	if err != nil {
		return nil, err
	}
	nearOpt, near, err := takeNearOptions(name, &cfg) // near.go
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
	if near { // outside the breaker: a near hit costs no breaker check
		b = NewNearCache(b, nearOpt)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if name == "NullCache" && !cfg.NoNullWarning {
		logger.Warn("fragcache: CACHE_TYPE is " + cfg.Type + ", caching is effectively disabled (set CACHE_NO_NULL_WARNING to silence this)")
	}
	return New(b, CacheOptions{
		KeyPrefix:      cfg.KeyPrefix,
		DefaultTimeout: cfg.DefaultTimeout,
		Codec:          cfg.Codec,
		IgnoreErrors:   cfg.IgnoreErrors,
		Logger:         logger,
	}), nil
}
