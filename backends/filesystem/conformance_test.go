package filesystem_test

import (
	"fmt"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
	"github.com/fragcache/fragcache/backends/filesystem"
)

// largeThreshold leaves room for everything the suite stores at once while
// keeping the pruning in play.
const largeThreshold = 10_000

func TestFileSystemConformance(t *testing.T) {
	for _, threshold := range []int{0, largeThreshold} {
		t.Run(fmt.Sprintf("threshold %d", threshold), func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T) backends.Backend {
				b, err := filesystem.New(t.TempDir(), filesystem.Options{Threshold: threshold})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}, backendtest.Options{AtomicInc: true, AtomicAdd: true})
		})
	}
}
