package fragment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testkit"

	"github.com/fragcache/fragcache/backends"
)

// stampede renders call from n goroutines at once with a body that blocks
// until the other n-1 wait for it, then finishes with result. It returns each
// goroutine's output and error, and how many times the body ran.
func stampede(t *testing.T, c *Cache, call Call, n int, result func(io.Writer) error) ([]string, []error, int64) {
	t.Helper()
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // so that a failing test does not leave the body blocked
	var calls atomic.Int64
	body := func(w io.Writer) error {
		calls.Add(1)
		<-release
		return result(w)
	}
	outs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { outs[i], errs[i] = render(c, call, body) })
	}
	testkit.Eventually(t, "all but one render wait for the one rendering", func() bool { return int(c.Stats().Waiting) == n-1 })
	unblock()
	within(t, wg.Wait)
	return outs, errs, calls.Load()
}

func TestConcurrentMissesRenderOnce(t *testing.T) {
	const n = 32
	ctx := context.Background()
	c, store := newTestCache(Options{})
	call := Call{Site: testSite(), Timeout: 60, Name: "hot", VaryOn: []any{1}}
	const html = "<p>rendered once</p>"

	outs, errs, calls := stampede(t, c, call, n, func(w io.Writer) error {
		_, err := io.WriteString(w, html)
		return err
	})
	assert.EqualValues(t, 1, calls, "concurrent misses of one key run the body once")
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, html, outs[i], "goroutine %d", i)
	}
	assert.Equal(t, Stats{Misses: n, Renders: 1, Waits: n - 1}, c.Stats())

	var stored string
	found, err := store.Get(ctx, c.Key("hot", "1"), &stored)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, html, stored)
}

func TestConcurrentMissesShareFailure(t *testing.T) {
	const n = 32
	ctx := context.Background()
	c, store := newTestCache(Options{})
	call := Call{Site: testSite(), Name: "hot"}
	bodyErr := errors.New("template: division by zero")

	outs, errs, calls := stampede(t, c, call, n, func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial output")
		return bodyErr
	})
	assert.EqualValues(t, 1, calls)
	for i := range n {
		assert.ErrorIs(t, errs[i], bodyErr, "goroutine %d", i)
		assert.Empty(t, outs[i], "goroutine %d", i)
	}
	assert.Equal(t, Stats{Misses: n, Renders: 1, Waits: n - 1}, c.Stats())
	has, err := store.Has(ctx, c.Key("hot"))
	require.NoError(t, err)
	assert.False(t, has, "a failed render is not stored")

	body, again := countingBody("recovered")
	out, err := render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, "recovered", out)
	assert.EqualValues(t, 1, again.Load(), "the next render runs the body again")
}

func TestRenderReenteringOwnKeyIsAnError(t *testing.T) {
	outer := testSite()
	inner := &Site{Path: outer.Path, Line: 20, Col: 5}
	middle := &Site{Path: "partials/nav.html", Line: 2, Col: 1}
	tests := []struct {
		name string
		// nested runs inside the outer block's body and renders blocks
		// into w; it returns the error the re-entering block got.
		nested func(c *Cache, w io.Writer) error
	}{
		{
			name: "block renders its own key",
			nested: func(c *Cache, w io.Writer) error {
				return c.Render(context.Background(), Call{Site: inner, Name: "tree"}, w, okBody)
			},
		},
		{
			name: "block renders its own key through another block",
			nested: func(c *Cache, w io.Writer) error {
				var innerErr error
				err := c.Render(context.Background(), Call{Site: middle, Name: "nav"}, w, func(w io.Writer) error {
					innerErr = c.Render(context.Background(), Call{Site: inner, Name: "tree"}, w, okBody)
					return nil
				})
				if err != nil {
					return err
				}
				return innerErr
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(Options{})
			var innerErr, outerErr error
			within(t, func() {
				_, outerErr = render(c, Call{Site: outer, Name: "tree"}, func(w io.Writer) error {
					innerErr = tt.nested(c, w)
					return innerErr
				})
			})
			require.ErrorIs(t, innerErr, ErrRecursive)
			var se *SiteError
			require.ErrorAs(t, innerErr, &se)
			assert.Same(t, inner, se.Site, "the error names the re-entering block")
			assert.Same(t, innerErr, outerErr, "the outer block returns its body's error unwrapped")
		})
	}
}

// okBody is a body that succeeds.
func okBody(w io.Writer) error {
	_, err := io.WriteString(w, "ok")
	return err
}

