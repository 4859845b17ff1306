package fragment

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/redis" // RedisCache
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// A render that finds the key locked by another process waits for that
// process's fragment and serves it without rendering.
func TestLockedKeyWaitsForTheOtherProcess(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{Lock: 5 * time.Second})
	call := Call{Site: testSite(), Timeout: 60, Name: "locked"}
	key := c.Key("locked")
	added, err := store.Add(ctx, lockKey(key), "other process", 5*time.Second)
	require.NoError(t, err)
	require.True(t, added)

	done := make(chan struct{})
	var out string
	body, calls := countingBody("rendered here")
	go func() {
		defer close(done)
		out, err = render(c, call, body)
	}()
	testkit.Eventually(t, "the render waits for the other process", func() bool { return c.Stats().LockWaits == 1 })
	require.NoError(t, store.Set(ctx, key, []byte("rendered elsewhere"), time.Minute)) // the other process stores...
	_, err2 := store.Delete(ctx, lockKey(key))                                         // ...and unlocks
	require.NoError(t, err2)
	within(t, func() { <-done })
	require.NoError(t, err)
	assert.Equal(t, "rendered elsewhere", out)
	assert.Zero(t, calls.Load())
	assert.EqualValues(t, 1, c.Stats().Waits)
}

// A lock whose holder crashed blocks nobody past its lifetime: the render
// stops waiting when the lock expires, and renders.
func TestLockOfACrashedHolderExpires(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{Lock: time.Minute})
	call := Call{Site: testSite(), Timeout: 60, Name: "orphan"}
	added, err := store.Add(ctx, lockKey(c.Key("orphan")), "crashed process", 100*time.Millisecond)
	require.NoError(t, err)
	require.True(t, added)
	body, calls := countingBody("rendered here")
	var out string
	within(t, func() { out, err = render(c, call, body) })
	require.NoError(t, err)
	assert.Equal(t, "rendered here", out)
	assert.EqualValues(t, 1, calls.Load())
	has, err := store.Has(ctx, lockKey(c.Key("orphan")))
	require.NoError(t, err)
	assert.False(t, has, "the lock is released after the render")
}

// LockWait bounds the wait even while the lock lives.
func TestLockWaitBoundsTheWait(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{Lock: time.Hour, LockWait: 50 * time.Millisecond})
	call := Call{Site: testSite(), Timeout: 60, Name: "slow"}
	_, err := store.Add(ctx, lockKey(c.Key("slow")), "slow process", time.Hour)
	require.NoError(t, err)
	body, calls := countingBody("rendered here")
	var out string
	within(t, func() { out, err = render(c, call, body) })
	require.NoError(t, err)
	assert.Equal(t, "rendered here", out)
	assert.EqualValues(t, 1, calls.Load())
}

// A stale fragment whose refresh another process holds the lock of is
// served stale, without waiting or rendering.
func TestStaleFragmentLockedElsewhereIsServedStale(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{Lock: time.Hour, StaleWhileRevalidate: time.Hour})
	call := Call{Site: testSite(), Timeout: 0.05, Name: "s"}
	body, calls := countingBody("v1")
	_, err := render(c, call, body)
	require.NoError(t, err)
	time.Sleep(60 * time.Millisecond)
	_, err = store.Add(ctx, lockKey(c.Key("s")), "other process", time.Hour)
	require.NoError(t, err)
	var out string
	within(t, func() { out, err = render(c, call, body) })
	require.NoError(t, err)
	assert.Equal(t, "v1", out)
	assert.EqualValues(t, 1, calls.Load())
	assert.EqualValues(t, 1, c.Stats().StaleHits)
}

// The cross-process test runs this test binary three times as helper
// processes (FRAGCACHE_LOCK_HELPER set), each rendering one cold fragment
// from many goroutines over one real Redis.
const (
	lockProcesses  = 3
	lockGoroutines = 64 // spread over the processes
)

// lockTestOptions are the CACHE_OPTIONS of the cross-process lock test.
var lockTestOptions = map[string]any{"dial_timeout": "30s", "read_timeout": "30s", "write_timeout": "30s", "breaker_failures": 0}

