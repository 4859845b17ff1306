package memcached_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
	"github.com/fragcache/fragcache/backends/memcached"
	"github.com/fragcache/fragcache/internal/memcache"
	"github.com/fragcache/fragcache/internal/testservers"
	"github.com/fragcache/fragcache/keys"
)

// testTimeout replaces the cache-safe default timeouts in tests that do not
// test timeouts: they count and compare, and the machine may be loaded.
const testTimeout = 10 * time.Second

func newTestMemcached(t testing.TB, opts memcached.Options) *memcached.Backend {
	t.Helper()
	opts.DialTimeout = cmp.Or(opts.DialTimeout, testTimeout)
	opts.Timeout = cmp.Or(opts.Timeout, testTimeout)
	b, err := memcached.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func TestMemcachedConformance(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T) memcached.Options
	}{
		{"one server", func(t *testing.T) memcached.Options {
			return memcached.Options{Servers: []string{testservers.Memcached(t).Addr}}
		}},
		{"two servers, generations read on every operation", func(t *testing.T) memcached.Options {
			return memcached.Options{Servers: []string{testservers.Memcached(t).Addr, testservers.Memcached(t).Addr}, NamespaceRefresh: -1}
		}},
		{"SASL", func(t *testing.T) memcached.Options {
			srv := testservers.SASLMemcached(t)
			return memcached.Options{Servers: []string{srv.Addr}, Username: srv.Username, Password: srv.Password}
		}},
		{"SASL, spread", func(t *testing.T) memcached.Options {
			srv := testservers.SASLMemcached(t)
			return memcached.Options{Servers: []string{srv.Addr}, Username: srv.Username, Password: srv.Password, Spread: true}
		}},
		// Small chunks make the suite's 100 KB values span many chunks.
		{"spread over 4 KiB chunks on two servers", func(t *testing.T) memcached.Options {
			return memcached.Options{Servers: []string{testservers.Memcached(t).Addr, testservers.Memcached(t).Addr},
				Spread: true, ChunkSize: 4096, MaxChunks: 255}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.start(t)
			opts.Namespaces = backendtest.ClearedPrefixes()
			backendtest.Run(t, func(t *testing.T) backends.Backend {
				return newTestMemcached(t, opts)
			}, backendtest.Options{TTLResolution: time.Second, AtomicInc: true, AtomicAdd: true})
		})
	}
}