// pollUntil polls cond until it holds or deadline passes; it is for
// goroutines other than the test's, which must not call t.Fatal.
func pollUntil(cond func() bool) bool {
	stop := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(stop) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Page A nests k1 ⊃ k2, page B nests k2 ⊃ k1, and the two render at once:
// goroutine A renders k1, whose body renders k2; goroutine B renders k2,
// whose body renders k1. Whichever closes the cycle of waits renders its
// inner block uncached instead of waiting (which would deadlock) or failing
// (which would fail its page); the other is served, and no page fails.
func TestRenderCrossGoroutineCycleRendersUncached(t *testing.T) {
	tests := []struct {
		name        string
		aWaitsFirst bool // else B waits first and A closes the cycle
	}{
		{"A waits for k2, B closes the cycle", true},
		{"B waits for k1, A closes the cycle", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(Options{})
			k1 := Call{Site: &Site{Path: "a.html", Line: 1, Col: 1}, Name: "k1"}
			k2 := Call{Site: &Site{Path: "b.html", Line: 1, Col: 1}, Name: "k2"}
			k1Rendering := make(chan struct{})
			errStuck := errors.New("the other goroutine never got there")
			otherWaits := func() bool { return int(c.Stats().Waiting) == 1 }
			// Each page's version of the inner block says which page
			// rendered it, so the output shows who rendered what.
			inner := func(page string) func(io.Writer) error {
				return func(w io.Writer) error { _, err := io.WriteString(w, "inner of "+page); return err }
			}
			var innerA, innerB error
			var pageA, pageB string
			var outerA, outerB error
			var wg sync.WaitGroup
			wg.Go(func() {
				pageA, outerA = render(c, k1, func(w io.Writer) error {
					close(k1Rendering)
					if !pollUntil(func() bool { return c.group.InFlight(c.Key("k2")) }) {
						return errStuck
					}
					if !tt.aWaitsFirst && !pollUntil(otherWaits) {
						return errStuck
					}
					innerA = c.Render(context.Background(), k2, w, inner("A"))
					return innerA
				})
			})
			wg.Go(func() {
				<-k1Rendering
				pageB, outerB = render(c, k2, func(w io.Writer) error {
					if tt.aWaitsFirst && !pollUntil(otherWaits) {
						return errStuck
					}
					innerB = c.Render(context.Background(), k1, w, inner("B"))
					return innerB
				})
			})
			within(t, wg.Wait)
			require.NoError(t, outerA, "page A")
			require.NoError(t, outerB, "page B")
			require.NoError(t, innerA)
			require.NoError(t, innerB)
			if tt.aWaitsFirst {
				// B closed the cycle: its k1 rendered uncached; A waited
				// for B's k2, which holds that.
				assert.Equal(t, "inner of B", pageB)
				assert.Equal(t, "inner of B", pageA)
			} else {
				assert.Equal(t, "inner of A", pageA)
				assert.Equal(t, "inner of A", pageB)
			}
			assert.Equal(t, uint64(1), c.Stats().Waits)
		})
	}
}

// Cancelling the request that renders a fragment fails no other request
// waiting for it: one of them takes over the render, the rest share it.
func TestCancellingTheLeaderFailsNoLiveWaiter(t *testing.T) {
	const waiters = 15
	c, _ := newTestCache(Options{})
	call := Call{Site: testSite(), Timeout: 60, Name: "cancelled"}
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	defer cancelLeader()
	var renders atomic.Int64
	body := func(ctx context.Context) func(io.Writer) error {
		return func(w io.Writer) error {
			renders.Add(1)
			if ctx == leaderCtx {
				// A data query under the request's context fails once it
				// is cancelled, and with it the template.
				<-ctx.Done()
				return fmt.Errorf("query: %w", ctx.Err())
			}
			return okBody(w)
		}
	}
	leaderErr := make(chan error, 1)
	go func() { leaderErr <- c.Render(leaderCtx, call, io.Discard, body(leaderCtx)) }()
	testkit.Eventually(t, "the leader renders", func() bool { return c.group.InFlight(c.Key("cancelled")) })
	outs := make([]string, waiters)
	errs := make([]error, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			var buf bytes.Buffer
			errs[i] = c.Render(context.Background(), call, &buf, body(context.Background()))
			outs[i] = buf.String()
		})
	}
	testkit.Eventually(t, "the others wait", func() bool { return int(c.Stats().Waiting) == waiters })
	cancelLeader()
	within(t, wg.Wait)
	assert.ErrorIs(t, <-leaderErr, context.Canceled, "the cancelled request fails")
	for i := range waiters {
		require.NoError(t, errs[i], "waiter %d", i)
		assert.Equal(t, "ok", outs[i], "waiter %d", i)
	}
	assert.EqualValues(t, 2, renders.Load(), "the leader's render, then one taken over")
	out, err := render(c, call, body(context.Background()))
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
	assert.EqualValues(t, 2, renders.Load(), "the render taken over was stored")
}

