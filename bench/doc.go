// Package bench compares fragcache's SimpleCache, used through
// backends.Cache as applications use it, with other in-process Go caches:
// otter v2, go-cache, golang-lru v2 and ristretto v2. It is a module of its
// own so that those caches never become dependencies of fragcache.
//
// Everything is in its tests:
//
//	go test -run '^$' -bench . -benchmem          # Get, evicting Set, bytes per entry, hit ratio
//	go test -run TestReport -report -rounds 5     # the same, interleaved by round, as a table
//
// BENCHMARKS.md in the repository root records the figures and the exact
// commands.
package bench
