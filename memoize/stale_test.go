package memoize

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// A call that finds its result past Timeout gets it at once, while the
// function runs once in the background to replace it.
func TestStaleResultIsReturnedWhileOneBackgroundRunRefreshesIt(t *testing.T) {
	const callers = 8
	cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var runs atomic.Int64
	release := make(chan struct{})
	f := Func(cache, func(ctx context.Context, n int) (string, error) {
		v := runs.Add(1)
		if v == 2 {
			<-release
		}
		return fmt.Sprintf("v%d", v), nil
	}, Options{Name: "swr", Timeout: 50 * time.Millisecond, StaleWhileRevalidate: time.Hour})
	ctx := context.Background()
	got, err := f.Call(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "v1", got)
	time.Sleep(60 * time.Millisecond)

	var wg sync.WaitGroup
	outs := make([]string, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			outs[i], err = f.Call(ctx, 1)
			assert.NoError(t, err)
		})
	}
	wg.Wait() // nobody waits for the refresh
	for i := range callers {
		assert.Equal(t, "v1", outs[i], "caller %d gets the stale result", i)
	}
	// The refresh blocks until release, so no other run can have ended.
	testkit.Eventually(t, "the background run starts", func() bool { return runs.Load() >= 2 })
	assert.EqualValues(t, 2, runs.Load(), "one background run for all the stale callers")
	assert.EqualValues(t, 1, f.Stats().Refreshes)
	close(release)
	// v2 lives 50 ms: on a loaded machine it can go stale before a poll
	// reads it, and be refreshed again (v3…); any of them is the refresh.
	testkit.Eventually(t, "the refreshed result is stored", func() bool {
		got, err := f.Call(ctx, 1)
		return err == nil && got != "v1"
	})
	assert.GreaterOrEqual(t, f.Stats().StaleHits, uint64(callers))
}

func TestStaleWhileRevalidateStoresWithTheGracePeriod(t *testing.T) {
	cache, rec := testkit.Record(backends.New(backends.NewSimple(0), backends.CacheOptions{DefaultTimeout: time.Hour}))
	for _, tt := range []struct {
		timeout time.Duration
		want    time.Duration
	}{{time.Minute, time.Minute + 30*time.Second}, {0, time.Hour + 30*time.Second}, {backends.NoExpiry, backends.NoExpiry}} {
		name := fmt.Sprintf("ttl%v", tt.timeout)
		f := Func(cache, func(ctx context.Context, n int) (int, error) { return n, nil },
			Options{Name: name, Timeout: tt.timeout, StaleWhileRevalidate: 30 * time.Second})
		_, err := f.Call(context.Background(), 1)
		require.NoError(t, err)
		found := false
		for k, ttl := range rec.Written() {
			if k != f.m.verKey && len(k) == 22 && ttl == tt.want {
				found = true
			}
		}
		assert.True(t, found, "timeout %v: an entry stored for %v: %v", tt.timeout, tt.want, rec.Written())
	}
}

func TestEarlyRefreshRunsInTheBackground(t *testing.T) {
	for _, tt := range []struct {
		beta      float64
		refreshes uint64
	}{{1e12, 1}, {1e-12, 0}} {
		cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
		var runs atomic.Int64
		f := Func(cache, func(ctx context.Context, n int) (int64, error) {
			time.Sleep(2 * time.Millisecond)
			return runs.Add(1), nil
		}, Options{Name: "early", Timeout: time.Hour, EarlyRefresh: tt.beta})
		ctx := context.Background()
		got, err := f.Call(ctx, 1)
		require.NoError(t, err)
		require.EqualValues(t, 1, got)
		got, err = f.Call(ctx, 1)
		require.NoError(t, err)
		assert.EqualValues(t, 1, got, "an early refresh still returns the stored result")
		if tt.refreshes == 1 {
			testkit.Eventually(t, "the background refresh ran", func() bool { return f.Stats().Refreshes == tt.refreshes && runs.Load() == 2 })
		} else {
			time.Sleep(10 * time.Millisecond)
			assert.Zero(t, f.Stats().Refreshes)
		}
	}
}

// A panic in a background refresh is logged; it does not kill the process.
func TestPanicInBackgroundRefreshIsLogged(t *testing.T) {
	var logs lockedBuffer
	cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var runs atomic.Int64
	f := Func(cache, func(ctx context.Context, n int) (int, error) {
		if runs.Add(1) > 1 {
			panic("refresh exploded")
		}
		return n, nil
	}, Options{Name: "panicky", Timeout: 20 * time.Millisecond, StaleWhileRevalidate: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	_, err := f.Call(context.Background(), 1)
	require.NoError(t, err)
	time.Sleep(30 * time.Millisecond)
	got, err := f.Call(context.Background(), 1)
	require.NoError(t, err)
	assert.Equal(t, 1, got)
	testkit.Eventually(t, "the panic is logged", func() bool { return bytes.Contains(logs.Bytes(), []byte("refresh exploded")) })
}

// lockedBuffer is a log destination written from other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// switchable is a backend whose reads and writes fail while down is set.
type switchable struct {
	backends.Backend
	down atomic.Bool
}

var errDown = fmt.Errorf("connection refused")

func (s *switchable) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if s.down.Load() {
		return nil, errDown
	}
	return s.Backend.GetMany(ctx, keys)
}

func (s *switchable) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.down.Load() {
		return errDown
	}
	return s.Backend.Set(ctx, key, value, ttl)
}

// While the backend cannot be reached, a result kept in memory is returned
// until its grace period ends; DeleteMemoized drops what is kept.
func TestStaleCopyIsReturnedWhileTheBackendFails(t *testing.T) {
	ctx := context.Background()
	b := &switchable{Backend: backends.NewSimple(0)}
	cache := backends.New(b, backends.CacheOptions{})
	var runs atomic.Int64
	f := Func(cache, func(ctx context.Context, n int) (int64, error) { return runs.Add(1), nil },
		Options{Name: "kept", Timeout: 50 * time.Millisecond, StaleWhileRevalidate: 100 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)})
	got, err := f.Call(ctx, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, got)
	stored := time.Now()

	b.down.Store(true)
	got, err = f.Call(ctx, 1)
	require.NoError(t, err)
	if time.Since(stored) < 150*time.Millisecond { // a loaded machine may be slower
		assert.EqualValues(t, 1, got, "the kept result")
		assert.EqualValues(t, 1, runs.Load())
		assert.EqualValues(t, 1, f.Stats().StaleHits)
	}
	time.Sleep(150*time.Millisecond - time.Since(stored))
	got, err = f.Call(ctx, 1)
	require.NoError(t, err)
	assert.Greater(t, got, int64(1), "past its grace period the copy is not returned: the function runs")

	b.down.Store(false)
	_, err = f.Call(ctx, 2)
	require.NoError(t, err)
	require.NoError(t, f.DeleteMemoized(ctx))
	b.down.Store(true)
	before := runs.Load()
	_, err = f.Call(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, before+1, runs.Load(), "DeleteMemoized drops the kept results")
}
