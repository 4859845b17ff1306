package uwsgi_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
	"github.com/fragcache/fragcache/backends/uwsgi"
	"github.com/fragcache/fragcache/internal/testservers"
	wire "github.com/fragcache/fragcache/internal/uwsgi"
)

// uwsgiBigCache holds the conformance suite's 100 KB values: with bitmap=1
// a value may span many 4 KiB blocks (up to 16 MiB here).
func uwsgiBigCache(name string, extra string) string {
	return "name=" + name + ",items=256,blocksize=4096,blocks=4096,bitmap=1" + extra
}

// testTimeout replaces the cache-safe default timeouts in tests that do not
// test timeouts: they count and compare, and the machine may be loaded.
const testTimeout = 10 * time.Second

func newTestUWSGI(t testing.TB, opts uwsgi.Options) *uwsgi.Backend {
	t.Helper()
	opts.DialTimeout = cmp.Or(opts.DialTimeout, testTimeout)
	opts.ReadTimeout = cmp.Or(opts.ReadTimeout, testTimeout)
	b, err := uwsgi.New(opts)
	require.NoError(t, err)
	return b
}

// rawUWSGI is a protocol client for looking at the server behind the
// backend's back.
func rawUWSGI(addr, cache string) *wire.Client {
	return &wire.Client{Addr: addr, Cache: cache, DialTimeout: time.Second, Timeout: 3 * time.Second}
}

func TestUWSGIConformance(t *testing.T) {
	tests := []struct {
		name  string
		cache string
		opts  uwsgi.Options
	}{
		// no_expire=1 turns the server's sweeper off for the cache, so
		// expired entries stay on the server and every expiry rule holds
		// only by the backend's own clock check. That check is exact to
		// the millisecond, so the suite runs with millisecond TTLs, far
		// below uWSGI's own 1-second resolution.
		{"no sweeper, namespace tokens cached", uwsgiBigCache("c", ",no_expire=1"), uwsgi.Options{}},
		{"sweeper every second, namespace tokens read on every operation", uwsgiBigCache("c", ""),
			uwsgi.Options{NamespaceRefresh: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testservers.UWSGI(t, tc.cache)
			backendtest.Run(t, func(t *testing.T) backends.Backend {
				opts := tc.opts
				opts.Addr, opts.Cache, opts.MaxValueSize, opts.Namespaces = srv.Addr, "c", 1<<20, backendtest.ClearedPrefixes()
				return newTestUWSGI(t, opts)
			}, backendtest.Options{TTLResolution: time.Millisecond, AtomicAdd: true})
		})
	}
}

