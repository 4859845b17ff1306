package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// faultTimeouts keep a dead server from stalling renders for go-redis's
// 5 s defaults.
var faultTimeouts = map[string]any{"dial_timeout": "250ms", "read_timeout": "250ms", "write_timeout": "250ms"}

// openCache opens a cache from Flask-style settings, closed when t ends.
func openCache(t *testing.T, settings map[string]any) *backends.Cache {
	t.Helper()
	cfg, err := backends.FromMap(settings)
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// renderLoad renders ten named fragments from many goroutines and counts
// renders whose error or output is wrong.
type renderLoad struct {
	fc       *fragment.Cache
	renders  atomic.Int64
	failures atomic.Int64
	firstErr atomic.Value // string
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

const loadFragments = 10

func fragmentText(i int) string { return "<ul>fragment " + strconv.Itoa(i) + "</ul>" }

// startRenderLoad starts n goroutines rendering until Stop.
func startRenderLoad(fc *fragment.Cache, n int) *renderLoad {
	l := &renderLoad{fc: fc, stop: make(chan struct{})}
	for g := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var out bytes.Buffer
			for i := g; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				f := i % loadFragments
				out.Reset()
				err := fc.Render(context.Background(), fragmentCall("load-"+strconv.Itoa(f)), &out, func(w io.Writer) error {
					_, err := io.WriteString(w, fragmentText(f))
					return err
				})
				l.renders.Add(1)
				if err != nil || out.String() != fragmentText(f) {
					l.failures.Add(1)
					l.firstErr.CompareAndSwap(nil, fmt.Sprintf("err %v, output %q", err, out.String()))
				}
			}
		}()
	}
	return l
}

// Stop ends the load and waits for its goroutines; it may be called again.
func (l *renderLoad) Stop() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// waitUntil polls cond every millisecond and returns how long it took to
// hold, or fails t after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// TestRedisFailOpenWhileServerRestarts kills redis-server under 64
// goroutines rendering cached fragments: no render may fail, the errors are
// counted, and hits come back within a second of the restart.
func TestRedisFailOpenWhileServerRestarts(t *testing.T) {
	srv := testservers.Redis(t)
	c := openCache(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr, "CACHE_OPTIONS": faultTimeouts})
	fc := fragment.New(c, fragment.Options{Logger: slog.New(slog.DiscardHandler)})
	load := startRenderLoad(fc, 64)
	defer load.Stop()

	waitUntil(t, 5*time.Second, "hits before the kill", func() bool { return fc.Stats().Hits > 1000 })
	srv.Kill()
	killed := fc.Stats()
	waitUntil(t, 5*time.Second, "backend errors after the kill", func() bool {
		st := fc.Stats()
		return st.BackendErrors+st.Skips > killed.BackendErrors+killed.Skips+100
	})
	assert.NotZero(t, c.Breaker().Stats().Opens, "the breaker opened")
	time.Sleep(time.Second) // long enough for go-redis to give up dialing and probe once a second

	srv.Restart()
	restarted := fc.Stats()
	resumed := waitUntil(t, 10*time.Second, "hits after the restart", func() bool { return fc.Stats().Hits > restarted.Hits })
	time.Sleep(200 * time.Millisecond)
	load.Stop()

	end := fc.Stats()
	t.Logf("renders %d, failed %d; hits %d, backend errors %d; hits resumed %v after the restart",
		load.renders.Load(), load.failures.Load(), end.Hits, end.BackendErrors, resumed)
	assert.Zero(t, load.failures.Load(), "failed renders; first: %v", load.firstErr.Load())
	assert.Greater(t, end.BackendErrors, killed.BackendErrors, "backend errors counted")
	// After PoolSize failed dials go-redis's pool stops dialing and
	// probes the server once a second (internal/pool tryDial), so hits
	// resume within one probe interval of the restart, plus a round trip
	// (logged above). The bound is generous: on a loaded machine the probe
	// and the round trip run late (3.2 s seen with the machine shared by
	// several test runs).
	assert.Less(t, resumed, 5*time.Second, "hits resumed after the restart")
	assert.Greater(t, end.Hits, restarted.Hits+100, "hits after the restart")
}

