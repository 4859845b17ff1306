package memcache

import (
	"hash/crc32"
	"unsafe"
)

// PickServer returns the index, among n servers, of the server that holds
// key: the CRC-32 (IEEE) checksum of the key modulo n, as
// github.com/bradfitz/gomemcache's ServerList picks. It is stable: a key
// maps to the same server for as long as the server list is the same, in
// the same order, and a Go program using gomemcache with that list finds
// the same keys on the same servers. It is not consistent hashing: adding
// or removing a server moves most keys, which for a cache means a burst of
// misses rather than wrong answers. A server listed twice gets twice the
// keys.
func PickServer(key string, n int) int {
	if n <= 1 {
		return 0
	}
	// crc32 only reads the bytes, so the key's own memory serves without a
	// copy.
	sum := crc32.ChecksumIEEE(unsafe.Slice(unsafe.StringData(key), len(key)))
	return int(sum % uint32(n))
}