func TestUWSGIOpen(t *testing.T) {
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": "mycache@127.0.0.1:4000"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name       string
		settings   map[string]any
		wantString string // the backend's String, when Open succeeds
		wantErr    string // a substring of the error, which wraps ErrConfig
	}{
		{"name@host:port", base(nil), "mycache@127.0.0.1:4000", ""},
		{"the old lowercase type name", base(map[string]any{"CACHE_TYPE": "uwsgi"}), "mycache@127.0.0.1:4000", ""},
		{"a name alone means the default address", base(map[string]any{"CACHE_UWSGI_NAME": "mycache"}), "mycache@" + uwsgi.DefaultAddr, ""},
		{"@host:port means the server's first cache", base(map[string]any{"CACHE_UWSGI_NAME": "@10.1.2.3:3031"}), "@10.1.2.3:3031", ""},
		{"name@path is a Unix socket", base(map[string]any{"CACHE_UWSGI_NAME": "c@/run/uwsgi.sock"}), "c@/run/uwsgi.sock", ""},
		{"the address runs from the first @", base(map[string]any{"CACHE_UWSGI_NAME": "c@h:1@x"}), "c@h:1@x", ""},
		{"all options", base(map[string]any{"CACHE_OPTIONS": map[string]any{
			"dial_timeout": 0.5, "read_timeout": 2, "max_value_size": 1 << 20, "max_key_size": 4000,
			"max_conns": 8, "namespaces": []any{"x:", "y:"}, "namespace_refresh": 0,
		}}), "mycache@127.0.0.1:4000", ""},
		{"no CACHE_UWSGI_NAME", base(map[string]any{"CACHE_UWSGI_NAME": ""}), "", "CACHE_UWSGI_NAME"},
		{"no address after @", base(map[string]any{"CACHE_UWSGI_NAME": "mycache@"}), "", "no server address"},
		{"an unknown option", base(map[string]any{"CACHE_OPTIONS": map[string]any{"timeout": 1}}), "", `"timeout"`},
		{"a dial_timeout that is neither seconds nor a duration", base(map[string]any{"CACHE_OPTIONS": map[string]any{"dial_timeout": "soon"}}), "", "dial_timeout"},
		{"a negative read_timeout", base(map[string]any{"CACHE_OPTIONS": map[string]any{"read_timeout": -1}}), "", "read_timeout"},
		{"a zero max_value_size", base(map[string]any{"CACHE_OPTIONS": map[string]any{"max_value_size": 0}}), "", "max_value_size"},
		{"a max_value_size that leaves no room for the header", base(map[string]any{"CACHE_OPTIONS": map[string]any{"max_value_size": 9}}), "", "no room"},
		{"a zero max_conns", base(map[string]any{"CACHE_OPTIONS": map[string]any{"max_conns": 0}}), "", "max_conns"},
		{"a max_conns that is not a number", base(map[string]any{"CACHE_OPTIONS": map[string]any{"max_conns": "many"}}), "", "max_conns"},
		{"a max_key_size over uWSGI's limit", base(map[string]any{"CACHE_OPTIONS": map[string]any{"max_key_size": 1 << 16}}), "", "65536"},
		{"namespaces that are not a list", base(map[string]any{"CACHE_OPTIONS": map[string]any{"namespaces": "x:"}}), "", "namespaces"},
		{"a namespace that is not a string", base(map[string]any{"CACHE_OPTIONS": map[string]any{"namespaces": []any{"x:", 1}}}), "", "item 1"},
		{"an empty namespace", base(map[string]any{"CACHE_OPTIONS": map[string]any{"namespaces": []string{""}}}), "", "empty uWSGI namespace"},
		{"a namespace too long for the key limit", base(map[string]any{"CACHE_OPTIONS": map[string]any{
			"max_key_size": 30, "namespaces": []string{strings.Repeat("n", 30)}}}), "", "too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := backends.FromMap(tc.settings)
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, backends.ErrConfig)
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			u, ok := c.Backend().(*uwsgi.Backend)
			require.True(t, ok, "Open built a %T", c.Backend())
			assert.Equal(t, tc.wantString, u.String())
		})
	}
}

func TestUWSGIOptionsTakeEffect(t *testing.T) {
	// The limits are checked before any request, so no server is needed.
	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE": "UWSGICache", "CACHE_UWSGI_NAME": "c@127.0.0.1:1", "CACHE_KEY_PREFIX": "",
		"CACHE_OPTIONS": map[string]any{"max_value_size": 100, "max_key_size": 10},
	})
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	ctx := t.Context()

	err = c.Set(ctx, "k", bytes.Repeat([]byte("v"), 100))
	require.ErrorIs(t, err, backends.ErrValueTooLarge)
	assert.ErrorContains(t, err, "100-byte limit")
	_, err = c.Has(ctx, strings.Repeat("k", 11))
	require.ErrorIs(t, err, uwsgi.ErrMalformedKey)
	assert.ErrorContains(t, err, "10-byte limit")
}

func TestUWSGIOpenDeclaresTheKeyPrefixAsANamespace(t *testing.T) {
	srv := testservers.UWSGI(t)
	open := func(prefix string) *backends.Cache {
		cfg, err := backends.FromMap(map[string]any{
			"CACHE_TYPE": "UWSGICache", "CACHE_KEY_PREFIX": prefix,
			"CACHE_UWSGI_NAME": testservers.UWSGICacheName + "@" + srv.Addr,
		})
		require.NoError(t, err)
		c, err := backends.Open(cfg)
		require.NoError(t, err)
		return c
	}
	ctx := t.Context()
	flask := open("flask_cache_") // Flask's default prefix
	other := open("other_")
	require.NoError(t, flask.Set(ctx, "k", "mine"))
	require.NoError(t, other.Set(ctx, "k", "theirs"))

	require.NoError(t, flask.Clear(ctx))
	v, err := flask.GetValue(ctx, "k")
	require.NoError(t, err)
	assert.False(t, v.Found(), "the cleared prefix's entry")
	var s string
	found, err := other.Get(ctx, "k", &s)
	require.NoError(t, err)
	assert.True(t, found && s == "theirs", "the other prefix's entry survives, got %q (found %v)", s, found)
}

