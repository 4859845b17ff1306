package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
)

// roundTrips is a go-redis hook that counts what a client sends to its
// server: one per command and one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// nearInstance is one application instance: a client with a round-trip
// counter and a near-cached backend over it.
type nearInstance struct {
	client *goredis.Client
	trips  *roundTrips
	be     *redis.Backend
}

const nearPrefix = "near:"

func newNearInstance(t testing.TB, addr string, opt redis.NearCacheOptions) *nearInstance {
	t.Helper()
	client := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: 1, DialTimeout: time.Second, ReadTimeout: time.Second})
	trips := &roundTrips{}
	client.AddHook(trips)
	if opt.Prefixes == nil {
		opt.Prefixes = []string{nearPrefix}
	}
	be, err := redis.NewWithNearCache(client, opt)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = be.Close()
		_ = client.Close()
	})
	waitTracking(t, be)
	in := &nearInstance{client: client, trips: trips, be: be}
	in.warmPools(t)
	return in
}

func waitTracking(t testing.TB, be *redis.Backend) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, ok := be.NearCacheStats()
		return ok && st.Tracking
	}, 20*time.Second, 5*time.Millisecond, "the tracking connection subscribes")
}

func nearStats(t testing.TB, be *redis.Backend) backends.NearCacheStats {
	st, ok := be.NearCacheStats()
	require.True(t, ok)
	return st
}

// getTrips returns key's value through in and the round trips it cost.
func (in *nearInstance) get(t testing.TB, key string) (string, bool, int64) {
	t.Helper()
	before := in.trips.n.Load()
	v, ok, err := in.be.Get(context.Background(), key)
	require.NoError(t, err)
	return string(v), ok, in.trips.n.Load() - before
}

// eventuallyNear waits until in serves key's value want from memory: the
// invalidation of the write that stored it may arrive after a first read
// and drop that read's copy.
func (in *nearInstance) eventuallyNear(t testing.TB, key, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v, ok, trips := in.get(t, key)
		assert.LessOrEqual(t, trips, int64(1), "a read is at most one round trip")
		return ok && v == want && trips == 0
	}, 10*time.Second, time.Millisecond, "%s is kept near with value %q", key, want)
}

// warmPools makes the client open its connections (whose handshakes the
// hook also sees) before round trips are counted.
func (in *nearInstance) warmPools(t testing.TB) {
	ctx := context.Background()
	require.NoError(t, in.client.Ping(ctx).Err())
	_, err := in.client.Pipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); return nil })
	require.NoError(t, err)
}

func TestRedisNearCacheServesHitsWithoutRoundTrips(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	a.warmPools(t)
	ctx := context.Background()
	require.NoError(t, a.be.Set(ctx, nearPrefix+"k", []byte("v1"), time.Minute))
	a.eventuallyNear(t, nearPrefix+"k", "v1")
	for range 3 {
		v, ok, trips := a.get(t, nearPrefix+"k")
		require.True(t, ok)
		assert.Equal(t, "v1", v)
		assert.Zero(t, trips, "a warm read is served from memory")
	}

	// Keys outside the tracked prefixes are never kept.
	require.NoError(t, a.be.Set(ctx, "other:k", []byte("x"), time.Minute))
	for range 3 {
		_, ok, trips := a.get(t, "other:k")
		require.True(t, ok)
		assert.Equal(t, int64(1), trips)
	}
	// A miss is not kept either: the key may be written any time.
	for range 3 {
		_, ok, trips := a.get(t, nearPrefix+"absent")
		assert.False(t, ok)
		assert.Equal(t, int64(1), trips)
	}

	// GetMany: at most one round trip, none once every key is near.
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = nearPrefix + "m" + strconv.Itoa(i)
		require.NoError(t, a.be.Set(ctx, keys[i], []byte("value"+strconv.Itoa(i)), time.Minute))
	}
	withAbsent := append(slices.Clone(keys), nearPrefix+"absent", nearPrefix+"k")
	check := func(vals [][]byte) {
		require.Len(t, vals, len(withAbsent))
		for i := range 10 {
			assert.Equal(t, "value"+strconv.Itoa(i), string(vals[i]), "key %d", i)
		}
		assert.Nil(t, vals[10])
		assert.Equal(t, "v1", string(vals[11]))
	}
	require.Eventually(t, func() bool {
		before := a.trips.n.Load()
		vals, err := a.be.GetMany(ctx, withAbsent)
		require.NoError(t, err)
		check(vals)
		trips := a.trips.n.Load() - before
		assert.Equal(t, int64(1), trips, "the absent key is always read, with the others not near, in one round trip")
		before = a.trips.n.Load()
		vals, err = a.be.GetMany(ctx, keys)
		require.NoError(t, err)
		require.Len(t, vals, len(keys))
		return a.trips.n.Load() == before
	}, 10*time.Second, time.Millisecond, "a GetMany of near keys makes no round trip")
}