// TestRedisSentinelFailover kills the master with SIGKILL under 64
// goroutines rendering cached fragments: no render may fail, and writes
// land on the promoted replica within 5 s.
func TestRedisSentinelFailover(t *testing.T) {
	set := testservers.Sentinel(t)
	c := openCache(t, map[string]any{
		"CACHE_TYPE":                  "RedisSentinelCache",
		"CACHE_REDIS_SENTINELS":       set.SentinelAddrs,
		"CACHE_REDIS_SENTINEL_MASTER": set.MasterName,
		"CACHE_OPTIONS":               faultTimeouts,
	})
	ctx := t.Context()
	fc := fragment.New(c, fragment.Options{Logger: slog.New(slog.DiscardHandler)})
	load := startRenderLoad(fc, 64)
	defer load.Stop()
	waitUntil(t, 5*time.Second, "hits before the kill", func() bool { return fc.Stats().Hits > 1000 })

	replica := goredis.NewClient(&goredis.Options{Addr: set.Replica.Addr})
	t.Cleanup(func() { _ = replica.Close() })
	before := fc.Stats()
	killedAt := time.Now()
	set.KillMaster()
	var failedWrites int
	waitUntil(t, 10*time.Second, "a write on the new master", func() bool {
		stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := c.Set(ctx, "after-kill", stamp); err != nil {
			failedWrites++
			return false
		}
		// The promoted replica holds the cache's key as Set wrote it.
		got, err := replica.Get(ctx, c.KeyPrefix()+"after-kill").Result()
		return err == nil && got == "\xf5"+stamp
	})
	resumed := time.Since(killedAt)
	set.WaitMaster(set.Replica.Addr)
	promoted := fc.Stats()
	waitUntil(t, 10*time.Second, "hits on the new master", func() bool { return fc.Stats().Hits > promoted.Hits+100 })
	// The render load stops here: what follows checks where reads go, and
	// 64 renders competing for the pool make a write time out on a loaded
	// machine (the pool and read timeouts are 250 ms), which says nothing
	// about that.
	load.Stop()

	// Reads follow the master: what was written is read back at once.
	misses := 0
	for i := range 200 {
		require.NoError(t, c.Set(ctx, "raw", i))
		var got int
		found, err := c.Get(ctx, "raw", &got)
		require.NoError(t, err)
		if !found || got != i {
			misses++
		}
	}

	end := fc.Stats()
	t.Logf("renders %d, failed %d; backend errors %d; %d failed writes; writes resumed on the new master %v after the kill",
		load.renders.Load(), load.failures.Load(), end.BackendErrors-before.BackendErrors, failedWrites, resumed)
	assert.Zero(t, load.failures.Load(), "failed renders; first: %v", load.firstErr.Load())
	assert.Greater(t, end.BackendErrors, before.BackendErrors, "backend errors counted")
	// Sentinel's down-after (1 s here) and election take about 2-3 s; the
	// bound is generous because a loaded machine delays both (measured
	// figure logged above).
	assert.Less(t, resumed, 10*time.Second, "writes resumed on the new master")
	assert.Zero(t, misses, "reads after writes that missed")
	assert.Greater(t, end.Hits, before.Hits, "hits after the failover")
}