// uwsgiHeader is the documented size of the header UWSGI stores before a
// value: a flags byte, 8 bytes of expiry time for an expiring entry, and 8
// bytes of namespace token in a namespace.
func uwsgiHeader(namespaced, expiring bool) int {
	n := 1
	if namespaced {
		n += 8
	}
	if expiring {
		n += 8
	}
	return n
}

func TestUWSGIValueSizeLimit(t *testing.T) {
	const blocksize = 4096
	srv := testservers.UWSGI(t, "name=c,items=32,blocksize="+strconv.Itoa(blocksize))
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c", MaxValueSize: blocksize, Namespaces: []string{"ns:"}})

	writes := []struct {
		name     string
		expiring bool
		write    func(key string, v []byte) error
	}{
		{"Set", false, func(k string, v []byte) error { return b.Set(ctx, k, v, backends.NoExpiry) }},
		{"Set with a timeout", true, func(k string, v []byte) error { return b.Set(ctx, k, v, time.Hour) }},
		{"Add", false, func(k string, v []byte) error { _, err := b.Add(ctx, k, v, backends.NoExpiry); return err }},
		{"SetMany with a timeout", true, func(k string, v []byte) error { return b.SetMany(ctx, map[string][]byte{k: v}, time.Hour) }},
	}
	for _, w := range writes {
		for _, key := range []string{"plain", "ns:key"} {
			t.Run(w.name+" of "+key, func(t *testing.T) {
				require.NoError(t, b.Clear(ctx, ""))
				fits := blocksize - uwsgiHeader(strings.HasPrefix(key, "ns:"), w.expiring)
				require.NoError(t, w.write(key, bytes.Repeat([]byte("v"), fits)), "a value of the limit less the header")
				got, found, err := b.Get(ctx, key)
				require.NoError(t, err)
				require.True(t, found)
				assert.Len(t, got, fits)

				err = w.write(key+"2", bytes.Repeat([]byte("v"), fits+1))
				require.ErrorIs(t, err, backends.ErrValueTooLarge, "one byte more")
				assert.ErrorContains(t, err, fmt.Sprintf("%d bytes", fits+1), "the error names the value's size")
				assert.ErrorContains(t, err, fmt.Sprintf("%d-byte limit", blocksize), "and the limit")
				has, err := b.Has(ctx, key+"2")
				require.NoError(t, err)
				assert.False(t, has, "nothing was stored")
			})
		}
	}

	t.Run("a value over the server's item size but within MaxValueSize is refused by the server", func(t *testing.T) {
		lax := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c", MaxValueSize: 1 << 20})
		err := lax.Set(ctx, "big", make([]byte, 100<<10), backends.NoExpiry)
		require.ErrorIs(t, err, backends.ErrValueTooLarge)
		assert.ErrorContains(t, err, "item size")
		// Small enough to be read whole with the request: the server reads
		// it and then refuses, which looks like any other refusal.
		err = lax.Set(ctx, "over", make([]byte, blocksize), backends.NoExpiry)
		require.True(t, errors.Is(err, backends.ErrValueTooLarge) || errors.Is(err, uwsgi.ErrNotStored), "error %v", err)
		assert.ErrorContains(t, err, "blocksize")
	})

	t.Run("Get of a stored value over MaxValueSize is an error", func(t *testing.T) {
		big := testservers.UWSGI(t, uwsgiBigCache("c", ""))
		lax := newTestUWSGI(t, uwsgi.Options{Addr: big.Addr, Cache: "c", MaxValueSize: 1 << 20})
		require.NoError(t, lax.Set(ctx, "k", make([]byte, 10000), backends.NoExpiry))
		strict := newTestUWSGI(t, uwsgi.Options{Addr: big.Addr, Cache: "c", MaxValueSize: 10000})
		_, _, err := strict.Get(ctx, "k")
		require.ErrorIs(t, err, backends.ErrValueTooLarge)
		assert.ErrorContains(t, err, "10001 bytes")
	})
}

