package backendtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/fragcache/fragcache/backends"
)

const (
	workers = 8   // goroutines per concurrency rule
	rounds  = 200 // operations per goroutine in the mixed rule
)

func (s *suite) testConcurrency(t *testing.T) {
	s.runRules(t, []rule{
		{"mixed operations from many goroutines on shared keys leave every key consistent", mixedOps},
		{"concurrent Incs of one key lose no update", func(t *testing.T, e *env) {
			if !s.opts.AtomicInc {
				t.Skip("Options.AtomicInc is false")
			}
			concurrentInc(t, e)
		}},
		{"of concurrent Adds of one missing key exactly one succeeds", func(t *testing.T, e *env) {
			if !s.opts.AtomicAdd {
				t.Skip("Options.AtomicAdd is false")
			}
			concurrentAdd(t, e)
		}},
	})
}

// Shared keys of the mixed rule: counters only ever hold integers, blobs
// only strings that check themselves, so every read can be validated.
var (
	counterKeys = []string{"counter 0", "counter 1", "counter 2"}
	blobKeys    = []string{"blob 0", "blob 1", "blob 2"}
)

// blobValue is the string worker g writes in round i: its length and filler
// depend on g and i, so a torn or mixed-up write is detectable.
func blobValue(g, i int) string {
	return fmt.Sprintf("%d/%d/", g, i) + strings.Repeat(string(rune('a'+(g+i)%26)), (g*37+i*13)%500)
}

func checkBlob(v string) error {
	var g, i int
	if _, err := fmt.Sscanf(v, "%d/%d/", &g, &i); err != nil || v != blobValue(g, i) {
		return fmt.Errorf("blob %.40q (%d bytes) is not a value any worker wrote", v, len(v))
	}
	return nil
}

func mixedOps(t *testing.T, e *env) {
	eg, ctx := errgroup.WithContext(e.ctx)
	for g := range workers {
		eg.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			own := fmt.Sprintf("own %d", g)
			for i := range rounds {
				// A private counter each round: its final value shows no
				// update of it was lost among the shared traffic.
				if _, err := e.c.Inc(ctx, own, 1); err != nil {
					return fmt.Errorf("worker %d round %d: Inc(%q): %w", g, i, own, err)
				}
				counter, blob := counterKeys[rng.IntN(len(counterKeys))], blobKeys[rng.IntN(len(blobKeys))]
				if err := mixedOp(ctx, e.c, rng.IntN(12), counter, blob, g, i); err != nil {
					return fmt.Errorf("worker %d round %d: %w", g, i, err)
				}
			}
			return nil
		})
	}
	require.NoError(t, eg.Wait())

	for g := range workers {
		requireValue(t, e, e.c, fmt.Sprintf("own %d", g), int64(rounds))
	}
	keys := slices.Concat(counterKeys, blobKeys)
	many, err := e.c.GetMany(e.ctx, keys...)
	require.NoError(t, err)
	require.Len(t, many, len(keys))
	for i, k := range keys {
		v, err := e.c.GetValue(e.ctx, k)
		require.NoError(t, err)
		has, err := e.c.Has(e.ctx, k)
		require.NoError(t, err)
		assert.Equal(t, v.Found(), has, "GetValue and Has disagree on %q", k)
		assert.Equal(t, v.Found(), many[i].Found(), "GetValue and GetMany disagree on %q", k)
		if !v.Found() {
			continue
		}
		if slices.Contains(counterKeys, k) {
			var n int64
			assert.NoError(t, v.Decode(&n), "counter %q", k)
			continue
		}
		var blob string
		require.NoError(t, v.Decode(&blob), "blob %q", k)
		assert.NoError(t, checkBlob(blob))
	}
}

// mixedOp runs operation op of worker g in round i on a counter and a blob.
func mixedOp(ctx context.Context, c *backends.Cache, op int, counter, blob string, g, i int) error {
	var err error
	switch op {
	case 0:
		err = c.Set(ctx, counter, int64(i))
	case 1:
		_, err = c.Inc(ctx, counter, 1)
	case 2:
		_, err = c.Dec(ctx, counter, 1)
	case 3:
		var n int64
		_, err = c.Get(ctx, counter, &n)
	case 4:
		_, err = c.Delete(ctx, counter)
	case 5:
		err = c.Set(ctx, blob, blobValue(g, i))
	case 6:
		_, err = c.Add(ctx, blob, blobValue(g, i))
	case 7:
		var v string
		var found bool
		if found, err = c.Get(ctx, blob, &v); err == nil && found {
			err = checkBlob(v)
		}
	case 8:
		var vs []backends.Value
		vs, err = c.GetMany(ctx, blobKeys...)
		for _, v := range vs {
			var s string
			if err == nil && v.Found() {
				if err = v.Decode(&s); err == nil {
					err = checkBlob(s)
				}
			}
		}
	case 9:
		err = c.SetMany(ctx, map[string]any{blob: blobValue(g, i), counter: int64(i)})
	case 10:
		_, err = c.DeleteMany(ctx, blob, counter)
	case 11:
		_, err = c.Has(ctx, blob)
	}
	if err != nil {
		return fmt.Errorf("op %d on %q/%q: %w", op, counter, blob, err)
	}
	return nil
}

func concurrentInc(t *testing.T, e *env) {
	const perWorker = 100
	results := make([][]int64, workers)
	start := make(chan struct{})
	var eg errgroup.Group
	for g := range workers {
		eg.Go(func() error {
			<-start
			for range perWorker {
				n, err := e.c.Inc(e.ctx, "n", 1)
				if err != nil {
					return err
				}
				results[g] = append(results[g], n)
			}
			return nil
		})
	}
	close(start)
	require.NoError(t, eg.Wait())
	// Every increment must have seen a distinct count: together the
	// results are exactly 1..workers*perWorker.
	all := slices.Sorted(slices.Values(slices.Concat(results...)))
	for i, n := range all {
		if n != int64(i+1) {
			t.Fatalf("Inc results sorted: position %d holds %d, want %d (an update was lost or repeated)", i, n, i+1)
		}
	}
	requireValue(t, e, e.c, "n", int64(workers*perWorker))
}

func concurrentAdd(t *testing.T, e *env) {
	const tries = 20 // races are probabilistic; several keys make a loss likely to show
	for try := range tries {
		key := fmt.Sprintf("add %d", try)
		var winners, winner atomic.Int64
		start := make(chan struct{})
		var eg errgroup.Group
		for g := range workers {
			eg.Go(func() error {
				<-start
				added, err := e.c.Add(e.ctx, key, int64(g))
				if added {
					winners.Add(1)
					winner.Store(int64(g))
				}
				return err
			})
		}
		close(start)
		require.NoError(t, eg.Wait())
		require.Equal(t, int64(1), winners.Load(), "Adds of %q that reported true", key)
		requireValue(t, e, e.c, key, winner.Load())
	}
}
