package memoize

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// TestOutageKeepsHerdProtection: while the backend fails (down, or its
// breaker open), concurrent calls with the same arguments still run the
// function once (finding 7), and a waiter takes over when the caller
// running it is cancelled.
func TestOutageKeepsHerdProtection(t *testing.T) {
	const n = 8
	var running, runs atomic.Int64
	release := make(chan struct{})
	m := Func(backends.New(broken{}, backends.CacheOptions{}), func(_ context.Context, a int) (int, error) {
		runs.Add(1)
		running.Add(1)
		<-release
		return a * 2, nil
	}, Options{Name: "outage", Logger: slog.New(slog.DiscardHandler)})

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, err := m.Call(context.Background(), 21)
			assert.NoError(t, err)
			assert.Equal(t, 42, got)
		})
	}
	testkit.Eventually(t, "the calls are under way", func() bool {
		r := running.Load()
		return r == n || r == 1 && m.m.offline.Waiting() == n-1
	})
	close(release)
	wg.Wait()
	assert.EqualValues(t, 1, runs.Load(), "%d concurrent calls during an outage ran the function %d times", n, runs.Load())
}