func TestRenderPanicReleasesWaiters(t *testing.T) {
	const waiters = 3
	c, _ := newTestCache(Options{})
	call := Call{Site: testSite(), Name: "p"}
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock()

	var recovered any
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { recovered = recover() }()
		_ = c.Render(context.Background(), call, io.Discard, func(io.Writer) error {
			<-release
			panic("boom")
		})
	})
	testkit.Eventually(t, "the leader renders", func() bool { return c.group.InFlight(c.Key("p")) })
	errs := make([]error, waiters)
	for i := range waiters {
		wg.Go(func() { _, errs[i] = render(c, call, okBody) })
	}
	testkit.Eventually(t, "the others wait", func() bool { return int(c.Stats().Waiting) == waiters })
	unblock()
	within(t, wg.Wait)

	assert.Equal(t, "boom", recovered, "the panic reaches the leader's caller")
	for i := range waiters {
		assert.ErrorIs(t, errs[i], ErrPanicked, "waiter %d", i)
	}
	body, calls := countingBody("after")
	out, err := render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, "after", out)
	assert.EqualValues(t, 1, calls.Load(), "the panicked render left nothing behind")
}

func TestRenderWaitEndsWithContext(t *testing.T) {
	tests := []struct {
		name string
		// ctx returns the waiter's context and a function the test calls
		// once the waiter waits.
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled while waiting", func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, context.Canceled},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(Options{})
			call := Call{Site: testSite(), Name: "slow"}
			release := make(chan struct{})
			unblock := sync.OnceFunc(func() { close(release) })
			defer unblock()
			var wg sync.WaitGroup
			var leaderErr error
			wg.Go(func() {
				_, leaderErr = render(c, call, func(w io.Writer) error {
					<-release
					return okBody(w)
				})
			})
			testkit.Eventually(t, "the leader renders", func() bool { return c.group.InFlight(c.Key("slow")) })

			ctx, cancel := tt.ctx()
			defer cancel()
			var wrote atomic.Bool
			w := writerFunc(func(p []byte) (int, error) { wrote.Store(true); return len(p), nil })
			waiterDone := make(chan error, 1)
			go func() { waiterDone <- c.Render(ctx, call, w, okBody) }()
			if ctx.Err() == nil {
				testkit.Eventually(t, "the second render waits", func() bool { return int(c.Stats().Waiting) == 1 })
				cancel()
			}
			var waitErr error
			within(t, func() { waitErr = <-waiterDone })
			assert.ErrorIs(t, waitErr, tt.want)
			assert.Equal(t, ctx.Err(), waitErr, "the waiter returns ctx.Err()")
			assert.False(t, wrote.Load(), "a waiter whose context ended writes nothing")
			assert.Zero(t, int(c.Stats().Waiting))

			unblock()
			within(t, wg.Wait)
			require.NoError(t, leaderErr, "the leader is unaffected")
			assert.Equal(t, Stats{Misses: 2, Renders: 1, Waits: 1}, c.Stats())
		})
	}
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// lateStoreBackend misses the first Get and, at that moment, stores the
// fragment as a render finishing on another goroutine would.
type lateStoreBackend struct {
	*backends.Simple
	once  sync.Once
	value []byte
}

func (b *lateStoreBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		_ = b.Simple.Set(ctx, key, b.value, backends.NoExpiry) // Simple.Set fails only after Close
		return nil, false, nil
	}
	return b.Simple.Get(ctx, key)
}

func TestMissStoredByAnotherRenderBeforeTheFlightIsNotRenderedAgain(t *testing.T) {
	backend := &lateStoreBackend{Simple: backends.NewSimple(0), value: []byte("\xf6stored elsewhere")}
	c := New(backends.New(backend, backends.CacheOptions{}), Options{})
	body, calls := countingBody("rendered here")

	out, err := render(c, Call{Site: testSite(), Timeout: 60, Name: "late"}, body)

	require.NoError(t, err)
	assert.Equal(t, "stored elsewhere", out)
	assert.Zero(t, calls.Load(), "the body must not run when the fragment appeared before the flight started")
	st := c.Stats()
	assert.Equal(t, Stats{Misses: 1, Waits: 1}, st)
}
