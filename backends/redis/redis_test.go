package redis_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
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
	"github.com/fragcache/fragcache/backends/backendtest"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testservers"
)

// go-redis logs dial failures and sentinel events through a global logger
// to stderr; the fault tests provoke hundreds of them on purpose.
func init() { goredis.SetLogger(silentRedisLogger{}) }

type silentRedisLogger struct{}

func (silentRedisLogger) Printf(context.Context, string, ...any) {}

// redisOpts are the conformance suite's promises for every Redis topology:
// millisecond TTLs (SET PX), atomic INCRBY and SET NX.
var redisOpts = backendtest.Options{TTLResolution: time.Millisecond, AtomicInc: true, AtomicAdd: true}

// newRedisBackend returns a factory of backends over new clients made by
// newClient, each closed when its subtest ends.
func newRedisBackend(newClient func() goredis.UniversalClient) func(t *testing.T) backends.Backend {
	return func(t *testing.T) backends.Backend {
		c := newClient()
		t.Cleanup(func() { _ = c.Close() })
		return redis.New(c, redis.Options{})
	}
}

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	t.Run("client", func(t *testing.T) {
		backendtest.Run(t, newRedisBackend(func() goredis.UniversalClient {
			return goredis.NewClient(&goredis.Options{Addr: srv.Addr})
		}), redisOpts)
	})
	t.Run("Open", func(t *testing.T) {
		backendtest.Run(t, func(t *testing.T) backends.Backend {
			return openBackend(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr})
		}, redisOpts)
	})
}

func TestRedisSentinelConformance(t *testing.T) {
	t.Parallel()
	set := testservers.Sentinel(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return openBackend(t, map[string]any{
			"CACHE_TYPE":                  "RedisSentinelCache",
			"CACHE_REDIS_SENTINELS":       set.SentinelAddrs,
			"CACHE_REDIS_SENTINEL_MASTER": set.MasterName,
		})
	}, redisOpts)
}

func TestRedisClusterConformance(t *testing.T) {
	t.Parallel()
	cl := testservers.Cluster(t)
	backendtest.Run(t, func(t *testing.T) backends.Backend {
		return openBackend(t, map[string]any{
			"CACHE_TYPE":          "RedisClusterCache",
			"CACHE_REDIS_CLUSTER": strings.Join(cl.Addrs, ","),
		})
	}, redisOpts)
}

// openBackend opens a cache from Flask-style settings and returns its
// backend, closed when t ends.
func openBackend(t *testing.T, settings map[string]any) backends.Backend {
	t.Helper()
	cfg, err := backends.FromMap(settings)
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.Backend()
}

// commandCounter is a go-redis hook that counts commands and round trips
// (a pipeline is one round trip), and remembers command names.
type commandCounter struct {
	mu    sync.Mutex
	names []string
	trips int
}

func (h *commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.record(cmd)
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.record(cmds...)
		return next(ctx, cmds)
	}
}

func (h *commandCounter) record(cmds ...goredis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	for _, c := range cmds {
		h.names = append(h.names, strings.ToUpper(c.Name()))
	}
}

// reset forgets what was counted so far.
func (h *commandCounter) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names, h.trips = nil, 0
}

// counts returns the command names and round trips since the last reset.
func (h *commandCounter) counts() (names []string, trips int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.names), h.trips
}

// topologyClients starts a Redis server and a Redis Cluster and returns a
// constructor of a new client for each, keyed "standalone" and "cluster",
// with the cluster itself, for tests that count its masters.
func topologyClients(t *testing.T) (map[string]func() goredis.UniversalClient, *testservers.ClusterSet) {
	t.Helper()
	srv := testservers.Redis(t)
	cl := testservers.Cluster(t)
	return map[string]func() goredis.UniversalClient{
		"standalone": func() goredis.UniversalClient { return goredis.NewClient(&goredis.Options{Addr: srv.Addr}) },
		"cluster": func() goredis.UniversalClient {
			return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs})
		},
	}, cl
}

// fragmentCall is one named cache block with a 300 s timeout.
func fragmentCall(name string) fragment.Call {
	return fragment.Call{Site: &fragment.Site{Path: "page.html", Line: 1, Col: 1}, Timeout: 300, Name: name}
}

func TestRedisFragmentHitIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	clients, _ := topologyClients(t)
	for name, newClient := range clients {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			client := newClient()
			t.Cleanup(func() { _ = client.Close() })
			hook := &commandCounter{}
			client.AddHook(hook)
			fc := fragment.New(backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{}), fragment.Options{})
			body := func(w io.Writer) error { _, err := io.WriteString(w, "<ul>fragment</ul>"); return err }

			render := func() string {
				var out bytes.Buffer
				require.NoError(t, fc.Render(ctx, fragmentCall("one-trip"), &out, body))
				return out.String()
			}
			first := render() // miss: GET, GET again inside the flight, SET
			hook.reset()
			second := render()
			names, trips := hook.counts()
			assert.Equal(t, first, second)
			assert.Equal(t, []string{"GET"}, names, "commands of a hit")
			assert.Equal(t, 1, trips, "round trips of a hit")
			assert.Equal(t, uint64(1), fc.Stats().Hits)
		})
	}
}

// TestRedisOperationCommands pins the command each operation sends, and
// that each is one round trip.
func TestRedisOperationCommands(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	hook := &commandCounter{}
	client.AddHook(hook)
	b := redis.New(client, redis.Options{})
	ctx := t.Context()
	tests := []struct {
		name  string
		op    func() error
		want  []string
		trips int
	}{
		{"Get is GET", func() error { _, _, err := b.Get(ctx, "k"); return err }, []string{"GET"}, 1},
		{"Set is SET", func() error { return b.Set(ctx, "k", []byte("v"), time.Second) }, []string{"SET"}, 1},
		{"Add is SET", func() error { _, err := b.Add(ctx, "k", []byte("v"), time.Second); return err }, []string{"SET"}, 1},
		{"Has is EXISTS", func() error { _, err := b.Has(ctx, "k"); return err }, []string{"EXISTS"}, 1},
		{"Delete is UNLINK", func() error { _, err := b.Delete(ctx, "k"); return err }, []string{"UNLINK"}, 1},
		{"GetMany is one MGET", func() error { _, err := b.GetMany(ctx, []string{"a", "b", "c"}); return err }, []string{"MGET"}, 1},
		{"DeleteMany is one UNLINK", func() error { _, err := b.DeleteMany(ctx, []string{"a", "b", "c"}); return err }, []string{"UNLINK"}, 1},
		{"SetMany is one pipeline of SETs", func() error {
			return b.SetMany(ctx, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, time.Second)
		}, []string{"SET", "SET"}, 1},
		{"Inc is one script", func() error { _, err := b.Inc(ctx, "n", 1, time.Second); return err }, []string{"EVALSHA"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first run may dial (HELLO, CLIENT SETINFO) or load the
			// script; the second shows the steady state.
			require.NoError(t, tt.op())
			hook.reset()
			require.NoError(t, tt.op())
			names, trips := hook.counts()
			assert.Equal(t, tt.want, names)
			assert.Equal(t, tt.trips, trips)
		})
	}
}

// TestRedisSetStoresMillisecondTTL checks the TTL the server holds after
// each write, against the TTL asked for, rounded up to a millisecond.
func TestRedisSetStoresMillisecondTTL(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	b := redis.New(client, redis.Options{})
	ctx := t.Context()
	writes := map[string]func(key string, ttl time.Duration) error{
		"Set": func(k string, ttl time.Duration) error { return b.Set(ctx, k, []byte("v"), ttl) },
		"Add": func(k string, ttl time.Duration) error { _, err := b.Add(ctx, k, []byte("v"), ttl); return err },
		"SetMany": func(k string, ttl time.Duration) error {
			return b.SetMany(ctx, map[string][]byte{k: []byte("v")}, ttl)
		},
		"Inc of a missing key": func(k string, ttl time.Duration) error { _, err := b.Inc(ctx, k, 1, ttl); return err },
	}
	ttls := []time.Duration{300 * time.Microsecond, 1500 * time.Microsecond, 90 * time.Second, 7 * 24 * time.Hour}
	for name, write := range writes {
		for _, ttl := range ttls {
			t.Run(fmt.Sprintf("%s with %v", name, ttl), func(t *testing.T) {
				key := name + ttl.String()
				require.NoError(t, write(key, ttl))
				got, err := client.PTTL(ctx, key).Result()
				require.NoError(t, err)
				want := ttl.Round(time.Millisecond)
				if want < ttl {
					want += time.Millisecond
				}
				// The server counts down from the moment it stored the key.
				assert.LessOrEqual(t, got, want)
				assert.Greater(t, got, want-50*time.Millisecond)
			})
		}
		t.Run(name+" without a timeout sets no expiry", func(t *testing.T) {
			key := name + "-forever"
			require.NoError(t, write(key, 0))
			got, err := client.PTTL(ctx, key).Result()
			require.NoError(t, err)
			assert.Equal(t, time.Duration(-1), got, "PTTL of a key without expiry")
		})
	}
}