// TestRedisAuthenticationErrors checks that refused credentials give an
// error that wraps backends.ErrAuth and keeps the server's reason.
func TestRedisAuthenticationErrors(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := t.Context()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.ConfigSet(ctx, "requirepass", "right-pw").Err())
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "cacheuser", "on", ">user-pw", "~*", "+@all").Err())

	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		reason   string // in the error; "" means the settings are right
	}{
		{"no password", base(nil), "NOAUTH"},
		{"wrong password", base(map[string]any{"CACHE_REDIS_PASSWORD": "wrong"}), "WRONGPASS"},
		{"wrong password in the URL", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://:wrong@" + srv.Addr}, "WRONGPASS"},
		{"wrong user password", base(map[string]any{"CACHE_REDIS_PASSWORD": "right-pw", "CACHE_OPTIONS": map[string]any{"username": "cacheuser"}}), "WRONGPASS"},
		{"unknown user", base(map[string]any{"CACHE_REDIS_PASSWORD": "user-pw", "CACHE_OPTIONS": map[string]any{"username": "nobody"}}), "WRONGPASS"},
		{"right password", base(map[string]any{"CACHE_REDIS_PASSWORD": "right-pw"}), ""},
		{"right user and password", base(map[string]any{"CACHE_REDIS_PASSWORD": "user-pw", "CACHE_OPTIONS": map[string]any{"username": "cacheuser"}}), ""},
		{"right user and password in the URL", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://cacheuser:user-pw@" + srv.Addr}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openCache(t, tt.settings)
			_, err := c.GetValue(ctx, "k")
			pingErr := c.Backend().(*redis.Backend).Ping(ctx)
			if tt.reason == "" {
				require.NoError(t, err)
				require.NoError(t, pingErr)
				return
			}
			for _, err := range []error{err, pingErr} {
				require.ErrorIs(t, err, backends.ErrAuth)
				assert.Contains(t, err.Error(), tt.reason)
				assert.Contains(t, err.Error(), "authentication failed")
			}
		})
	}
}

// TestRedisUnreachableServerFailsFast checks that a port nobody listens on
// gives a clear error well within the dial timeout, retries included.
func TestRedisUnreachableServerFailsFast(t *testing.T) {
	const dialTimeout = time.Second
	c := openCache(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + closedPort(t),
		"CACHE_OPTIONS": map[string]any{"dial_timeout": dialTimeout.Seconds()}})
	for i := range 3 { // go-redis changes course after repeated failures; each must be quick
		start := time.Now()
		_, err := c.GetValue(t.Context(), "k")
		took := time.Since(start)
		t.Logf("attempt %d: error after %v: %v", i, took, err)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "connection refused")
		assert.Less(t, took, dialTimeout)
	}
}

// TestRedisSilentServerTimesOut checks that a server that accepts
// connections but never answers costs the read timeout, not a hang.
func TestRedisSilentServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = l.Close()
		conns.Wait()
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { // read and drop whatever comes, never answer
				defer conns.Done()
				_, _ = io.Copy(io.Discard, conn)
				_ = conn.Close()
			}()
		}
	}()
	const readTimeout = 300 * time.Millisecond
	tests := []struct {
		maxRetries int
		limit      time.Duration
	}{
		{-1, readTimeout + 250*time.Millisecond},
		{2, 3*readTimeout + time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max_retries %d", tt.maxRetries), func(t *testing.T) {
			c := openCache(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + l.Addr().String(),
				"CACHE_OPTIONS": map[string]any{"read_timeout": readTimeout.Seconds(), "max_retries": tt.maxRetries}})
			start := time.Now()
			_, err := c.GetValue(t.Context(), "k")
			took := time.Since(start)
			t.Logf("error after %v: %v", took, err)
			require.Error(t, err)
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "a timeout error: %v", err)
			assert.GreaterOrEqual(t, took, readTimeout)
			assert.Less(t, took, tt.limit)
			// The listener is closed in cleanup; the client's connections
			// go with the cache, which t closes first.
			_ = c.Close()
		})
	}
}

// A real Redis killed and restarted: the breaker opens, skips the server,
// and closes once the server answers a probe.
func TestRedisBreakerOpensAndClosesWithTheServer(t *testing.T) {
	srv := testservers.Redis(t)
	c := openCache(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr,
		"CACHE_OPTIONS": map[string]any{"breaker_cooldown": "100ms"}})
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "k", "v"))
	srv.Kill()
	testkit.Eventually(t, "the breaker opens", func() bool {
		_, _ = c.GetValue(ctx, "k")
		return c.Breaker().State() == backends.BreakerOpen
	})
	_, err := c.GetValue(ctx, "k")
	require.ErrorIs(t, err, backends.ErrBreakerOpen)
	srv.Restart()
	testkit.Eventually(t, "the breaker closes", func() bool {
		_, err := c.GetValue(ctx, "k")
		return err == nil && c.Breaker().State() == backends.BreakerClosed
	})
	assert.GreaterOrEqual(t, c.Breaker().Stats().Opens, uint64(1))
}
