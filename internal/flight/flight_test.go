package flight

import (
	"context"
	"errors"
	"fmt"
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
	assert.True(t, errors.Is(got[0], ErrCycle) || errors.Is(got[1], ErrCycle), "a cycle through another goroutine is ErrCycle: %v", got)
}

// A cycle of waits through two groups (two memoized functions, a
// fragment calling a memoized function) is a cycle all the same.
func TestWaitCycleAcrossGroupsIsErrCycle(t *testing.T) {
	var ga Group[string]
	var gb Group[int]
	bothIn := make(chan struct{})
	var entered sync.WaitGroup
	entered.Add(2)
	go func() { entered.Wait(); close(bothIn) }()
	errs := make(chan error, 2)
	go func() {
		_, _, err := ga.Do(context.Background(), "k", func() (string, error) {
			entered.Done()
			<-bothIn
			_, _, err := gb.Do(context.Background(), "k", func() (int, error) { return 1, nil })
			return "a", err
		})
		errs <- err
	}()
	go func() {
		_, _, err := gb.Do(context.Background(), "k", func() (int, error) {
			entered.Done()
			<-bothIn
			_, _, err := ga.Do(context.Background(), "k", func() (string, error) { return "b", nil })
			return 2, err
		})
		errs <- err
	}()
	var got []error
	for range 2 {
		select {
		case err := <-errs:
			got = append(got, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a wait cycle through two groups deadlocked")
		}
	}
	assert.True(t, errors.Is(got[0], ErrCycle) || errors.Is(got[1], ErrCycle), "one side must refuse to wait: %v", got)
}

func TestOwnKeyIsNotErrCycle(t *testing.T) {
	var g Group[string]
	_, _, err := g.Do(context.Background(), "k", func() (string, error) {
		_, _, err := g.Do(context.Background(), "other", func() (string, error) {
			_, _, err := g.Do(context.Background(), "k", func() (string, error) { return "", nil })
			return "", err
		})
		return "", err
	})
	require.ErrorIs(t, err, ErrRecursive)
	assert.NotErrorIs(t, err, ErrCycle, "re-entering a key of one's own goroutine is a bug, not a timing accident")
}

// A leader whose context ends mid-computation fails; waiters whose own
// context is alive must not inherit that failure: one takes over and runs
// its own fn, the others share its result.
func TestWaitersTakeOverWhenTheLeadersContextEnds(t *testing.T) {
	const waiters = 15
	var g Group[string]
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	defer cancelLeader()
	leaderErr := make(chan error, 1)
	go func() {
		_, _, err := g.Do(leaderCtx, "k", func() (string, error) {
			<-leaderCtx.Done()
			return "", leaderCtx.Err()
		})
		leaderErr <- err
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight("k") })
	var runs atomic.Int32
	release := make(chan struct{})
	vals := make([]string, waiters)
	errs := make([]error, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			vals[i], _, errs[i] = g.Do(context.Background(), "k", func() (string, error) {
				runs.Add(1)
				<-release
				return "taken over", nil
			})
		})
	}
	testkit.Eventually(t, "the others wait", func() bool { return g.Waiting() == waiters })
	cancelLeader()
	require.ErrorIs(t, <-leaderErr, context.Canceled)
	testkit.Eventually(t, "one waiter takes over, the rest wait for it", func() bool { return runs.Load() == 1 && g.Waiting() == waiters-1 })
	close(release)
	wg.Wait()
	// One waiter took over. (A waiter slow to wake from the cancelled
	// call can find the taken-over one finished and run fn once more: it
	// knew nothing of it. Every waiter re-running is what must not be.)
	assert.Less(t, runs.Load(), int32(waiters/2), "one waiter took over, the others waited for it")
	for i := range waiters {
		require.NoError(t, errs[i], "waiter %d", i)
		assert.Equal(t, "taken over", vals[i])
	}
}