func TestUWSGIKeys(t *testing.T) {
	srv := testservers.UWSGI(t)
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName})

	longest := strings.Repeat("k", uwsgi.DefaultMaxKeySize)
	require.NoError(t, b.Set(ctx, longest, []byte("v"), backends.NoExpiry), "a key of uWSGI's default keysize")
	got, found, err := b.Get(ctx, longest)
	require.NoError(t, err)
	assert.True(t, found && string(got) == "v")

	bad := []struct{ name, key, want string }{
		{"a key over the key limit", longest + "k", fmt.Sprintf("%d bytes, over the %d-byte limit", len(longest)+1, len(longest))},
		{"a key in the reserved space", "\x00fragcache:mine", "reserves"},
	}
	ops := []struct {
		name string
		op   func(key string) error
	}{
		{"Get", func(k string) error { _, _, err := b.Get(ctx, k); return err }},
		{"Set", func(k string) error { return b.Set(ctx, k, []byte("v"), backends.NoExpiry) }},
		{"Add", func(k string) error { _, err := b.Add(ctx, k, []byte("v"), backends.NoExpiry); return err }},
		{"Delete", func(k string) error { _, err := b.Delete(ctx, k); return err }},
		{"Has", func(k string) error { _, err := b.Has(ctx, k); return err }},
		{"Inc", func(k string) error { _, err := b.Inc(ctx, k, 1, backends.NoExpiry); return err }},
		{"GetMany", func(k string) error { _, err := b.GetMany(ctx, []string{k}); return err }},
	}
	for _, k := range bad {
		for _, op := range ops {
			t.Run(op.name+" of "+k.name+" is ErrMalformedKey", func(t *testing.T) {
				err := op.op(k.key)
				require.ErrorIs(t, err, uwsgi.ErrMalformedKey)
				assert.ErrorContains(t, err, k.want)
			})
		}
	}
}

func TestUWSGIFullCache(t *testing.T) {
	const items = 4
	srv := testservers.UWSGI(t, "name=c,items="+strconv.Itoa(items))
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c"})
	// uWSGI reserves slot 0, so items=N holds N-1 keys.
	for i := range items - 1 {
		require.NoError(t, b.Set(ctx, fmt.Sprint("k", i), []byte("v"), backends.NoExpiry))
	}
	refused := []struct {
		name string
		op   func() error
	}{
		{"Set", func() error { return b.Set(ctx, "new", []byte("v"), backends.NoExpiry) }},
		{"Add", func() error {
			added, err := b.Add(ctx, "new", []byte("v"), backends.NoExpiry)
			assert.False(t, added)
			return err
		}},
		{"Inc", func() error { _, err := b.Inc(ctx, "new", 1, backends.NoExpiry); return err }},
		{"SetMany", func() error { return b.SetMany(ctx, map[string][]byte{"new": []byte("v")}, backends.NoExpiry) }},
	}
	for _, r := range refused {
		t.Run(r.name+" of a new key in a full cache is ErrNotStored", func(t *testing.T) {
			err := r.op()
			require.ErrorIs(t, err, uwsgi.ErrNotStored)
			assert.ErrorContains(t, err, "the cache is full")
			has, err := b.Has(ctx, "new")
			require.NoError(t, err)
			assert.False(t, has)
		})
	}
	t.Run("a present key can still be overwritten and incremented", func(t *testing.T) {
		require.NoError(t, b.Set(ctx, "k0", []byte("5"), backends.NoExpiry))
		n, err := b.Inc(ctx, "k0", 1, backends.NoExpiry)
		require.NoError(t, err)
		assert.Equal(t, int64(6), n)
	})
	t.Run("a namespace whose token does not fit is an error", func(t *testing.T) {
		nb := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c", Namespaces: []string{"ns:"}})
		err := nb.Set(ctx, "ns:k", []byte("v"), backends.NoExpiry)
		require.ErrorIs(t, err, uwsgi.ErrNotStored)
		assert.ErrorContains(t, err, "token")
	})
	t.Run("a deleted key makes room", func(t *testing.T) {
		deleted, err := b.Delete(ctx, "k1")
		require.NoError(t, err)
		require.True(t, deleted)
		added, err := b.Add(ctx, "new", []byte("v"), backends.NoExpiry)
		require.NoError(t, err)
		assert.True(t, added)
	})
}