func TestLockHelperProcess(t *testing.T) {
	if os.Getenv("FRAGCACHE_LOCK_HELPER") == "" {
		t.Skip("a helper process of TestCrossProcessLockRendersOnce")
	}
	ctx := context.Background()
	n, _ := strconv.Atoi(os.Getenv("FRAGCACHE_LOCK_GOROUTINES"))
	lock, _ := time.ParseDuration(os.Getenv("FRAGCACHE_LOCK"))
	// The test counts body runs across processes: a lookup that timed out
	// under load would render fail-open and count twice, so the cache-safe
	// 250 ms defaults give way to generous timeouts and no breaker here.
	store, err := backends.Open(backends.Config{Type: "RedisCache", Settings: map[string]any{"CACHE_REDIS_URL": os.Getenv("FRAGCACHE_LOCK_REDIS")}, KeyPrefix: os.Getenv("FRAGCACHE_LOCK_PREFIX"), Options: lockTestOptions})
	require.NoError(t, err)
	defer store.Close()
	c := New(store, Options{Lock: lock})
	_, err = store.Inc(ctx, "ready", 1)
	require.NoError(t, err)
	testkit.Eventually(t, "the go signal", func() bool { ok, err := store.Has(ctx, "go"); return err == nil && ok })
	call := Call{Site: testSite(), Timeout: 60, Name: "cold"}
	body := func(w io.Writer) error {
		if _, err := store.Inc(ctx, "evals", 1); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // long enough for every other render to arrive
		_, err := io.WriteString(w, "<p>cold fragment</p>")
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]string, n)
	for i := range n {
		wg.Go(func() { outs[i], errs[i] = render(c, call, body) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, "<p>cold fragment</p>", outs[i])
	}
}

// Three processes on one Redis, 64 concurrent cold renders of one fragment
// spread across them: with the lock the body runs once in all, without it
// once per process.
func TestCrossProcessLockRendersOnce(t *testing.T) {
	srv := testservers.Redis(t)
	for _, tt := range []struct {
		name string
		lock time.Duration
	}{{"with the lock", 5 * time.Second}, {"without the lock", 0}} {
		t.Run(tt.name, func(t *testing.T) {
			prefix := fmt.Sprintf("lock-%d:", time.Now().UnixNano())
			store, err := backends.Open(backends.Config{Type: "RedisCache", Settings: map[string]any{"CACHE_REDIS_URL": "redis://" + srv.Addr}, KeyPrefix: prefix})
			require.NoError(t, err)
			defer store.Close()
			ctx := context.Background()
			var cmds []*exec.Cmd
			outs := make([]*lockedBuffer, lockProcesses)
			for p := range lockProcesses {
				n := lockGoroutines / lockProcesses
				if p < lockGoroutines%lockProcesses {
					n++
				}
				cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1", "-test.v")
				cmd.Env = append(os.Environ(), "FRAGCACHE_LOCK_HELPER=1", "FRAGCACHE_LOCK_GOROUTINES="+strconv.Itoa(n),
					"FRAGCACHE_LOCK="+tt.lock.String(), "FRAGCACHE_LOCK_REDIS=redis://"+srv.Addr, "FRAGCACHE_LOCK_PREFIX="+prefix)
				outs[p] = &lockedBuffer{}
				cmd.Stdout, cmd.Stderr = outs[p], outs[p]
				require.NoError(t, cmd.Start())
				cmds = append(cmds, cmd)
			}
			t.Cleanup(func() {
				for _, cmd := range cmds {
					_ = cmd.Process.Kill()
				}
			})
			testkit.Eventually(t, "every helper is ready", func() bool {
				var n int
				found, err := store.Get(ctx, "ready", &n)
				return err == nil && found && n == lockProcesses
			})
			require.NoError(t, store.Set(ctx, "go", 1, time.Minute))
			for p, cmd := range cmds {
				waited := make(chan error, 1)
				go func() { waited <- cmd.Wait() }()
				select {
				case err := <-waited:
					require.NoError(t, err, "helper %d:\n%s", p, outs[p])
				case <-time.After(60 * time.Second):
					t.Fatalf("helper %d did not finish:\n%s", p, outs[p])
				}
			}
			var evals int
			_, err = store.Get(ctx, "evals", &evals)
			require.NoError(t, err)
			t.Logf("%d processes, %d concurrent cold renders of one fragment: %d body evaluations", lockProcesses, lockGoroutines, evals)
			if tt.lock > 0 {
				assert.Equal(t, 1, evals, "with the lock the fragment is rendered once across the processes")
			} else {
				assert.GreaterOrEqual(t, evals, 1)
			}
		})
	}
}

// lockedBuffer collects a helper's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