// TestRedisNearCacheInvalidation: whatever changes a key, through any
// client, the other instance stops serving its old value.
func TestRedisNearCacheInvalidation(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	b := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = raw.Close() })
	ctx := context.Background()
	key := nearPrefix + "k"

	for _, tc := range []struct {
		name  string
		write func() error
		want  string // "" means a miss
	}{
		{"Set", func() error { return a.be.Set(ctx, key, []byte("new"), time.Minute) }, "new"},
		{"Delete", func() error { _, err := a.be.Delete(ctx, key); return err }, ""},
		{"DeleteMany", func() error { _, err := a.be.DeleteMany(ctx, []string{key}); return err }, ""},
		{"SetMany", func() error { return a.be.SetMany(ctx, map[string][]byte{key: []byte("many")}, time.Minute) }, "many"},
		{"Inc", func() error {
			if err := a.be.Set(ctx, key, []byte("5"), time.Minute); err != nil {
				return err
			}
			_, err := a.be.Inc(ctx, key, 2, time.Minute)
			return err
		}, "7"},
		{"Add after expiry", func() error {
			_, err := a.be.Add(ctx, key, []byte("added"), time.Minute)
			return err
		}, "old"}, // Add does not overwrite
		{"Clear prefix", func() error { return a.be.Clear(ctx, nearPrefix) }, ""},
		{"foreign SET", func() error { return raw.Set(ctx, key, "foreign", 0).Err() }, "foreign"},
		{"foreign FLUSHDB", func() error { return raw.FlushDB(ctx).Err() }, ""},
		{"foreign EXPIRE", func() error { return raw.PExpire(ctx, key, time.Millisecond).Err() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, raw.Set(ctx, key, "old", time.Minute).Err())
			// b reads "old" until it has it near (an invalidation of the
			// Set above may still be on its way).
			b.eventuallyNear(t, key, "old")
			require.NoError(t, tc.write())
			require.Eventually(t, func() bool {
				v, ok, _ := b.get(t, key)
				return (tc.want == "" && !ok) || (ok && v == tc.want)
			}, 10*time.Second, time.Millisecond, "b sees the write")
			// a, the writer, dropped its own copy at once.
			v, ok, _ := a.get(t, key)
			if tc.want == "" {
				assert.False(t, ok)
			} else {
				assert.Equal(t, tc.want, v)
			}
		})
	}
}

// TestRedisNearCacheExpiry: a kept entry never outlives its key's TTL.
func TestRedisNearCacheExpiry(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	ctx := context.Background()
	key := nearPrefix + "ttl"
	require.NoError(t, a.be.Set(ctx, key, []byte("v"), 500*time.Millisecond))
	a.eventuallyNear(t, key, "v")
	require.Eventually(t, func() bool { _, ok, _ := a.get(t, key); return !ok }, 10*time.Second, 5*time.Millisecond)
}