func TestUWSGIExpiredEntriesTheServerStillHolds(t *testing.T) {
	// Without a sweeper the server returns expired entries forever; the
	// backend must treat them as gone by its own clock.
	srv := testservers.UWSGI(t, "name=c,items=32,no_expire=1")
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c"})
	raw := rawUWSGI(srv.Addr, "c")
	checks := []struct {
		name  string
		check func(t *testing.T, key string)
	}{
		{"Get misses", func(t *testing.T, k string) {
			_, found, err := b.Get(ctx, k)
			require.NoError(t, err)
			assert.False(t, found)
		}},
		{"GetMany misses", func(t *testing.T, k string) {
			vs, err := b.GetMany(ctx, []string{k})
			require.NoError(t, err)
			assert.Nil(t, vs[0])
		}},
		{"Has is false", func(t *testing.T, k string) {
			has, err := b.Has(ctx, k)
			require.NoError(t, err)
			assert.False(t, has)
		}},
		{"Delete reports false and removes it", func(t *testing.T, k string) {
			deleted, err := b.Delete(ctx, k)
			require.NoError(t, err)
			assert.False(t, deleted)
			assert.ErrorIs(t, raw.Exists(ctx, k), wire.ErrNoReply)
		}},
		{"Add replaces it", func(t *testing.T, k string) {
			added, err := b.Add(ctx, k, []byte("new"), backends.NoExpiry)
			require.NoError(t, err)
			assert.True(t, added)
			got, found, err := b.Get(ctx, k)
			require.NoError(t, err)
			assert.True(t, found && string(got) == "new")
		}},
		{"Inc starts from delta with the new ttl", func(t *testing.T, k string) {
			n, err := b.Inc(ctx, k, 3, backends.NoExpiry)
			require.NoError(t, err)
			assert.Equal(t, int64(3), n)
			_, expires, err := raw.Get(ctx, k)
			require.NoError(t, err)
			assert.Zero(t, expires)
		}},
	}
	const ttl = 100 * time.Millisecond
	for _, c := range checks {
		require.NoError(t, b.Set(ctx, c.name, []byte("41"), ttl))
	}
	time.Sleep(ttl)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := raw.Get(ctx, c.name)
			require.NoError(t, err, "the server still holds the entry")
			c.check(t, c.name)
		})
	}
}

func TestUWSGILRUCache(t *testing.T) {
	// purge_lru=1 is uWSGI's only eviction, and such a cache stores
	// timeouts unconverted and never expires anything itself.
	const items = 4
	srv := testservers.UWSGI(t, "name=c,purge_lru=1,items="+strconv.Itoa(items))
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: "c"})

	const ttl = 300 * time.Millisecond
	require.NoError(t, b.Set(ctx, "expiring", []byte("v"), ttl))
	_, found, err := b.Get(ctx, "expiring")
	require.NoError(t, err)
	assert.True(t, found, "an entry with a timeout is live before it expires")
	time.Sleep(ttl)
	_, found, err = b.Get(ctx, "expiring")
	require.NoError(t, err)
	assert.False(t, found, "and gone after")

	// uWSGI reserves slot 0, so items=N holds N-1 keys; one more evicts
	// the least recently used instead of failing.
	for i := range items {
		require.NoError(t, b.Set(ctx, fmt.Sprint("k", i), []byte("v"), backends.NoExpiry), "Set of key %d", i)
	}
	_, found, err = b.Get(ctx, fmt.Sprint("k", items-1))
	require.NoError(t, err)
	assert.True(t, found, "the newest key")
}

func TestUWSGIIncKeepsTheRemainingTTL(t *testing.T) {
	srv := testservers.UWSGI(t)
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName})
	raw := rawUWSGI(srv.Addr, testservers.UWSGICacheName)
	require.NoError(t, b.Set(ctx, "n", []byte("1"), time.Hour))
	_, before, err := raw.Get(ctx, "n")
	require.NoError(t, err)
	_, err = b.Inc(ctx, "n", 1, time.Minute)
	require.NoError(t, err)
	_, after, err := raw.Get(ctx, "n")
	require.NoError(t, err)
	// The same second, or the next if the clock ticked between the
	// requests.
	assert.InDelta(t, before, after, 1, "expiry before Inc %d, after %d", before, after)
}