func TestRedisIncKeepsTheTTLOfAnExistingKey(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	b := redis.New(client, redis.Options{})
	ctx := t.Context()
	require.NoError(t, b.Set(ctx, "n", []byte("41"), time.Hour))
	n, err := b.Inc(ctx, "n", 1, time.Second)
	require.NoError(t, err)
	assert.Equal(t, int64(42), n)
	ttl, err := client.PTTL(ctx, "n").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 59*time.Minute, "Inc replaced the TTL of an existing key")

	require.NoError(t, b.Set(ctx, "forever", []byte("1"), backends.NoExpiry))
	_, err = b.Inc(ctx, "forever", 1, time.Second)
	require.NoError(t, err)
	ttl, err = client.PTTL(ctx, "forever").Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "Inc gave a TTL to a key without one")
}

// TestRedisClusterGroupsBySlot checks that many-key operations on a cluster
// send one MGET or UNLINK per hash slot, as the server counts slots.
func TestRedisClusterGroupsBySlot(t *testing.T) {
	t.Parallel()
	cl := testservers.Cluster(t)
	client := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: cl.Addrs})
	t.Cleanup(func() { _ = client.Close() })
	ctx := t.Context()
	var keys []string
	for i := range 40 {
		keys = append(keys, "k"+strconv.Itoa(i))
	}
	// Hash tags put keys in one slot; an empty tag "{}" does not count.
	// go-redis routes the empty key to a random node, which MOVED corrects.
	keys = append(keys, "{user1}:a", "{user1}:b", "x{user1}y", "{}a", "{}b", "a{", "}b{c}", "{{x}}", "")
	slots := map[int64]bool{}
	for _, k := range keys {
		s, err := client.ClusterKeySlot(ctx, k).Result()
		require.NoError(t, err)
		slots[s] = true
	}
	require.Less(t, len(slots), len(keys), "the hash-tagged keys must share slots")

	hook := &commandCounter{}
	client.AddHook(hook)
	b := redis.New(client, redis.Options{})
	items := map[string][]byte{}
	for _, k := range keys {
		items[k] = []byte("v:" + k)
	}
	require.NoError(t, b.SetMany(ctx, items, time.Minute))

	hook.reset()
	vals, err := b.GetMany(ctx, keys)
	require.NoError(t, err)
	for i, k := range keys {
		assert.Equal(t, "v:"+k, string(vals[i]), "GetMany %q", k)
	}
	names, trips := hook.counts()
	assert.Len(t, names, len(slots), "MGETs sent")
	assert.Equal(t, 1, trips, "GetMany is one pipeline")
	for _, n := range names {
		assert.Equal(t, "MGET", n)
	}

	hook.reset()
	n, err := b.DeleteMany(ctx, append(keys, "missing"))
	require.NoError(t, err)
	assert.Equal(t, len(keys), n)
	names, _ = hook.counts()
	assert.LessOrEqual(t, len(names), len(slots)+1, "UNLINKs sent")
}