// rawMemcached is a protocol client for looking at the servers behind the
// backend's back.
func rawMemcached(t testing.TB, servers ...string) *memcache.Client {
	t.Helper()
	// Tests inspect the server with it; they are not about timing, and the machine may be loaded.
	c, err := memcache.New(memcache.Options{Servers: servers, Timeout: 30 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMemcachedOpen(t *testing.T) {
	base := func(typ string, extra map[string]any) map[string]any {
		m := map[string]any{"CACHE_TYPE": typ, "CACHE_MEMCACHED_SERVERS": []string{"127.0.0.1:1", "127.0.0.1:2"}}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	creds := map[string]any{"CACHE_MEMCACHED_USERNAME": "u", "CACHE_MEMCACHED_PASSWORD": "p"}
	tests := []struct {
		name    string
		config  map[string]any
		wantErr string // "" means Open succeeds
	}{
		{"MemcachedCache needs no credentials", base("MemcachedCache", nil), ""},
		{"the old alias memcached", base("memcached", nil), ""},
		{"SASLMemcachedCache with credentials", base("SASLMemcachedCache", creds), ""},
		{"the old alias saslmemcached", base("saslmemcached", creds), ""},
		{"SpreadSASLMemcachedCache with credentials and chunk options", base("spreadsaslmemcached",
			merge(creds, map[string]any{"CACHE_OPTIONS": map[string]any{"chunk_size": 4096, "max_chunks": 64}})), ""},
		{"all the other options", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{
			"dial_timeout": 0.5, "timeout": 2, "max_idle_conns": 4, "namespaces": []any{"x:"}, "namespace_refresh": 0}}), ""},
		{"servers as one comma-separated string", base("MemcachedCache", map[string]any{"CACHE_MEMCACHED_SERVERS": "127.0.0.1:1, 127.0.0.1:2"}), ""},
		{"SASLMemcachedCache without a username", base("SASLMemcachedCache", map[string]any{"CACHE_MEMCACHED_PASSWORD": "p"}),
			"SASLMemcachedCache needs CACHE_MEMCACHED_USERNAME"},
		{"SASLMemcachedCache without a password", base("SASLMemcachedCache", map[string]any{"CACHE_MEMCACHED_USERNAME": "u"}),
			"SASLMemcachedCache needs CACHE_MEMCACHED_PASSWORD"},
		{"SpreadSASLMemcachedCache without credentials", base("SpreadSASLMemcachedCache", nil),
			"SpreadSASLMemcachedCache needs CACHE_MEMCACHED_USERNAME"},
		{"an empty server list", base("MemcachedCache", map[string]any{"CACHE_MEMCACHED_SERVERS": []string{}}),
			"MemcachedCache needs CACHE_MEMCACHED_SERVERS"},
		{"a server without a port", base("MemcachedCache", map[string]any{"CACHE_MEMCACHED_SERVERS": "localhost"}),
			`"localhost" is not host:port`},
		{"an unknown option", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"behaviors": map[string]any{}}}),
			`CACHE_OPTIONS key "behaviors" is not an option of MemcachedCache`},
		{"a chunk option without spreading", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"chunk_size": 10}}),
			`"chunk_size" is not an option of MemcachedCache`},
		{"a negative timeout", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"timeout": -1}}),
			"CACHE_OPTIONS timeout"},
		{"a pool size that is not a positive integer", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"max_idle_conns": 1.5}}),
			"CACHE_OPTIONS max_idle_conns"},
		{"more than 255 chunks", base("SpreadSASLMemcachedCache", merge(creds, map[string]any{"CACHE_OPTIONS": map[string]any{"max_chunks": 256}})),
			"MaxChunks 256 is over 255"},
		{"namespaces that are not strings", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"namespaces": []any{1}}}),
			"CACHE_OPTIONS namespaces"},
		{"an empty namespace", base("MemcachedCache", map[string]any{"CACHE_OPTIONS": map[string]any{"namespaces": []any{""}}}),
			"empty memcached namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := backends.FromMap(tc.config)
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, backends.ErrConfig)
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			defer c.Close()
			m, ok := c.Backend().(*memcached.Backend)
			require.True(t, ok, "backend is %T", c.Backend())
			assert.Contains(t, m.String(), "127.0.0.1:2")
		})
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestMemcachedOpenRunsAgainstTheServer(t *testing.T) {
	srv := testservers.SASLMemcached(t)
	tests := []string{"SASLMemcachedCache", "SpreadSASLMemcachedCache"}
	for _, typ := range tests {
		t.Run(typ, func(t *testing.T) {
			cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": typ, "CACHE_MEMCACHED_SERVERS": srv.Addr,
				"CACHE_MEMCACHED_USERNAME": srv.Username, "CACHE_MEMCACHED_PASSWORD": srv.Password, "CACHE_KEY_PREFIX": "app:"})
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			defer c.Close()
			ctx := t.Context()
			require.NoError(t, c.Set(ctx, "k", "v"))
			n, err := c.Inc(ctx, "n", 2)
			require.NoError(t, err)
			assert.Equal(t, int64(2), n)
			// Open declared CACHE_KEY_PREFIX as a namespace: Clear works.
			require.NoError(t, c.Clear(ctx))
			has, err := c.Has(ctx, "k")
			require.NoError(t, err)
			assert.False(t, has)
		})
	}
}

func TestMemcachedSASLWrongPassword(t *testing.T) {
	srv := testservers.SASLMemcached(t)
	ctx := t.Context()
	for _, spread := range []bool{false, true} {
		t.Run(fmt.Sprintf("spread %v", spread), func(t *testing.T) {
			b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Username: srv.Username, Password: "wrong", Spread: spread})
			ops := map[string]func() error{
				"Ping": func() error { return b.Ping(ctx) },
				"Get":  func() error { _, _, err := b.Get(ctx, "k"); return err },
				"Set":  func() error { return b.Set(ctx, "k", []byte("v"), backends.NoExpiry) },
				"Inc":  func() error { _, err := b.Inc(ctx, "n", 1, backends.NoExpiry); return err },
				"GetMany": func() error {
					_, err := b.GetMany(ctx, []string{"k", "l"})
					return err
				},
			}
			for name, op := range ops {
				err := op()
				require.ErrorIs(t, err, backends.ErrAuth, name)
				assert.ErrorContains(t, err, srv.Addr, name)
				assert.ErrorContains(t, err, `user "`+srv.Username+`"`, name)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}})
		err := b.Set(ctx, "k", []byte("v"), backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrAuth)
		assert.ErrorContains(t, err, "requires SASL authentication")
	})
}