func TestUWSGINamespaces(t *testing.T) {
	srv := testservers.UWSGI(t)
	ctx := t.Context()
	name := testservers.UWSGICacheName
	nested := []string{"a:", "a:b:"}
	newBackend := func(refresh time.Duration, namespaces ...string) *uwsgi.Backend {
		return newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: name, Namespaces: namespaces, NamespaceRefresh: refresh})
	}
	found := func(b *uwsgi.Backend, key string) bool {
		t.Helper()
		_, ok, err := b.Get(ctx, key)
		require.NoError(t, err)
		return ok
	}
	setAll := func(b *uwsgi.Backend, keys ...string) {
		t.Helper()
		require.NoError(t, b.Clear(ctx, ""))
		for _, k := range keys {
			require.NoError(t, b.Set(ctx, k, []byte(k), backends.NoExpiry))
		}
	}

	t.Run("Clear of a namespace also clears the declared namespaces inside it", func(t *testing.T) {
		b := newBackend(0, nested...)
		tests := []struct {
			clear      string
			gone, kept []string
		}{
			{"a:", []string{"a:x", "a:b:x"}, []string{"ab", "b:x", "x"}},
			{"a:b:", []string{"a:b:x"}, []string{"a:x", "a:bx", "x"}},
		}
		for _, tc := range tests {
			setAll(b, append(tc.gone, tc.kept...)...)
			require.NoError(t, b.Clear(ctx, tc.clear))
			for _, k := range tc.gone {
				assert.False(t, found(b, k), "%q after Clear(%q)", k, tc.clear)
			}
			for _, k := range tc.kept {
				assert.True(t, found(b, k), "%q after Clear(%q)", k, tc.clear)
			}
		}
	})

	t.Run("Clear of an undeclared prefix is errors.ErrUnsupported and removes nothing", func(t *testing.T) {
		b := newBackend(0, nested...)
		setAll(b, "a:b", "c:d")
		for _, prefix := range []string{"c:", "a", "a:b"} {
			err := b.Clear(ctx, prefix)
			require.ErrorIs(t, err, errors.ErrUnsupported, "Clear(%q)", prefix)
			assert.ErrorContains(t, err, "declared")
		}
		assert.True(t, found(b, "a:b"))
		assert.True(t, found(b, "c:d"))
	})

	t.Run("another backend sees a Clear once its refresh interval passes", func(t *testing.T) {
		for _, refresh := range []time.Duration{-1, 300 * time.Millisecond} {
			clearer, reader := newBackend(refresh, "p:"), newBackend(refresh, "p:")
			setAll(clearer, "p:k")
			require.True(t, found(reader, "p:k"))
			cleared := time.Now()
			require.NoError(t, clearer.Clear(ctx, "p:"))
			assert.False(t, found(clearer, "p:k"), "the clearing backend sees its Clear at once")
			for found(reader, "p:k") {
				require.Less(t, time.Since(cleared), max(refresh, 0)+time.Second, "refresh %v: the other backend still finds the entry", refresh)
				time.Sleep(20 * time.Millisecond)
			}
		}
	})

	t.Run("values written before a token went missing stay dead", func(t *testing.T) {
		b := newBackend(-1, "p:")
		setAll(b, "p:k")
		// As an evicting cache might do.
		require.NoError(t, rawUWSGI(srv.Addr, name).Del(ctx, "\x00fragcache:namespace:p:"))
		assert.False(t, found(b, "p:k"))
		require.NoError(t, b.Set(ctx, "p:k", []byte("again"), backends.NoExpiry))
		assert.True(t, found(b, "p:k"))
	})

	t.Run("Clear of everything empties namespaces too and they keep working", func(t *testing.T) {
		b := newBackend(0, "p:")
		setAll(b, "p:k", "k")
		require.NoError(t, b.Clear(ctx, ""))
		assert.False(t, found(b, "p:k"))
		assert.False(t, found(b, "k"))
		require.NoError(t, b.Set(ctx, "p:k", []byte("v"), backends.NoExpiry))
		assert.True(t, found(b, "p:k"))
		require.NoError(t, b.Clear(ctx, "p:"))
		assert.False(t, found(b, "p:k"))
	})

	t.Run("a plain value in a namespace is a miss, a stamped value outside one a hit", func(t *testing.T) {
		plain, stamped := newBackend(0), newBackend(0, "p:")
		require.NoError(t, plain.Clear(ctx, ""))
		require.NoError(t, plain.Set(ctx, "p:plain", []byte("v"), backends.NoExpiry))
		require.NoError(t, stamped.Set(ctx, "p:stamped", []byte("v"), backends.NoExpiry))
		assert.False(t, found(stamped, "p:plain"), "Clear of p: could not have reached it")
		assert.True(t, found(plain, "p:stamped"), "a backend without the namespace cannot check the token")
	})
}