// TestRedisNearCacheInvalidationLatency measures how long after a write on
// instance A returns instance B stops serving the old value: the figure
// BENCHMARKS.md records (p99 within 10 ms is the target). The test itself
// only requires every invalidation to arrive; timing is logged.
func TestRedisNearCacheInvalidationLatency(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	b := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	ctx := context.Background()
	const rounds = 300
	lat := make([]time.Duration, 0, rounds)
	for i := range rounds {
		key := nearPrefix + "lat" + strconv.Itoa(i%10)
		old := []byte("old" + strconv.Itoa(i))
		require.NoError(t, a.be.Set(ctx, key, old, time.Minute))
		b.eventuallyNear(t, key, string(old))
		var write func() error
		if i%2 == 0 {
			write = func() error { _, err := a.be.Delete(ctx, key); return err }
		} else {
			write = func() error { return a.be.Set(ctx, key, []byte("new"), time.Minute) }
		}
		require.NoError(t, write())
		start := time.Now()
		for {
			v, ok, err := b.be.Get(ctx, key)
			require.NoError(t, err)
			if !ok || string(v) != string(old) {
				break
			}
			require.Less(t, time.Since(start), 10*time.Second, "the invalidation arrives")
			runtimeYield()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	t.Logf("invalidation visible on the other instance after the write returned: p50 %v, p90 %v, p99 %v, max %v (%d writes)",
		q(0.5), q(0.9), q(0.99), lat[len(lat)-1], len(lat))
}

func runtimeYield() { time.Sleep(20 * time.Microsecond) }

// TestRedisNearCacheRaceNeverKeepsStale runs readers on B against writers
// on A and on a raw client, then, once the writes have stopped and B has
// seen a last marker write (invalidations arrive in order), requires every
// value B serves to be the server's: a read that raced an invalidation and
// put its stale value back would stay wrong forever.
func TestRedisNearCacheRaceNeverKeepsStale(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	b := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = raw.Close() })
	ctx := context.Background()
	const nkeys = 8
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = nearPrefix + "race" + strconv.Itoa(i)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := keys[(i+w)%nkeys]
				v := fmt.Sprintf("w%d-%d", w, i)
				var err error
				switch {
				case w == 1:
					err = raw.Set(ctx, k, v, time.Minute).Err()
				case i%5 == 0:
					_, err = a.be.Delete(ctx, k)
				default:
					err = a.be.Set(ctx, k, []byte(v), time.Minute)
				}
				assert.NoError(t, err)
			}
		}()
	}
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				if i%3 == 0 {
					_, err := b.be.GetMany(ctx, keys[r:])
					assert.NoError(t, err)
					continue
				}
				_, _, err := b.be.Get(ctx, keys[(i+r)%nkeys])
				assert.NoError(t, err)
			}
		}()
	}
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	marker := nearPrefix + "marker"
	require.NoError(t, b.be.Set(ctx, marker, []byte("0"), time.Minute))
	b.eventuallyNear(t, marker, "0")
	require.NoError(t, raw.Set(ctx, marker, "1", time.Minute).Err())
	require.Eventually(t, func() bool { v, _, _ := b.get(t, marker); return v == "1" }, 10*time.Second, time.Millisecond)
	for _, k := range keys {
		want, err := raw.Get(ctx, k).Result()
		if err == goredis.Nil {
			want = ""
		} else {
			require.NoError(t, err)
		}
		got, _, _ := b.get(t, k)
		assert.Equal(t, want, got, "key %s", k)
	}
	st := nearStats(t, b.be)
	t.Logf("B's near cache: %+v", st)
	assert.Positive(t, st.Hits)
}