// A failure of a leader whose context is alive is the key's own: every
// waiter gets it.
func TestWaitersShareFailureOfALiveLeader(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	errBoom := fmt.Errorf("query: %w", context.DeadlineExceeded) // looks like a ctx error, but the leader's ctx is alive
	go func() {
		_, _, _ = g.Do(context.Background(), "k", func() (int, error) { <-release; return 0, errBoom })
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight("k") })
	var ran atomic.Bool
	errc := make(chan error, 1)
	go func() {
		_, _, err := g.Do(context.Background(), "k", func() (int, error) { ran.Store(true); return 1, nil })
		errc <- err
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return g.Waiting() == 1 })
	close(release)
	assert.ErrorIs(t, <-errc, errBoom)
	assert.False(t, ran.Load())
}

func TestTryDoDoesNotWait(t *testing.T) {
	var g Group[int]
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = g.Do(context.Background(), "k", func() (int, error) { <-release; return 1, nil })
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight("k") })
	v, ran, err := g.TryDo(context.Background(), "k", func() (int, error) { return 2, nil })
	require.NoError(t, err)
	assert.False(t, ran, "a computation is in flight: TryDo leaves at once")
	assert.Zero(t, v)
	close(release)
	<-done
	v, ran, err = g.TryDo(context.Background(), "k", func() (int, error) { return 3, nil })
	require.NoError(t, err)
	assert.True(t, ran)
	assert.Equal(t, 3, v)
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

// A computation nobody waits for is the miss path of every cache block:
// it must not allocate (its bookkeeping is reused), while a reused call
// must never hand one key's result to another key's waiters.
func TestUncontendedDoAllocatesNothing(t *testing.T) {
	var g Group[int]
	ctx := context.Background()
	fn := func() (int, error) { return 7, nil }
	_, _, _ = g.Do(ctx, "warm", fn) // the map's first allocation
	allocs := testing.AllocsPerRun(100, func() {
		v, shared, err := g.Do(ctx, "k", fn)
		if v != 7 || shared || err != nil {
			panic("wrong result")
		}
	})
	assert.Zero(t, allocs, "allocations per uncontended Do")
}

func TestReusedCallsKeepResultsApart(t *testing.T) {
	var g Group[string]
	ctx := context.Background()
	for i := range 50 {
		key := fmt.Sprint("k", i%3)
		release := make(chan struct{})
		waiterGot := make(chan string, 1)
		go func() {
			_, _, _ = g.Do(ctx, key, func() (string, error) { <-release; return key, nil })
		}()
		testkit.Eventually(t, "the leader runs", func() bool { return g.InFlight(key) })
		go func() {
			v, _, err := g.Do(ctx, key, func() (string, error) { return "not " + key, nil })
			if err != nil {
				v = err.Error()
			}
			waiterGot <- v
		}()
		testkit.Eventually(t, "the waiter waits", func() bool { return g.Waiting() == 1 })
		// Uncontended calls of other keys meanwhile reuse their calls.
		for j := range 5 {
			other := fmt.Sprint("other", j)
			v, shared, err := g.Do(ctx, other, func() (string, error) { return other, nil })
			require.NoError(t, err)
			require.False(t, shared)
			require.Equal(t, other, v)
		}
		close(release)
		assert.Equal(t, key, <-waiterGot)
		testkit.Eventually(t, "the flight ends", func() bool { return !g.InFlight(key) })
	}
}

// Many goroutines call Do and TryDo on a few keys at once, some with a
// context that is already cancelled and some computations panicking, so
// that waiters arrive while computations end and calls are reused: every
// value a caller gets is one computed for its own key.
func TestReusedCallsUnderContention(t *testing.T) {
	var g Group[string]
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 400 {
				key := fmt.Sprint("k", (w+i)%3)
				ctx := context.Background()
				if i%7 == 0 {
					ctx = cancelled
				}
				fn := func() (string, error) {
					if i%11 == 0 {
						panic("boom")
					}
					return key, nil
				}
				var v string
				var err error
				func() {
					defer func() { _ = recover() }()
					if i%5 == 0 {
						v, _, err = g.TryDo(ctx, key, fn)
					} else {
						v, _, err = g.Do(ctx, key, fn)
					}
				}()
				if err == nil && v != "" && v != key {
					t.Errorf("%s got %q", key, v)
					return
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, g.Waiting())
	for k := range 3 {
		assert.False(t, g.InFlight(fmt.Sprint("k", k)))
	}
}