func TestUWSGIValuesOfOtherClientsAreMisses(t *testing.T) {
	srv := testservers.UWSGI(t)
	ctx := t.Context()
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName})
	raw := rawUWSGI(srv.Addr, testservers.UWSGICacheName)
	// What Flask-Caching stores for "hello": a pickle.
	pickle := []byte("\x80\x05\x95\x09\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94.")
	require.NoError(t, raw.Update(ctx, "fromflask", 0, pickle))
	_, found, err := b.Get(ctx, "fromflask")
	require.NoError(t, err)
	assert.False(t, found)
	added, err := b.Add(ctx, "fromflask", []byte("mine"), backends.NoExpiry)
	require.NoError(t, err)
	assert.True(t, added, "Add replaces a value it cannot read")
}

func TestUWSGIServerDown(t *testing.T) {
	const dialTimeout, readTimeout = 300 * time.Millisecond, 500 * time.Millisecond
	srv := testservers.UWSGI(t)
	ctx := t.Context()
	up := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName})
	require.NoError(t, up.Set(ctx, "k", []byte("v"), backends.NoExpiry))
	srv.Stop()

	ops := []struct {
		name string
		op   func(b *uwsgi.Backend) error
	}{
		{"Get", func(b *uwsgi.Backend) error { _, _, err := b.Get(ctx, "k"); return err }},
		{"Set", func(b *uwsgi.Backend) error { return b.Set(ctx, "k", []byte("v"), backends.NoExpiry) }},
		{"Add", func(b *uwsgi.Backend) error { _, err := b.Add(ctx, "k", []byte("v"), backends.NoExpiry); return err }},
		{"Delete", func(b *uwsgi.Backend) error { _, err := b.Delete(ctx, "k"); return err }},
		{"Has", func(b *uwsgi.Backend) error { _, err := b.Has(ctx, "k"); return err }},
		{"Inc", func(b *uwsgi.Backend) error { _, err := b.Inc(ctx, "k", 1, backends.NoExpiry); return err }},
		{"GetMany", func(b *uwsgi.Backend) error { _, err := b.GetMany(ctx, []string{"k", "l"}); return err }},
		{"SetMany", func(b *uwsgi.Backend) error { return b.SetMany(ctx, map[string][]byte{"k": nil}, backends.NoExpiry) }},
		{"DeleteMany", func(b *uwsgi.Backend) error { _, err := b.DeleteMany(ctx, []string{"k"}); return err }},
		{"Clear", func(b *uwsgi.Backend) error { return b.Clear(ctx, "") }},
	}
	// Waiting for timeouts is slow, so those rows run a few operations:
	// one read, one write, one many-key operation.
	slowOps := []string{"Get", "Set", "GetMany"}
	servers := []struct {
		name    string
		slow    bool
		addr    func(t testing.TB) string
		check   func(t *testing.T, err error)
		atLeast time.Duration
		within  time.Duration
	}{
		{"nothing listening", false, func(testing.TB) string { return srv.Addr }, func(t *testing.T, err error) {
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		}, 0, dialTimeout},
		{"connection not accepted", true, func(t testing.TB) string {
			addr, ok := testservers.FullBacklog(t)
			if !ok {
				t.Skip("the kernel accepts connections beyond a full backlog here")
			}
			return addr
		}, func(t *testing.T, err error) {
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "error %v is not a timeout", err)
			assert.ErrorContains(t, err, "connect")
		}, dialTimeout, 2 * dialTimeout},
		{"no reply", true, testservers.Stalled, func(t *testing.T, err error) {
			var ne net.Error
			assert.True(t, errors.As(err, &ne) && ne.Timeout(), "error %v is not a timeout", err)
			assert.ErrorContains(t, err, "read reply")
		}, readTimeout, dialTimeout + 2*readTimeout},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			addr := s.addr(t)
			b := newTestUWSGI(t, uwsgi.Options{Addr: addr, Cache: testservers.UWSGICacheName, DialTimeout: dialTimeout, ReadTimeout: readTimeout})
			for _, op := range ops {
				if s.slow && !slices.Contains(slowOps, op.name) {
					continue
				}
				t.Run(op.name, func(t *testing.T) {
					start := time.Now()
					err := op.op(b)
					elapsed := time.Since(start)
					require.Error(t, err)
					assert.ErrorContains(t, err, addr, "the error names the server")
					s.check(t, err)
					assert.GreaterOrEqual(t, elapsed, s.atLeast)
					assert.Less(t, elapsed, s.within+500*time.Millisecond, "error after %v", elapsed)
				})
			}
		})
	}

	t.Run("a restarted server is used again", func(t *testing.T) {
		srv.Restart()
		_, found, err := up.Get(ctx, "k")
		require.NoError(t, err)
		assert.False(t, found, "uWSGI keeps its cache in memory only")
		require.NoError(t, up.Set(ctx, "k", []byte("v"), backends.NoExpiry))
	})
}