// TestRedisNearCacheFlushedWhenStreamLost: killing the tracking connection
// or restarting the server flushes the near cache, which keeps nothing until
// tracking is back, and then serves what the server holds now.
func TestRedisNearCacheFlushedWhenStreamLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, srv *testservers.Server, raw *goredis.Client)
	}{
		{"CLIENT KILL", func(t *testing.T, srv *testservers.Server, raw *goredis.Client) {
			require.NoError(t, raw.Do(context.Background(), "client", "kill", "type", "pubsub").Err())
		}},
		{"server restart", func(t *testing.T, srv *testservers.Server, raw *goredis.Client) {
			srv.Restart()
		}},
		{"server killed", func(t *testing.T, srv *testservers.Server, raw *goredis.Client) {
			srv.Kill()
			srv.Restart()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testservers.Redis(t)
			a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{})
			raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
			t.Cleanup(func() { _ = raw.Close() })
			ctx := context.Background()
			key := nearPrefix + "k"
			require.NoError(t, a.be.Set(ctx, key, []byte("before"), time.Minute))
			a.eventuallyNear(t, key, "before")
			flushes := nearStats(t, a.be).Flushes

			tc.lose(t, srv, raw)
			require.Eventually(t, func() bool { return nearStats(t, a.be).Flushes > flushes }, 10*time.Second, time.Millisecond,
				"the near cache is flushed when its stream is lost")
			// Whatever happened meanwhile, the server's value now wins.
			require.NoError(t, raw.Set(ctx, key, "after", time.Minute).Err())
			waitTracking(t, a.be)
			a.warmPools(t) // new connections: their handshakes are round trips too
			a.eventuallyNear(t, key, "after")
			require.NoError(t, raw.Set(ctx, key, "later", time.Minute).Err())
			require.Eventually(t, func() bool { v, _, _ := a.get(t, key); return v == "later" }, 10*time.Second, time.Millisecond,
				"invalidations flow on the new tracking connection")
		})
	}
}

// TestRedisNearCacheStoppedServer: when the server stops answering
// (SIGSTOP: connections stay open, nothing arrives), the near cache stops
// serving within about two heartbeats and reads go to the server.
func TestRedisNearCacheStoppedServer(t *testing.T) {
	srv := testservers.Redis(t)
	const heartbeat = 100 * time.Millisecond
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{Heartbeat: heartbeat})
	ctx := context.Background()
	key := nearPrefix + "k"
	require.NoError(t, a.be.Set(ctx, key, []byte("v"), time.Minute))
	a.eventuallyNear(t, key, "v")

	srv.Pause()
	paused := time.Now()
	require.Eventually(t, func() bool { return !nearStats(t, a.be).Tracking }, 20*time.Second, time.Millisecond)
	t.Logf("near cache disabled %v after SIGSTOP (heartbeat %v)", time.Since(paused), heartbeat)
	assert.Zero(t, nearStats(t, a.be).Entries)
	before := a.trips.n.Load()
	_, _, err := a.be.Get(ctx, key)
	assert.Error(t, err, "the read went to the stopped server")
	assert.Positive(t, a.trips.n.Load()-before)

	srv.Resume()
	waitTracking(t, a.be)
	a.warmPools(t)
	a.eventuallyNear(t, key, "v")
}

// TestRedisNearCacheLargeValues: a value larger than a shard's share of
// near_cache_bytes is served, from the server every time.
func TestRedisNearCacheLargeValues(t *testing.T) {
	srv := testservers.Redis(t)
	a := newNearInstance(t, srv.Addr, redis.NearCacheOptions{MaxBytes: 4096, MaxEntries: 10})
	a.warmPools(t)
	ctx := context.Background()
	big := make([]byte, 8192)
	require.NoError(t, a.be.Set(ctx, nearPrefix+"big", big, time.Minute))
	for range 2 {
		v, ok, trips := a.get(t, nearPrefix+"big")
		require.True(t, ok)
		assert.Len(t, v, len(big))
		assert.Equal(t, int64(1), trips)
	}
	for i := range 30 {
		k := nearPrefix + "small" + strconv.Itoa(i)
		require.NoError(t, a.be.Set(ctx, k, []byte("v"), time.Minute))
		_, _, _ = a.get(t, k)
	}
	st := nearStats(t, a.be)
	assert.LessOrEqual(t, st.Entries, 10)
	assert.LessOrEqual(t, st.Bytes, int64(4096))
}

