// Package testservers starts real cache servers for tests: standalone Redis,
// a Redis Sentinel set, a Redis Cluster, memcached, memcached with SASL and a
// uWSGI cache server.
//
// Backends are only trusted when they have talked to the real thing, so the
// backend tests run the servers' own binaries rather than fakes. Every server
// is private to the test that asked for it: it listens on 127.0.0.1 on a port
// that was free a moment before (a few fresh ports are tried if another
// process wins the race), keeps its files and log in t.TempDir(), and runs in
// the foreground as a child of the test binary. A t.Cleanup kills it by PID
// with SIGKILL and waits for it to exit, so nothing outlives the test; on
// Linux the kernel also kills it if the test binary itself dies. When a
// server fails to start, the failure message carries the tail of its log.
//
// A missing binary skips the test, naming the binary and the Debian/Ubuntu
// package that provides it, so `go test ./...` works on a bare machine. With
// FRAGCACHE_REQUIRE_SERVERS=1 (what `make test` and CI set) the same case
// fails the test instead, so a broken CI image cannot pass by skipping.
// [RequireBinary] holds that rule for every package that needs a server.
//
// It is for tests only, and imports testify and the standard library.
package testservers
