// Command fragcache looks at, drops and checks what a fragcache application
// has cached, configured by the application's own CACHE_* environment
// variables, so that no one needs redis-cli and the key rules in production.
//
// Usage:
//
//	fragcache get [-fragment] KEY | NAME [VARY…]   print a stored value
//	fragcache del [-fragment] KEY… | NAME [VARY…]  delete entries
//	fragcache clear -yes                           delete every entry under CACHE_KEY_PREFIX
//	fragcache stats                                the backend and its server's counters
//	fragcache ping [-count N]                      check the backend answers; print the latency
//	fragcache key NAME [VARY…]                     print a fragment's key as the backend stores it
//
// Every command reads the configuration as the application does (CACHE_TYPE,
// CACHE_REDIS_URL, CACHE_KEY_PREFIX, CACHE_OPTIONS…; see the README's
// Configuration section) and takes these flags after the command name:
//
//	-env-prefix P     read P + "CACHE_…" variables (an application that uses
//	                  backends.EnvOptions.Prefix, e.g. MYAPP_)
//	-timeout D        bound of the whole command (default 5s)
//	-fragment-prefix  fragment.Options.KeyPrefix of the application
//	-fragment-version fragment.Options.Version of the application
//	-unambiguous-keys the application sets fragment.Options.UnambiguousKeys
//
// As backends.FromEnv does for the application, CACHE_* variables that are
// not settings (Kubernetes' service links, CACHE_SERVICE_HOST…) are ignored,
// and a service link that lands on a setting (CACHE_REDIS_PORT=tcp://…) is
// an error naming it. Every backend family is linked in (backends/all).
//
// KEY is a key as the application's code names it, without CACHE_KEY_PREFIX
// (the cache adds it, as in the application). With -fragment, the arguments
// are a cache block's name and vary_on values instead, and get prints the
// fragment without the small header that stale-while-revalidate and early
// refresh store before it. `key` prints the full key, with CACHE_KEY_PREFIX,
// for tools such as redis-cli; unnamed blocks are named by
// keys.FragmentName(template path, line).
//
// get writes a stored string, []byte or foreign value byte for byte, an
// integer in decimal, and a structured value decoded with the default codec
// (msgpack) as JSON. Exit status: 0 on success, 1 when get finds nothing, 2
// on any error (configuration, backend, usage).
//
// The in-process backends cannot be reached from another process: with
// NullCache or SimpleCache every command but key and ping is refused.
package main
