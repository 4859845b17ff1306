package testkit

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// FanOut calls render(i) for every i in [0, workers×rounds) on workers
// goroutines released together, each taking rounds consecutive values of
// i, as a template function that renders on goroutines of its own does.
// It returns the results joined in the order of i, and the errors joined
// (a goroutine stops at its first).
func FanOut(workers, rounds int, render func(i int) (string, error)) (string, error) {
	out := make([]string, workers*rounds)
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			for r := range rounds {
				i := w*rounds + r
				if out[i], errs[w] = render(i); errs[w] != nil {
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	return strings.Join(out, ""), errors.Join(errs...)
}

// AssertStored checks that store holds a value under each of keys.
func AssertStored(t testing.TB, store *backends.Cache, keys ...string) {
	t.Helper()
	for _, k := range keys {
		has, err := store.Has(t.Context(), k)
		require.NoError(t, err)
		assert.True(t, has, "nothing stored under %q", k)
	}
}
