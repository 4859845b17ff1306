package memoize

import (
	"math"

	"github.com/fragcache/fragcache/backends"
)

// resultSize estimates what a result kept in memory holds: the size of
// its msgpack encoding (computed once per stored version, when it is
// kept). A result that does not encode costs as much as it may, so it is
// never kept.
func resultSize[R any](r R) int {
	b, err := backends.MsgpackCodec{}.Marshal(r)
	if err != nil {
		return math.MaxInt / 2
	}
	return len(b)
}
