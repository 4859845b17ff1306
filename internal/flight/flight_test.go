package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testkit"
)

func TestConcurrentCallsOfOneKeyRunOnce(t *testing.T) {
	for _, fail := range []bool{false, true} {
		var g Group[int]
		release := make(chan struct{})
		var runs atomic.Int32
		errBoom := errors.New("boom")
		fn := func() (int, error) {
			runs.Add(1)
			<-release
			if fail {
				return 0, errBoom
			}
			return 42, nil
		}
		const callers = 16
		var wg sync.WaitGroup
		results := make([]error, callers)
		values := make([]int, callers)
		shared := make([]bool, callers)
		for i := range callers {
			wg.Go(func() { values[i], shared[i], results[i] = g.Do(context.Background(), "k", fn) })
		}
		testkit.Eventually(t, "all but one wait", func() bool { return g.Waiting() == callers-1 })
		close(release)
		wg.Wait()

		assert.EqualValues(t, 1, runs.Load())
		nShared := 0
		for i := range callers {
			if fail {
				assert.ErrorIs(t, results[i], errBoom)
			} else {
				require.NoError(t, results[i])
				assert.Equal(t, 42, values[i])
			}
			if shared[i] {
				nShared++
			}
		}
		assert.Equal(t, callers-1, nShared)
		assert.False(t, g.InFlight("k"))
	}
}

func TestCallingOwnKeyIsErrRecursive(t *testing.T) {
	var g Group[string]
	done := make(chan error, 1)
	go func() {
		_, _, err := g.Do(context.Background(), "k", func() (string, error) {
			_, _, err := g.Do(context.Background(), "k", func() (string, error) { return "inner", nil })
			return "", err
		})
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, ErrRecursive)
	case <-time.After(10 * time.Second):
		t.Fatal("re-entering a key deadlocked")
	}
}

func TestWaitCycleAcrossGoroutinesIsErrRecursive(t *testing.T) {
	var g Group[string]
	bothIn := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(2)
	go func() { entered.Wait(); close(bothIn) }()
	run := func(mine, other string) error {
		_, _, err := g.Do(context.Background(), mine, func() (string, error) {
			entered.Done()
			<-bothIn
			_, _, err := g.Do(context.Background(), other, func() (string, error) { return other, nil })
			return mine, err
		})
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- run("a", "b") }()
	go func() { errs <- run("b", "a") }()
	var got []error
	for range 2 {
		select {
		case err := <-errs:
			got = append(got, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a wait cycle deadlocked")
		}
	}
	assert.True(t, errors.Is(got[0], ErrRecursive) || errors.Is(got[1], ErrRecursive), "one side must refuse to wait: %v", got)
}

func TestPanicReleasesWaitersAndGoesOn(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _, _ = g.Do(context.Background(), "k", func() (int, error) { <-release; panic("boom") })
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight("k") })
	waitErr := make(chan error, 1)
	go func() {
		_, _, err := g.Do(context.Background(), "k", func() (int, error) { return 1, nil })
		waitErr <- err
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return g.Waiting() == 1 })
	close(release)
	assert.Equal(t, "boom", <-panicked)
	assert.ErrorIs(t, <-waitErr, ErrPanicked)
}

func TestWaiterStopsWhenItsContextEnds(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	defer close(release)
	go func() { _, _, _ = g.Do(context.Background(), "k", func() (int, error) { <-release; return 1, nil }) }()
	testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight("k") })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, _, err := g.Do(ctx, "k", func() (int, error) { return 2, nil }); errc <- err }()
	testkit.Eventually(t, "the waiter waits", func() bool { return g.Waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-errc, context.Canceled)
	assert.Zero(t, g.Waiting())
}
