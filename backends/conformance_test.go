package backends_test

import (
	"fmt"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
)

// largeThreshold leaves room for everything the suite stores at once while
// keeping the eviction bookkeeping in play.
const largeThreshold = 10_000

func TestSimpleConformance(t *testing.T) {
	for _, threshold := range []int{0, largeThreshold} {
		t.Run(fmt.Sprintf("threshold %d", threshold), func(t *testing.T) {
			backendtest.Run(t, func(*testing.T) backends.Backend {
				return backends.NewSimple(threshold)
			}, backendtest.Options{AtomicInc: true, AtomicAdd: true})
		})
	}
	t.Run("tinylfu", func(t *testing.T) {
		backendtest.Run(t, func(*testing.T) backends.Backend {
			return backends.NewSimpleWithOptions(backends.SimpleOptions{Threshold: largeThreshold, Eviction: backends.EvictTinyLFU})
		}, backendtest.Options{AtomicInc: true, AtomicAdd: true})
	})
}