func TestMemcachedServerDown(t *testing.T) {
	const dialTimeout, timeout = 300 * time.Millisecond, 500 * time.Millisecond
	ctx := context.Background()
	ops := []struct {
		name string
		op   func(b *memcached.Backend) error
	}{
		{"Get", func(b *memcached.Backend) error { _, _, err := b.Get(ctx, "k"); return err }},
		{"Set", func(b *memcached.Backend) error { return b.Set(ctx, "k", []byte("v"), backends.NoExpiry) }},
		{"Add", func(b *memcached.Backend) error {
			_, err := b.Add(ctx, "k", []byte("v"), backends.NoExpiry)
			return err
		}},
		{"Delete", func(b *memcached.Backend) error { _, err := b.Delete(ctx, "k"); return err }},
		{"Inc", func(b *memcached.Backend) error { _, err := b.Inc(ctx, "k", 1, backends.NoExpiry); return err }},
		{"GetMany", func(b *memcached.Backend) error { _, err := b.GetMany(ctx, []string{"k", "l"}); return err }},
		{"SetMany", func(b *memcached.Backend) error {
			return b.SetMany(ctx, map[string][]byte{"k": nil}, backends.NoExpiry)
		}},
		{"DeleteMany", func(b *memcached.Backend) error { _, err := b.DeleteMany(ctx, []string{"k", "l"}); return err }},
		{"Clear", func(b *memcached.Backend) error { return b.Clear(ctx, "") }},
		{"Clear of a namespace", func(b *memcached.Backend) error { return b.Clear(ctx, "ns:") }},
		{"Get in a namespace", func(b *memcached.Backend) error { _, _, err := b.Get(ctx, "ns:k"); return err }},
	}
	servers := []struct {
		name   string
		addr   func(t testing.TB) string
		check  func(t *testing.T, err error)
		within time.Duration
	}{
		{"stopped", func(t testing.TB) string {
			srv := testservers.Memcached(t)
			srv.Stop()
			return srv.Addr
		}, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		}, dialTimeout},
		{"connection not accepted", func(t testing.TB) string {
			addr, ok := testservers.FullBacklog(t)
			if !ok {
				t.Skip("the kernel accepts connections beyond a full backlog here")
			}
			return addr
		}, func(t *testing.T, err error) {
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "error %v is not a timeout", err)
		}, 2 * dialTimeout},
		{"no reply", testservers.Stalled, func(t *testing.T, err error) {
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "error %v is not a timeout", err)
		}, timeout + dialTimeout},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			addr := s.addr(t)
			b := newTestMemcached(t, memcached.Options{Servers: []string{addr}, DialTimeout: dialTimeout, Timeout: timeout,
				Namespaces: []string{"ns:"}, NamespaceRefresh: -1})
			for _, op := range ops {
				t.Run(op.name, func(t *testing.T) {
					start := time.Now()
					err := op.op(b)
					elapsed := time.Since(start)
					require.Error(t, err)
					assert.ErrorContains(t, err, addr, "the error names the server")
					s.check(t, err)
					assert.Less(t, elapsed, s.within+500*time.Millisecond, "error after %v", elapsed)
				})
			}
		})
	}
}

