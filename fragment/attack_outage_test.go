package fragment

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// TestAttackOutageLosesHerdProtection: concurrent misses of one key render
// the body once, but only while the backend answers: when the lookup fails
// (the backend down, its breaker open) every request renders the block
// itself, at once. The in-process deduplication needs no backend, and an
// outage of the cache is when the data source behind the blocks needs it
// most (the same holds for memoize and for httpcache, whose backend errors
// also run the function or handler for every request).
func TestAttackOutageLosesHerdProtection(t *testing.T) {
	const n = 8
	c := New(backends.New(testkit.Failing{}, backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
	call := Call{Site: testSite(), Timeout: 60, Name: "expensive"}

	var running, runs atomic.Int64
	release := make(chan struct{})
	body := func(w io.Writer) error {
		runs.Add(1)
		running.Add(1)
		<-release
		_, err := io.WriteString(w, "expensive")
		return err
	}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var out bytes.Buffer
			err := c.Render(context.Background(), call, &out, body)
			assert.NoError(t, err)
		})
	}
	// Either every render is in its own body, or one is and the others wait
	// for it.
	testkit.Eventually(t, "the renders are under way", func() bool {
		r := running.Load()
		return r == n || r == 1 && c.Stats().Waiting == n-1
	})
	close(release)
	wg.Wait()
	require.NotZero(t, runs.Load())
	assert.EqualValues(t, 1, runs.Load(), "%d concurrent renders of one block during an outage ran its body %d times", n, runs.Load())
}