func TestRedisNearCacheOptions(t *testing.T) {
	srv := testservers.Redis(t)
	open := func(opts map[string]any) (*backends.Cache, error) {
		settings := map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr, "CACHE_KEY_PREFIX": "opt:"}
		if opts != nil {
			settings["CACHE_OPTIONS"] = opts
		}
		cfg, err := backends.FromMap(settings)
		if err != nil {
			return nil, err
		}
		return backends.Open(cfg)
	}
	for _, tc := range []struct {
		name string
		opts map[string]any
		near bool
		err  string
	}{
		{"off by default", nil, false, ""},
		{"on", map[string]any{"near_cache": true}, true, ""},
		{"bounds", map[string]any{"near_cache": true, "near_cache_entries": 100, "near_cache_bytes": 1 << 20, "near_cache_ttl": "30s", "near_cache_heartbeat": 0.25}, true, ""},
		{"off explicitly", map[string]any{"near_cache": false}, false, ""},
		{"bound without near_cache", map[string]any{"near_cache_entries": 100}, false, "near_cache is not true"},
		{"not a bool", map[string]any{"near_cache": "yes"}, false, "near_cache"},
		{"bad entries", map[string]any{"near_cache": true, "near_cache_entries": 0}, false, "near_cache_entries"},
		{"bad ttl", map[string]any{"near_cache": true, "near_cache_ttl": "soon"}, false, "near_cache_ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be, err := open(tc.opts)
			if tc.err != "" {
				require.ErrorIs(t, err, backends.ErrConfig)
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { _ = be.Close() })
			r := be.Backend().(*redis.Backend)
			_, ok := r.NearCacheStats()
			assert.Equal(t, tc.near, ok)
			if !tc.near {
				return
			}
			waitTracking(t, r)
			ctx := context.Background()
			require.NoError(t, r.Set(ctx, "opt:k", []byte("v"), time.Minute))
			require.Eventually(t, func() bool {
				_, _, err := r.Get(ctx, "opt:k")
				return err == nil && nearStats(t, r).Hits > 0
			}, 10*time.Second, time.Millisecond, "a key under CACHE_KEY_PREFIX is kept near")
			hits := nearStats(t, r).Hits
			require.NoError(t, r.Set(ctx, "elsewhere", []byte("v"), time.Minute))
			for range 3 {
				_, _, err = r.Get(ctx, "elsewhere")
				require.NoError(t, err)
			}
			st := nearStats(t, r)
			assert.Equal(t, hits, st.Hits, "keys outside CACHE_KEY_PREFIX are not kept near")
			assert.Equal(t, 1, st.Entries)
		})
	}

	t.Run("cluster refused", func(t *testing.T) {
		cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": srv.Addr,
			"CACHE_OPTIONS": map[string]any{"near_cache": true}})
		require.NoError(t, err)
		_, err = backends.Open(cfg)
		require.ErrorIs(t, err, redis.ErrNearCacheUnsupported)
		require.ErrorIs(t, err, backends.ErrConfig)
	})
	t.Run("NewWithNearCache needs a *goredis.Client", func(t *testing.T) {
		cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{srv.Addr}})
		t.Cleanup(func() { _ = cc.Close() })
		_, err := redis.NewWithNearCache(cc, redis.NearCacheOptions{})
		require.ErrorIs(t, err, redis.ErrNearCacheUnsupported)
	})
}

// TestRedisNearCacheWithoutTracking: a server that refuses tracking (here
// an ACL user without CLIENT and SUBSCRIBE; Redis before 6 likewise)
// leaves the near cache off, and every read goes to Redis and works.
func TestRedisNearCacheWithoutTracking(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.Do(ctx, "acl", "setuser", "notrack", "on", ">pw", "~*", "+@all", "-client", "-subscribe").Err())
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr, Username: "notrack", Password: "pw"})
	t.Cleanup(func() { _ = client.Close() })
	be, err := redis.NewWithNearCache(client, redis.NearCacheOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	require.NoError(t, be.Set(ctx, "k", []byte("v"), time.Minute))
	for range 20 {
		v, ok, err := be.Get(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "v", string(v))
		time.Sleep(5 * time.Millisecond)
	}
	st := nearStats(t, be)
	assert.False(t, st.Tracking)
	assert.Zero(t, st.Entries)
	assert.Zero(t, st.Hits)
}