func TestMemcachedContextCancelled(t *testing.T) {
	b := newTestMemcached(t, memcached.Options{Servers: []string{testservers.Stalled(t)}, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := b.Get(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), time.Second)
}

// randomKey returns a key of a random shape: short or long (past the
// 250-byte limit), made of plain ASCII, spaces and control characters,
// unicode, or bytes that are not UTF-8.
func randomKey(rng *rand.Rand) string {
	var n int
	switch rng.IntN(10) {
	case 0, 1, 2, 3:
		n = rng.IntN(40)
	case 4, 5, 6:
		n = 40 + rng.IntN(220)
	default:
		n = 240 + rng.IntN(800)
	}
	alphabets := []string{
		"abcdefghijklmnopqrstuvwxyz0123456789_-:./",
		" \t\r\n\x00\x01\x1b\x7f#",
		"ключ鍵🔑é",
	}
	var b strings.Builder
	for b.Len() < n {
		switch k := rng.IntN(10); {
		case k < 7:
			a := alphabets[0]
			b.WriteByte(a[rng.IntN(len(a))])
		case k < 8:
			a := alphabets[1]
			b.WriteByte(a[rng.IntN(len(a))])
		case k < 9:
			r := []rune(alphabets[2])
			b.WriteRune(r[rng.IntN(len(r))])
		default:
			b.WriteByte(byte(0x80 + rng.IntN(0x80)))
		}
	}
	return b.String()
}

func TestMemcachedManyRandomKeysDoNotCollide(t *testing.T) {
	t.Parallel()
	const total, batch = 100_000, 1000
	srv := testservers.Memcached(t)
	b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Namespaces: []string{"ns:"}})
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(6, 6))
	seen := make(map[string]bool, total)
	keys := make([]string, 0, total)
	for len(keys) < total {
		k := randomKey(rng)
		if rng.IntN(4) == 0 {
			k = "ns:" + k // in a namespace, so generations go into the key
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	value := func(i int) []byte { return []byte(strconv.Itoa(i)) }
	for start := 0; start < total; start += batch {
		items := make(map[string][]byte, batch)
		for i := start; i < start+batch; i++ {
			items[keys[i]] = value(i)
		}
		require.NoError(t, b.SetMany(ctx, items, backends.NoExpiry))
	}
	for start := 0; start < total; start += batch {
		got, err := b.GetMany(ctx, keys[start:start+batch])
		require.NoError(t, err)
		for j, v := range got {
			i := start + j
			if !bytes.Equal(value(i), v) {
				t.Fatalf("key %d (%d bytes, %.40q) holds %q, want %q: two keys collided or an entry was evicted", i, len(keys[i]), keys[i], v, value(i))
			}
		}
	}
}

func TestMemcachedSpread(t *testing.T) {
	t.Parallel()
	srv := testservers.Memcached(t)
	raw := rawMemcached(t, srv.Addr)
	// Megabyte values under -race on a loaded machine can outlast the 1 s round-trip default;
	// this test is about chunking, not timing.
	b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Spread: true, Timeout: 30 * time.Second})
	ctx := t.Context()
	value := func(size int) []byte {
		v := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(size)}).Read(v)
		return v
	}
	chunks := func(size int) int {
		return max(1, (size+memcached.DefaultChunkSize-1)/memcached.DefaultChunkSize)
	}
	// chunkKeys are the server keys Flask's naming gives: "{key}.{i}".
	chunkKeys := func(key string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = key + "." + strconv.Itoa(i)
		}
		return out
	}
	for _, size := range []int{100, 1 << 20, 5 << 20} {
		t.Run(fmt.Sprintf("a value of %d bytes", size), func(t *testing.T) {
			key := "v" + strconv.Itoa(size)
			want := value(size)
			require.NoError(t, b.Set(ctx, key, want, backends.NoExpiry))
			got, found, err := b.Get(ctx, key)
			require.NoError(t, err)
			require.True(t, found)
			assert.True(t, bytes.Equal(want, got), "Get returned %d bytes, want %d", len(got), len(want))

			stored, err := raw.GetMulti(ctx, chunkKeys(key, chunks(size)+1))
			require.NoError(t, err)
			for i, it := range stored[:chunks(size)] {
				assert.NotNil(t, it.Value, "chunk %d", i)
			}
			assert.Nil(t, stored[chunks(size)].Value, "no chunk past the last")

			many, err := b.GetMany(ctx, []string{"absent", key, key})
			require.NoError(t, err)
			assert.Nil(t, many[0])
			assert.True(t, bytes.Equal(want, many[1]) && bytes.Equal(want, many[2]), "GetMany")

			deleted, err := b.Delete(ctx, key)
			require.NoError(t, err)
			assert.True(t, deleted)
			stored, err = raw.GetMulti(ctx, chunkKeys(key, chunks(size)))
			require.NoError(t, err)
			for i, it := range stored {
				assert.Nil(t, it.Value, "chunk %d after Delete", i)
			}
		})
	}

	broken := []struct {
		name   string
		break_ func(t *testing.T, key string)
	}{
		{"a missing middle chunk", func(t *testing.T, key string) {
			require.NoError(t, raw.Delete(ctx, key+".1"))
		}},
		{"a missing last chunk", func(t *testing.T, key string) {
			require.NoError(t, raw.Delete(ctx, key+".2"))
		}},
		{"a chunk left from another write", func(t *testing.T, key string) {
			other := value(3 * memcached.DefaultChunkSize)
			other[0]++
			require.NoError(t, b.Set(ctx, "other", other, backends.NoExpiry))
			it, err := raw.Get(ctx, "other.1")
			require.NoError(t, err)
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: key + ".1", Value: it.Value}))
		}},
		{"a changed byte", func(t *testing.T, key string) {
			it, err := raw.Get(ctx, key+".2")
			require.NoError(t, err)
			it.Value[len(it.Value)-1]++
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: key + ".2", Value: it.Value}))
		}},
		{"a truncated chunk", func(t *testing.T, key string) {
			it, err := raw.Get(ctx, key+".1")
			require.NoError(t, err)
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: key + ".1", Value: it.Value[:len(it.Value)-1]}))
		}},
		{"a chunk 0 that is not the backend's", func(t *testing.T, key string) {
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: key + ".0", Value: []byte("pickle")}))
		}},
	}
	for _, tc := range broken {
		t.Run(tc.name+" reads as a miss, and Add replaces the entry", func(t *testing.T) {
			key := "broken"
			want := value(3 * memcached.DefaultChunkSize)
			require.NoError(t, b.Set(ctx, key, want, backends.NoExpiry))
			tc.break_(t, key)
			_, found, err := b.Get(ctx, key)
			require.NoError(t, err)
			assert.False(t, found, "Get")
			has, err := b.Has(ctx, key)
			require.NoError(t, err)
			assert.False(t, has, "Has")
			many, err := b.GetMany(ctx, []string{key})
			require.NoError(t, err)
			assert.Nil(t, many[0], "GetMany")
			added, err := b.Add(ctx, key, []byte("new"), backends.NoExpiry)
			require.NoError(t, err)
			assert.True(t, added, "Add over a broken entry")
			got, found, err := b.Get(ctx, key)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, "new", string(got))
		})
	}

	t.Run("a value over MaxChunks chunks is backends.ErrValueTooLarge", func(t *testing.T) {
		small := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Spread: true, ChunkSize: 1000, MaxChunks: 3})
		require.NoError(t, small.Set(ctx, "fits", make([]byte, 3000), backends.NoExpiry))
		err := small.Set(ctx, "big", make([]byte, 3001), backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrValueTooLarge)
		assert.ErrorContains(t, err, "needs 4 chunks")
		err = small.SetMany(ctx, map[string][]byte{"big": make([]byte, 3001), "ok": nil}, backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrValueTooLarge)
		var ke *backends.KeyError
		require.ErrorAs(t, err, &ke)
		assert.Equal(t, "big", ke.Key)
		_, found, err := small.Get(ctx, "ok")
		require.NoError(t, err)
		assert.True(t, found, "the other item was stored")
	})
	t.Run("Inc of a many-chunk value is ErrNotInteger", func(t *testing.T) {
		require.NoError(t, b.Set(ctx, "large", value(2*memcached.DefaultChunkSize), backends.NoExpiry))
		_, err := b.Inc(ctx, "large", 1, backends.NoExpiry)
		assert.ErrorIs(t, err, backends.ErrNotInteger)
	})
	t.Run("a value over the item size without spreading is backends.ErrValueTooLarge", func(t *testing.T) {
		whole := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}})
		err := whole.Set(ctx, "big", make([]byte, 2<<20), backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrValueTooLarge)
		assert.ErrorContains(t, err, "SpreadSASLMemcachedCache")
	})
}

