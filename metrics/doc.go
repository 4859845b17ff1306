// Package metrics holds fragcache's metrics adapters, one package per
// metrics system: prommetrics (Prometheus, prometheus/client_golang),
// otelmetrics (OpenTelemetry metric instruments) and expvarmetrics (the
// standard library's expvar). They live in a folder of their own, each in
// its own package, so that an application pulls in a metrics library only
// by importing its adapter: the core packages (backends, fragment, the
// engines, memoize, httpcache) import none of them, which a test of this
// package checks with `go list -deps`.
//
// Each adapter implements the two hooks of the core:
// [github.com/fragcache/fragcache/fragment.Observer] (set as
// fragment.Options.Observer) for per-fragment series, and
// [github.com/fragcache/fragcache/backends.OpObserver] (through its Cache
// method, which wraps a backends.Cache with backends.Observe) for
// per-backend series and the circuit breaker's state. The series are the
// same in every adapter, named by Prometheus' rules:
//
//	fragcache_fragment_lookups_total{fragment,outcome}      block executions by outcome (hit, stale_hit, miss, refresh, delete, uncached)
//	fragcache_fragment_renders_total{fragment}              bodies rendered to be stored
//	fragcache_fragment_render_errors_total{fragment}        of which failed (nothing stored)
//	fragcache_fragment_render_duration_seconds{fragment}    histogram of render time
//	fragcache_fragment_rendered_bytes_total{fragment}       bytes rendered to be stored
//	fragcache_fragment_served_bytes_total{fragment}         bytes written from the cache (hits)
//	fragcache_backend_operations_total{backend,op}          calls through the cache, refused ones included
//	fragcache_backend_errors_total{backend,op}              calls that reached the backend and failed
//	fragcache_backend_breaker_skips_total{backend,op}       calls the open circuit breaker refused
//	fragcache_backend_operation_duration_seconds{backend,op} histogram of calls that reached the backend
//	fragcache_backend_breaker_state{backend,state}          1 for the breaker's current state (closed, half_open, open), else 0
//
// The fragment label is the block's name, or "path:line" for an unnamed
// block — never its vary_on values — so there is one series per block, not
// per user or product. A name computed from request data would still be
// unbounded: each adapter keeps at most MaxFragments names (default 1000)
// and counts the rest under fragment="other".
//
// The backend series count calls through the Cache: with a near cache
// (backends.NearCache, CACHE_OPTIONS near_cache), a get it answers from
// memory is counted, and timed, as a get.
//
// OpenTelemetry names its instruments with dots (fragcache.fragment.lookups,
// unit "{lookup}"); its Prometheus exporter turns them into the names
// above.
package metrics