// TestRedisNearCacheMalformedMessage: a server (hostile or broken) that
// sends a malformed message on the tracking connection, which makes
// go-redis's PubSub panic, costs a reconnection, not the process.
func TestRedisNearCacheMalformedMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var subscribes atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cmd, err := readCommand(r)
					if err != nil {
						return
					}
					var out string
					switch strings.ToUpper(strings.Join(cmd[:min(2, len(cmd))], " ")) {
					case "CLIENT ID":
						out = ":7\r\n"
					case "SUBSCRIBE " + strings.ToUpper("__redis__:invalidate"):
						subscribes.Add(1)
						out = "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n" +
							"*1\r\n$7\r\nmessage\r\n" // no channel, no payload
					default:
						if strings.EqualFold(cmd[0], "hello") {
							out = "-ERR unknown command 'HELLO'\r\n"
						} else {
							out = "+OK\r\n"
						}
					}
					if _, err := c.Write([]byte(out)); err != nil {
						return
					}
				}
			})
		}
	})
	client := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), Protocol: 2})
	t.Cleanup(func() { _ = client.Close() })
	be, err := redis.NewWithNearCache(client, redis.NearCacheOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	require.Eventually(t, func() bool { return subscribes.Load() >= 3 }, 20*time.Second, time.Millisecond,
		"the tracker survives the malformed message and reconnects")
	assert.Zero(t, nearStats(t, be).Entries)
}

// TestRedisNearCacheSentinel: through Sentinel the tracking connection
// follows the master; after the master is killed the near cache is
// flushed, and once the replica is promoted, writes on it invalidate.
func TestRedisNearCacheSentinel(t *testing.T) {
	set := testservers.Sentinel(t)
	c := openCache(t, map[string]any{
		"CACHE_TYPE":                  "RedisSentinelCache",
		"CACHE_REDIS_SENTINELS":       set.SentinelAddrs,
		"CACHE_REDIS_SENTINEL_MASTER": set.MasterName,
		"CACHE_OPTIONS":               map[string]any{"near_cache": true, "near_cache_heartbeat": "100ms"},
	})
	r := c.Backend().(*redis.Backend)
	waitTracking(t, r)
	ctx := context.Background()
	key := c.KeyPrefix() + "k"
	hitsAfter := func(value string) {
		t.Helper()
		require.Eventually(t, func() bool {
			before := nearStats(t, r).Hits
			v, ok, err := r.Get(ctx, key)
			return err == nil && ok && string(v) == value && nearStats(t, r).Hits > before
		}, 20*time.Second, 5*time.Millisecond, "%q served from the near cache", value)
	}
	master := goredis.NewClient(&goredis.Options{Addr: set.Master.Addr})
	t.Cleanup(func() { _ = master.Close() })
	require.NoError(t, master.Set(ctx, key, "one", time.Minute).Err())
	hitsAfter("one")
	require.NoError(t, master.Set(ctx, key, "two", time.Minute).Err())
	hitsAfter("two")

	flushes := nearStats(t, r).Flushes
	set.KillMaster()
	require.Eventually(t, func() bool { return nearStats(t, r).Flushes > flushes }, 20*time.Second, time.Millisecond,
		"flushed when the master's connection is lost")
	set.WaitMaster(set.Replica.Addr)
	promoted := goredis.NewClient(&goredis.Options{Addr: set.Replica.Addr})
	t.Cleanup(func() { _ = promoted.Close() })
	require.NoError(t, promoted.Set(ctx, key, "three", time.Minute).Err())
	hitsAfter("three")
	require.NoError(t, promoted.Set(ctx, key, "four", time.Minute).Err())
	hitsAfter("four")
}