func TestMemcachedNamespaces(t *testing.T) {
	t.Parallel()
	srvs := []string{testservers.Memcached(t).Addr, testservers.Memcached(t).Addr}
	ctx := t.Context()
	newB := func(t *testing.T, refresh time.Duration) *memcached.Backend {
		return newTestMemcached(t, memcached.Options{Servers: srvs, Namespaces: []string{"a:", "a:b:", "c:"}, NamespaceRefresh: refresh})
	}
	set := func(t *testing.T, b backends.Backend, keys ...string) {
		for _, k := range keys {
			require.NoError(t, b.Set(ctx, k, []byte(k), backends.NoExpiry))
		}
	}
	live := func(t *testing.T, b backends.Backend, key string) bool {
		v, found, err := b.Get(ctx, key)
		require.NoError(t, err)
		if found {
			assert.Equal(t, key, string(v))
		}
		return found
	}
	all := []string{"a:x", "a:b:x", "a:bx", "c:x", "x", "a", "b:x"}
	tests := []struct {
		clear string
		gone  []string
	}{
		{"a:", []string{"a:x", "a:b:x", "a:bx"}}, // nested namespaces go with the outer one
		{"a:b:", []string{"a:b:x"}},
		{"c:", []string{"c:x"}},
		{"", all},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("Clear(%q)", tc.clear), func(t *testing.T) {
			b := newB(t, 0)
			require.NoError(t, b.Clear(ctx, ""))
			set(t, b, all...)
			require.NoError(t, b.Clear(ctx, tc.clear))
			for _, k := range all {
				assert.Equal(t, !slices.Contains(tc.gone, k), live(t, b, k), "%q after Clear(%q)", k, tc.clear)
			}
			set(t, b, all...)
			for _, k := range all {
				assert.True(t, live(t, b, k), "%q written again", k)
			}
		})
	}
	t.Run("Clear of an undeclared prefix is ErrUnsupported and removes nothing", func(t *testing.T) {
		b := newB(t, 0)
		set(t, b, "d:x")
		err := b.Clear(ctx, "d:")
		require.ErrorIs(t, err, errors.ErrUnsupported)
		assert.ErrorContains(t, err, `Clear("d:") needs "d:" declared as a namespace`)
		assert.True(t, live(t, b, "d:x"))
	})
	t.Run("keys outside namespaces are stored unchanged, inside with the generation", func(t *testing.T) {
		b := newB(t, 0)
		require.NoError(t, b.Clear(ctx, ""))
		set(t, b, "plain", "c:k")
		raw := rawMemcached(t, srvs...)
		_, err := raw.Get(ctx, "plain")
		assert.NoError(t, err, "raw get of the key as given")
		_, err = raw.Get(ctx, "c:k")
		assert.Equal(t, memcache.ErrCacheMiss, err)
		gen, err := raw.Incr(ctx, keys.SafeKey("\x00fragcache namespace generation\x00c:"), 0, 0, memcache.NoCreate)
		require.NoError(t, err)
		_, err = raw.Get(ctx, "c:"+strconv.FormatUint(gen, 36)+":k")
		assert.NoError(t, err, "the documented layout: namespace, generation, colon, rest")
	})
	t.Run("another process's Clear is seen within NamespaceRefresh", func(t *testing.T) {
		const refresh = 300 * time.Millisecond
		reader, clearer := newB(t, refresh), newB(t, refresh)
		set(t, reader, "c:shared")
		require.True(t, live(t, reader, "c:shared"))
		start := time.Now()
		require.NoError(t, clearer.Clear(ctx, "c:"))
		assert.False(t, live(t, clearer, "c:shared"), "the clearing backend sees it at once")
		time.Sleep(time.Until(start.Add(refresh)))
		assert.False(t, live(t, reader, "c:shared"), "the other backend after %v", refresh)
	})
	t.Run("a generation read on every operation sees another process's Clear at once", func(t *testing.T) {
		reader, clearer := newB(t, -1), newB(t, -1)
		set(t, reader, "c:shared")
		require.NoError(t, clearer.Clear(ctx, "c:"))
		assert.False(t, live(t, reader, "c:shared"))
	})
}