// TestRedisClearByPrefix checks Clear against every topology with more keys
// than one SCAN batch returns, and glob characters in the prefix.
func TestRedisClearByPrefix(t *testing.T) {
	t.Parallel()
	clients, cl := topologyClients(t)
	for name, newClient := range clients {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			client := newClient()
			t.Cleanup(func() { _ = client.Close() })
			// Clear talks to each cluster master through its node
			// client, which does not run the cluster client's hooks.
			hook := &commandCounter{}
			if cc, ok := client.(*goredis.ClusterClient); ok {
				cc.OnNewNode(func(node *goredis.Client) { node.AddHook(hook) })
			} else {
				client.AddHook(hook)
			}
			b := redis.New(client, redis.Options{})
			require.NoError(t, b.Clear(ctx, ""))

			const n = 2500
			prefix := `c[1]*?\:`
			items := map[string][]byte{}
			for i := range n {
				items[prefix+strconv.Itoa(i)] = []byte("x")
			}
			bystanders := []string{"c1x:0", "c[1]x:0", `c[1]*?\`, "other", "c" + prefix}
			for _, k := range bystanders {
				items[k] = []byte("keep")
			}
			require.NoError(t, b.SetMany(ctx, items, backends.NoExpiry))

			hook.reset()
			require.NoError(t, b.Clear(ctx, prefix))
			names, _ := hook.counts()
			assert.NotContains(t, names, "KEYS")
			assert.Contains(t, names, "SCAN")

			total := int64(0)
			count := func(ctx context.Context, c *goredis.Client) error {
				n, err := c.DBSize(ctx).Result()
				atomic.AddInt64(&total, n)
				return err
			}
			if cc, ok := client.(*goredis.ClusterClient); ok {
				require.NoError(t, cc.ForEachMaster(ctx, count))
			} else {
				require.NoError(t, count(ctx, client.(*goredis.Client)))
			}
			assert.Equal(t, int64(len(bystanders)), total, "keys left")
			for _, k := range bystanders {
				has, err := b.Has(ctx, k)
				require.NoError(t, err)
				assert.True(t, has, "bystander %q survived", k)
			}

			hook.reset()
			require.NoError(t, b.Clear(ctx, ""))
			total = 0
			if cc, ok := client.(*goredis.ClusterClient); ok {
				require.NoError(t, cc.ForEachMaster(ctx, count))
				names, _ := hook.counts()
				assert.Equal(t, len(cl.Addrs), countOf(names, "FLUSHDB"), "FLUSHDB on every master")
			} else {
				require.NoError(t, count(ctx, client.(*goredis.Client)))
			}
			assert.Zero(t, total, "keys left after Clear without a prefix")
		})
	}
}

func countOf(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}

func TestRedisUserClientStaysOpenAfterClose(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	b := redis.New(client, redis.Options{})
	require.NoError(t, b.Close())
	_, _, err := b.Get(t.Context(), "k")
	require.ErrorIs(t, err, backends.ErrClosed)
	require.NoError(t, client.Ping(t.Context()).Err(), "Close closed the caller's client")
}

func TestRedisUnsupportedClients(t *testing.T) {
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": closedPort(t)}})
	t.Cleanup(func() { _ = ring.Close() })
	tests := []struct {
		name   string
		client goredis.UniversalClient
		want   string
	}{
		{"nil", nil, "nil client"},
		{"Ring", ring, "*goredis.Ring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := redis.New(tt.client, redis.Options{})
			_, _, err := b.Get(t.Context(), "k")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			require.NoError(t, b.Close())
		})
	}
}

// TestRedisOpenClosesItsClient checks that a backend from Open owns its
// client: after Close the server sees no connection from it.
func TestRedisOpenClosesItsClient(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr})
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	r := c.Backend().(*redis.Backend)
	require.NoError(t, r.Ping(t.Context()))
	require.NoError(t, c.Close())
	require.ErrorIs(t, r.Client().Ping(t.Context()).Err(), goredis.ErrClosed)
}

// TestRedisOpenFromSettings opens every topology from Flask-style settings
// against real servers and checks that the cache works and writes where the
// settings say.
func TestRedisOpenFromSettings(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	set := testservers.Sentinel(t)
	cl := testservers.Cluster(t)
	host, port, err := net.SplitHostPort(srv.Addr)
	require.NoError(t, err)
	portNum, err := strconv.Atoi(port)
	require.NoError(t, err)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = raw.Close() })

	tests := []struct {
		name     string
		settings map[string]any
		// wantDB is the database a standalone cache must write into.
		wantDB int
	}{
		{"RedisCache from host and port", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": portNum}, 0},
		{"RedisCache from host, port and db", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": portNum, "CACHE_REDIS_DB": 3}, 3},
		{"old name redis", map[string]any{"CACHE_TYPE": "redis", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": portNum}, 0},
		{"URL wins over host and port", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr, "CACHE_REDIS_HOST": "nowhere.invalid", "CACHE_REDIS_PORT": 1}, 0},
		{"URL db path wins over CACHE_REDIS_DB", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr + "/5", "CACHE_REDIS_DB": 4}, 5},
		{"URL db query wins over CACHE_REDIS_DB", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr + "?db=6", "CACHE_REDIS_DB": 4}, 6},
		{"CACHE_REDIS_DB applies to a URL without db", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr, "CACHE_REDIS_DB": 4}, 4},
		{"CACHE_REDIS_DB applies to a URL with a bare slash", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr + "/", "CACHE_REDIS_DB": 2}, 2},
		{"URL with timeouts in its query", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr + "/1?dial_timeout=1s&read_timeout=500ms"}, 1},
		{"RedisSentinelCache", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINELS": set.SentinelAddrs, "CACHE_REDIS_SENTINEL_MASTER": set.MasterName}, -1},
		{"RedisSentinelCache with [host, port] pairs", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINELS": hostPortPairs(t, set.SentinelAddrs), "CACHE_REDIS_SENTINEL_MASTER": set.MasterName}, -1},
		{"RedisClusterCache", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": strings.Join(cl.Addrs, ",")}, -1},
		{"RedisClusterCache with spaces and one seed node", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": " " + cl.Addrs[1] + " "}, -1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			tt.settings["CACHE_KEY_PREFIX"] = fmt.Sprintf("open%d:", i)
			cfg, err := backends.FromMap(tt.settings)
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			require.NoError(t, c.Set(ctx, "k", "v"))
			var got string
			found, err := c.Get(ctx, "k", &got)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, "v", got)
			n, err := c.Inc(ctx, "n", 2)
			require.NoError(t, err)
			assert.Equal(t, int64(2), n)
			if tt.wantDB >= 0 {
				db := raw.Conn()
				defer db.Close()
				require.NoError(t, db.Select(ctx, tt.wantDB).Err())
				v, err := db.Get(ctx, cfg.KeyPrefix+"k").Result()
				require.NoError(t, err, "the value is not in database %d", tt.wantDB)
				assert.Equal(t, "\xf5v", v, "stored envelope: 0xF5 + the string")
			}
			require.NoError(t, c.Clear(ctx))
			has, err := c.Has(ctx, "k")
			require.NoError(t, err)
			assert.False(t, has)
		})
	}
}

func hostPortPairs(t *testing.T, addrs []string) [][]any {
	var out [][]any
	for _, a := range addrs {
		h, p, err := net.SplitHostPort(a)
		require.NoError(t, err)
		n, err := strconv.Atoi(p)
		require.NoError(t, err)
		out = append(out, []any{h, n})
	}
	return out
}

// TestRedisConfigErrors checks that bad settings fail Open with an error
// naming the setting, without touching the network.
func TestRedisConfigErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		names    []string // what the message must contain
		missing  bool     // a missing setting: the error says what the backend needs
	}{
		{"cluster without CACHE_REDIS_CLUSTER", map[string]any{"CACHE_TYPE": "RedisClusterCache"}, []string{"RedisClusterCache", "CACHE_REDIS_CLUSTER"}, true},
		{"cluster with a blank CACHE_REDIS_CLUSTER", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "  "}, []string{"CACHE_REDIS_CLUSTER"}, true},
		{"cluster item without a port", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "127.0.0.1:7000,127.0.0.1"}, []string{"CACHE_REDIS_CLUSTER", `"127.0.0.1"`, "host1:port1"}, false},
		{"cluster item with a bad port", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "h:http"}, []string{"CACHE_REDIS_CLUSTER", "port"}, false},
		{"cluster item without a host", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": ":7000"}, []string{"CACHE_REDIS_CLUSTER", "no host"}, false},
		{"cluster with an empty item", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "h:1,,h:2"}, []string{"CACHE_REDIS_CLUSTER", "empty item"}, false},
		{"cluster with a database", map[string]any{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "h:1", "CACHE_REDIS_DB": 1}, []string{"CACHE_REDIS_DB"}, false},
		{"sentinel without sentinels", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINELS": []string{}}, []string{"CACHE_REDIS_SENTINELS"}, true},
		{"sentinel with a bad address", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINELS": []string{"sentinel"}}, []string{"CACHE_REDIS_SENTINELS", `"sentinel"`}, false},
		{"sentinel without a master name", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_SENTINEL_MASTER": ""}, []string{"CACHE_REDIS_SENTINEL_MASTER"}, true},
		{"redis with an empty host", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": ""}, []string{"CACHE_REDIS_HOST"}, true},
		{"redis with a bad port", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_PORT": 70000}, []string{"CACHE_REDIS_PORT", "70000"}, false},
		{"redis with a negative db", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_DB": -1}, []string{"CACHE_REDIS_DB"}, false},
		{"URL with an unknown scheme", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "memcached://h:1"}, []string{"CACHE_REDIS_URL", "scheme"}, false},
		{"URL with an unknown option", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://h:1/0?bogus=1"}, []string{"CACHE_REDIS_URL", "bogus"}, false},
		{"URL with a bad db", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://h:1/zero"}, []string{"CACHE_REDIS_URL", "zero"}, false},
		{"unknown CACHE_OPTIONS key", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"socket_timeout": 1}}, []string{"socket_timeout", "RedisCache", "dial_timeout"}, false},
		{"sentinel option on a standalone cache", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"sentinel_password": "x"}}, []string{"sentinel_password"}, false},
		{"cluster option on a sentinel cache", map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_OPTIONS": map[string]any{"max_redirects": 3}}, []string{"max_redirects"}, false},
		{"duration of the wrong type", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"dial_timeout": true}}, []string{"dial_timeout", "bool"}, false},
		{"unparsable duration", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"read_timeout": "soon"}}, []string{"read_timeout", `"soon"`}, false},
		{"negative duration", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"write_timeout": -1}}, []string{"write_timeout", "negative"}, false},
		{"negative duration string", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"write_timeout": "-1s"}}, []string{"write_timeout", "negative"}, false},
		{"integer of the wrong type", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"pool_size": "ten"}}, []string{"pool_size", "integer"}, false},
		{"negative pool size", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"pool_size": -1}}, []string{"pool_size", "-1"}, false},
		{"max_retries below -1", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"max_retries": -2}}, []string{"max_retries", "-2"}, false},
		{"unknown protocol", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"protocol": 4}}, []string{"protocol", "RESP"}, false},
		{"username of the wrong type", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"username": 7}}, []string{"username", "string"}, false},
		{"tls of the wrong type", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"tls": "yes"}}, []string{"tls", "bool"}, false},
		{"missing CA file", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"tls_ca_file": "/nonexistent/ca.pem"}}, []string{"tls_ca_file", "/nonexistent/ca.pem"}, false},
		{"client certificate without its key", map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"tls_cert_file": "c.pem"}}, []string{"tls_cert_file", "tls_key_file"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := backends.FromMap(tt.settings)
			require.NoError(t, err)
			_, err = backends.Open(cfg)
			require.Error(t, err)
			require.ErrorIs(t, err, backends.ErrConfig)
			for _, n := range tt.names {
				assert.Contains(t, err.Error(), n)
			}
			if tt.missing {
				assert.Contains(t, err.Error(), "needs")
			}
		})
	}
}

func TestRedisURLErrorsDoNotShowThePassword(t *testing.T) {
	cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://u:s3cret@h:1/0\x7f"})
	require.NoError(t, err)
	_, err = backends.Open(cfg)
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.NotContains(t, err.Error(), "s3cret")
}

// TestRedisOptions checks that every CACHE_OPTIONS key reaches the go-redis
// option it names, on the client Open builds, for each URL form.
func TestRedisOptions(t *testing.T) {
	opened := func(t *testing.T, settings map[string]any) *goredis.Options {
		t.Helper()
		cfg, err := backends.FromMap(settings)
		require.NoError(t, err)
		c, err := backends.Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c.Backend().(*redis.Backend).Client().(*goredis.Client).Options()
	}
	t.Run("every option sets its field", func(t *testing.T) {
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{
			"username": "alice", "client_name": "shop", "protocol": 2, "max_retries": 2,
			"min_retry_backoff": "3ms", "max_retry_backoff": 0.25, "dial_timeout": 1.5, "dialer_retries": 4,
			"read_timeout": 2 * time.Second, "write_timeout": 3, "context_timeout_enabled": true,
			"pool_fifo": true, "pool_size": 7, "pool_timeout": "4s", "min_idle_conns": 1, "max_idle_conns": 5,
			"max_active_conns": 9, "conn_max_idle_time": 60.0, "conn_max_lifetime": "1h",
		}})
		assert.Equal(t, "alice", opt.Username)
		assert.Equal(t, "shop", opt.ClientName)
		assert.Equal(t, 2, opt.Protocol)
		assert.Equal(t, 2, opt.MaxRetries)
		assert.Equal(t, 3*time.Millisecond, opt.MinRetryBackoff)
		assert.Equal(t, 250*time.Millisecond, opt.MaxRetryBackoff)
		assert.Equal(t, 1500*time.Millisecond, opt.DialTimeout)
		assert.Equal(t, 4, opt.DialerRetries)
		assert.Equal(t, 2*time.Second, opt.ReadTimeout)
		assert.Equal(t, 3*time.Second, opt.WriteTimeout)
		assert.True(t, opt.ContextTimeoutEnabled)
		assert.True(t, opt.PoolFIFO)
		assert.Equal(t, 7, opt.PoolSize)
		assert.Equal(t, 4*time.Second, opt.PoolTimeout)
		assert.Equal(t, 1, opt.MinIdleConns)
		assert.Equal(t, 5, opt.MaxIdleConns)
		assert.Equal(t, 9, opt.MaxActiveConns)
		assert.Equal(t, time.Minute, opt.ConnMaxIdleTime)
		assert.Equal(t, time.Hour, opt.ConnMaxLifetime)
		assert.Nil(t, opt.TLSConfig)
	})
	t.Run("max_retries -1 turns retries off", func(t *testing.T) {
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"max_retries": -1}})
		assert.Equal(t, 0, opt.MaxRetries, "go-redis stores -1 as 0 retries")
	})
	t.Run("a dial is tried once unless dialer_retries says otherwise", func(t *testing.T) {
		assert.Equal(t, 1, opened(t, map[string]any{"CACHE_TYPE": "RedisCache"}).DialerRetries)
	})
	t.Run("options from the environment as JSON", func(t *testing.T) {
		cfg, err := backends.FromEnv([]string{"CACHE_TYPE=RedisCache", `CACHE_OPTIONS={"dial_timeout": 0.5, "pool_size": 3, "tls": true}`}, backends.EnvOptions{})
		require.NoError(t, err)
		c, err := backends.Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		opt := c.Backend().(*redis.Backend).Client().(*goredis.Client).Options()
		assert.Equal(t, 500*time.Millisecond, opt.DialTimeout)
		assert.Equal(t, 3, opt.PoolSize)
		require.NotNil(t, opt.TLSConfig)
	})

	// Each URL is opened with CACHE_REDIS_DB 4 and CACHE_REDIS_PASSWORD
	// "fallback", which apply only where the URL names no db or password.
	urls := []struct {
		url                  string
		network, addr, user  string
		password             string
		db                   int
		tls                  bool
		serverName           string
		dialTimeout, timeout time.Duration
	}{
		{url: "redis://cache.example:6380", network: "tcp", addr: "cache.example:6380", password: "fallback", db: 4},
		{url: "redis://u:p%40ss@cache.example/2", network: "tcp", addr: "cache.example:6379", user: "u", password: "p@ss", db: 2},
		{url: "redis://:pw@cache.example:1/0?dial_timeout=2&read_timeout=300ms", network: "tcp", addr: "cache.example:1", password: "pw", db: 0,
			dialTimeout: 2 * time.Second, timeout: 300 * time.Millisecond},
		{url: "rediss://cache.example:6380/1", network: "tcp", addr: "cache.example:6380", password: "fallback", db: 1, tls: true, serverName: "cache.example"},
		{url: "unix:///run/redis/redis.sock", network: "unix", addr: "/run/redis/redis.sock", password: "fallback", db: 4},
		{url: "unix:///run/redis/redis.sock?db=3", network: "unix", addr: "/run/redis/redis.sock", password: "fallback", db: 3},
		{url: "unix://u:pw@/run/redis.sock", network: "unix", addr: "/run/redis.sock", user: "u", password: "pw", db: 4},
	}
	for _, u := range urls {
		t.Run("URL "+u.url, func(t *testing.T) {
			opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": u.url, "CACHE_REDIS_DB": 4, "CACHE_REDIS_PASSWORD": "fallback"})
			assert.Equal(t, u.network, opt.Network)
			assert.Equal(t, u.addr, opt.Addr)
			assert.Equal(t, u.user, opt.Username)
			assert.Equal(t, u.password, opt.Password)
			assert.Equal(t, u.db, opt.DB)
			if u.dialTimeout != 0 {
				assert.Equal(t, u.dialTimeout, opt.DialTimeout)
				assert.Equal(t, u.timeout, opt.ReadTimeout)
			}
			assert.Equal(t, u.tls, opt.TLSConfig != nil, "TLS")
			if u.tls {
				assert.Equal(t, u.serverName, opt.TLSConfig.ServerName)
				assert.GreaterOrEqual(t, opt.TLSConfig.MinVersion, uint16(tls.VersionTLS12))
			}
		})
	}
	t.Run("CACHE_OPTIONS override the URL's query", func(t *testing.T) {
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://h:1/0?dial_timeout=2s",
			"CACHE_OPTIONS": map[string]any{"dial_timeout": "250ms"}})
		assert.Equal(t, 250*time.Millisecond, opt.DialTimeout)
	})
	t.Run("tls options on host and port", func(t *testing.T) {
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{
			"tls_server_name": "cache.internal", "tls_skip_verify": true}})
		require.NotNil(t, opt.TLSConfig)
		assert.Equal(t, "cache.internal", opt.TLSConfig.ServerName)
		assert.True(t, opt.TLSConfig.InsecureSkipVerify)
	})
	t.Run("tls files", func(t *testing.T) {
		dir := t.TempDir()
		certFile, keyFile := writeSelfSignedCert(t, dir)
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{
			"tls_ca_file": certFile, "tls_cert_file": certFile, "tls_key_file": keyFile}})
		require.NotNil(t, opt.TLSConfig)
		require.NotNil(t, opt.TLSConfig.RootCAs)
		assert.Len(t, opt.TLSConfig.Certificates, 1)
		assert.False(t, opt.TLSConfig.InsecureSkipVerify)

		notPEM := filepath.Join(dir, "not.pem")
		require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
		cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_OPTIONS": map[string]any{"tls_ca_file": notPEM}})
		require.NoError(t, err)
		_, err = backends.Open(cfg)
		require.ErrorIs(t, err, backends.ErrConfig)
		assert.Contains(t, err.Error(), "no PEM certificate")
	})
	t.Run("tls options on a rediss URL keep its server name", func(t *testing.T) {
		opt := opened(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "rediss://cache.example",
			"CACHE_OPTIONS": map[string]any{"tls_skip_verify": true}})
		require.NotNil(t, opt.TLSConfig)
		assert.Equal(t, "cache.example", opt.TLSConfig.ServerName)
		assert.True(t, opt.TLSConfig.InsecureSkipVerify)
	})
	t.Run("sentinel options", func(t *testing.T) {
		cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisSentinelCache", "CACHE_REDIS_DB": 2, "CACHE_REDIS_PASSWORD": "master-pw",
			"CACHE_OPTIONS": map[string]any{"sentinel_username": "s", "sentinel_password": "spw", "read_timeout": 1}})
		require.NoError(t, err)
		c, err := backends.Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		opt := c.Backend().(*redis.Backend).Client().(*goredis.Client).Options()
		assert.Equal(t, 2, opt.DB)
		assert.Equal(t, "master-pw", opt.Password)
		assert.Equal(t, time.Second, opt.ReadTimeout)
		assert.Equal(t, 1, opt.DialerRetries)
	})
	t.Run("cluster options", func(t *testing.T) {
		cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "rediscluster", "CACHE_REDIS_CLUSTER": "a:1,b:2", "CACHE_REDIS_PASSWORD": "pw",
			"CACHE_OPTIONS": map[string]any{"max_redirects": 5, "username": "u", "tls": true}})
		require.NoError(t, err)
		c, err := backends.Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		opt := c.Backend().(*redis.Backend).Client().(*goredis.ClusterClient).Options()
		assert.Equal(t, []string{"a:1", "b:2"}, opt.Addrs)
		assert.Equal(t, "pw", opt.Password)
		assert.Equal(t, "u", opt.Username)
		assert.Equal(t, 5, opt.MaxRedirects)
		assert.NotNil(t, opt.TLSConfig)
		assert.Equal(t, 1, opt.DialerRetries)
	})
}

// writeSelfSignedCert writes a self-signed certificate and its key as PEM
// files into dir.
func writeSelfSignedCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cache.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:              []string{"cache.test"},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// TestRedisIncErrors checks that INCRBY's refusals are ErrNotInteger.
func TestRedisIncErrors(t *testing.T) {
	t.Parallel()
	srv := testservers.Redis(t)
	client := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	b := redis.New(client, redis.Options{})
	ctx := t.Context()
	require.NoError(t, b.Set(ctx, "text", []byte("sabc"), backends.NoExpiry))
	require.NoError(t, b.Set(ctx, "max", []byte(strconv.FormatInt(1<<63-1, 10)), backends.NoExpiry))
	for _, tc := range []struct{ key string }{{"text"}, {"max"}} {
		_, err := b.Inc(ctx, tc.key, 1, backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrNotInteger, tc.key)
	}
	v, _, err := b.Get(ctx, "text")
	require.NoError(t, err)
	assert.Equal(t, "sabc", string(v), "a failed Inc changed the value")
}

// TestRedisErrorsCarryTheCommand checks that a failure names the command
// and keeps go-redis's reason.
func TestRedisErrorsCarryTheCommand(t *testing.T) {
	b := redis.New(goredis.NewClient(&goredis.Options{Addr: closedPort(t), MaxRetries: -1, DialerRetries: 1}), redis.Options{})
	t.Cleanup(func() { _ = b.Client().Close() })
	_, _, err := b.Get(t.Context(), "k")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redis GET")
	assert.Contains(t, err.Error(), "connection refused")
	assert.False(t, errors.Is(err, backends.ErrAuth))
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// ExampleNew wraps a go-redis client the application configured
// itself. (It needs a Redis server, so it is compiled but not run.)
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{
		Addr:        "127.0.0.1:6379",
		DialTimeout: 250 * time.Millisecond,
		ReadTimeout: 100 * time.Millisecond,
	})
	defer client.Close() // the backend leaves the caller's client open

	cache := backends.New(redis.New(client, redis.Options{}), backends.CacheOptions{
		KeyPrefix:      "shop:",
		DefaultTimeout: 5 * time.Minute,
	})
	ctx := context.Background()
	if err := cache.Set(ctx, "greeting", "hello"); err != nil {
		fmt.Println(err)
		return
	}
	var s string
	found, err := cache.Get(ctx, "greeting", &s)
	fmt.Println(found, s, err)
}

// ExampleOpen_redis opens a RedisCache from Flask-style settings. (It needs
// a Redis server, so it is compiled but not run.)
func Example_open() {
	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":       "RedisCache",
		"CACHE_REDIS_URL":  "redis://127.0.0.1:6379/0",
		"CACHE_KEY_PREFIX": "shop_",
		"CACHE_OPTIONS":    map[string]any{"dial_timeout": 0.25, "read_timeout": "100ms"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := backends.Open(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// Open does not connect; Ping fails at startup rather than at the
	// first page.
	if err := cache.Backend().(*redis.Backend).Ping(context.Background()); err != nil {
		fmt.Println("redis is not usable:", err)
	}
}