func TestUWSGIContext(t *testing.T) {
	addr := testservers.Stalled(t)
	b := newTestUWSGI(t, uwsgi.Options{Addr: addr, ReadTimeout: time.Hour})
	const after = 200 * time.Millisecond
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{"deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), after)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"cancellation", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(after, cancel)
			return ctx
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run("a context's "+tc.name+" ends a request and a many-key operation", func(t *testing.T) {
			for _, op := range []func(ctx context.Context) error{
				func(ctx context.Context) error { _, _, err := b.Get(ctx, "k"); return err },
				func(ctx context.Context) error { _, err := b.GetMany(ctx, []string{"a", "b", "c"}); return err },
			} {
				start := time.Now()
				err := op(tc.ctx(t))
				require.ErrorIs(t, err, tc.want)
				assert.Less(t, time.Since(start), after+time.Second)
			}
		})
	}
}

func TestUWSGILeavesNoGoroutines(t *testing.T) {
	srv := testservers.UWSGI(t)
	stalled := testservers.Stalled(t)
	ctx := t.Context()
	before := runtime.NumGoroutine()

	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName, Namespaces: []string{"p:"}})
	items := map[string][]byte{}
	var keys []string
	for i := range 50 {
		k := fmt.Sprint("p:", i)
		items[k], keys = []byte(k), append(keys, k)
	}
	require.NoError(t, b.SetMany(ctx, items, backends.NoExpiry))
	_, err := b.GetMany(ctx, keys)
	require.NoError(t, err)
	_, err = b.Inc(ctx, "n", 1, backends.NoExpiry)
	require.NoError(t, err)
	_, err = b.DeleteMany(ctx, keys)
	require.NoError(t, err)
	require.NoError(t, b.Clear(ctx, "p:"))

	slow := newTestUWSGI(t, uwsgi.Options{Addr: stalled, ReadTimeout: time.Hour})
	for _, d := range []time.Duration{time.Millisecond, 50 * time.Millisecond} {
		tctx, cancel := context.WithTimeout(ctx, d)
		_, err = slow.GetMany(tctx, keys)
		cancel()
		require.Error(t, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	_, _, err = slow.Get(cctx, "k")
	require.ErrorIs(t, err, context.Canceled)

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestUWSGIClose(t *testing.T) {
	srv := testservers.UWSGI(t)
	b := newTestUWSGI(t, uwsgi.Options{Addr: srv.Addr, Cache: testservers.UWSGICacheName})
	require.NoError(t, b.Close())
	_, _, err := b.Get(t.Context(), "k")
	assert.ErrorIs(t, err, backends.ErrClosed)
	assert.NoError(t, b.Close(), "a second Close is harmless")
}

// ExampleNew shows a Cache over a uWSGI server started with
//
//	uwsgi --plugin cache --master --socket 127.0.0.1:3031 \
//	      --cache2 name=mycache,items=1000,blocksize=65536
func ExampleNew() {
	// Through the Flask-style configuration:
	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":       "UWSGICache",
		"CACHE_UWSGI_NAME": "mycache@127.0.0.1:3031",
		"CACHE_OPTIONS":    map[string]any{"read_timeout": 1, "max_value_size": 65536},
	})
	if err != nil {
		panic(err)
	}
	cache, err := backends.Open(cfg) // CACHE_KEY_PREFIX "flask_cache_" can be cleared
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	// Or directly:
	b, err := uwsgi.New(uwsgi.Options{Addr: "127.0.0.1:3031", Cache: "mycache", Namespaces: []string{"pages:"}})
	if err != nil {
		panic(err)
	}
	pages := backends.New(b, backends.CacheOptions{KeyPrefix: "pages:", DefaultTimeout: 5 * time.Minute})
	ctx := context.Background()
	if err := pages.Set(ctx, "/", "<html>…</html>"); err != nil {
		fmt.Println("set:", err)
	}
	_ = pages.Clear(ctx) // replaces the namespace token of "pages:"
}