func TestMemcachedValuesOfOtherClientsAreMisses(t *testing.T) {
	srv := testservers.Memcached(t)
	raw := rawMemcached(t, srv.Addr)
	ctx := t.Context()
	for _, spread := range []bool{false, true} {
		b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Spread: spread})
		for _, v := range []string{"pickle", "", "12abc", "-5"} {
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: "k", Value: []byte(v)}))
			require.NoError(t, raw.Set(ctx, memcache.Item{Key: "k.0", Value: []byte(v)}))
			_, found, err := b.Get(ctx, "k")
			require.NoError(t, err)
			assert.False(t, found, "spread %v, value %q", spread, v)
		}
	}
}

func TestMemcachedTimeouts(t *testing.T) {
	t.Parallel()
	srv := testservers.Memcached(t)
	raw := rawMemcached(t, srv.Addr)
	ctx := t.Context()
	for _, spread := range []bool{false, true} {
		t.Run(fmt.Sprintf("spread %v", spread), func(t *testing.T) {
			b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Spread: spread})
			c := backends.New(b, backends.CacheOptions{})
			// Over 30 days memcached wants an absolute time; a relative
			// one would be read as a date in 1970 and expire at once.
			require.NoError(t, c.Set(ctx, "long", "v", 40*24*time.Hour))
			require.NoError(t, c.SetMany(ctx, map[string]any{"long many": "v"}, 400*24*time.Hour))
			for _, k := range []string{"long", "long many"} {
				has, err := c.Has(ctx, k)
				require.NoError(t, err)
				assert.True(t, has, k)
			}
		})
	}
	t.Run("negative counters keep their TTL through Inc", func(t *testing.T) {
		b := newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}})
		c := backends.New(b, backends.CacheOptions{})
		require.NoError(t, c.Set(ctx, "neg", -5, 2*time.Second))
		before, err := raw.Get(ctx, "neg")
		require.NoError(t, err)
		for range 3 {
			_, err := c.Dec(ctx, "neg", 1)
			require.NoError(t, err)
		}
		requireInt(t, c, "neg", -8)
		after, err := raw.Get(ctx, "neg")
		require.NoError(t, err)
		assert.Equal(t, before.Flags, after.Flags, "the expiry the item carries")
		time.Sleep(3100 * time.Millisecond)
		has, err := c.Has(ctx, "neg")
		require.NoError(t, err)
		assert.False(t, has, "expired with the TTL Set gave it")
	})
}

func requireInt(t *testing.T, c *backends.Cache, key string, want int64) {
	t.Helper()
	var got int64
	found, err := c.Get(t.Context(), key, &got)
	require.NoError(t, err)
	require.True(t, found, key)
	assert.Equal(t, want, got, key)
}

func TestMemcachedConcurrentIncsOfNegativeCounters(t *testing.T) {
	t.Parallel()
	srv := testservers.Memcached(t)
	ctx := t.Context()
	for _, spread := range []bool{false, true} {
		t.Run(fmt.Sprintf("spread %v", spread), func(t *testing.T) {
			c := backends.New(newTestMemcached(t, memcached.Options{Servers: []string{srv.Addr}, Spread: spread}), backends.CacheOptions{})
			const workers, rounds = 8, 50
			require.NoError(t, c.Set(ctx, "n", -1000))
			var g errgroup.Group
			for w := range workers {
				g.Go(func() error {
					for range rounds {
						if _, err := c.Inc(ctx, "n", int64(1+w%2)); err != nil { // +1 and +2, crossing zero
							return err
						}
					}
					return nil
				})
			}
			require.NoError(t, g.Wait())
			requireInt(t, c, "n", -1000+workers/2*rounds*3)
		})
	}
}

func TestMemcachedClose(t *testing.T) {
	srv := testservers.Memcached(t)
	b, err := memcached.New(memcached.Options{Servers: []string{srv.Addr}})
	require.NoError(t, err)
	require.NoError(t, b.Set(t.Context(), "k", []byte("v"), backends.NoExpiry))
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Ping(t.Context()), backends.ErrClosed)
}

func ExampleNew() {
	b, err := memcached.New(memcached.Options{
		Servers:    []string{"10.0.0.1:11211", "10.0.0.2:11211"},
		Username:   "app", // SASL PLAIN; leave empty for a server without -S
		Password:   "secret",
		Spread:     true, // values over 1 MiB are split into chunks
		Namespaces: []string{"pages:"},
	})
	if err != nil {
		panic(err)
	}
	cache := backends.New(b, backends.CacheOptions{KeyPrefix: "pages:", DefaultTimeout: 5 * time.Minute})
	defer cache.Close()
	ctx := context.Background()
	_ = cache.Set(ctx, "home", "<html>…</html>")
	_ = cache.Clear(ctx) // one round trip: "pages:" is a declared namespace
}
