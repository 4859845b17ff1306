package backends_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// recorder is a Backend that records the key (or keys) and TTL of every call
// before passing it on to a Simple, so tests can see what the Cache sends.
type recorder struct {
	s    *backends.Simple
	mu   sync.Mutex
	keys []string
	ttls []time.Duration
}

func newRecorder() *recorder { return &recorder{s: backends.NewSimple(0)} }

func (r *recorder) note(ttl time.Duration, keys ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, keys...)
	if ttl != noTTL {
		r.ttls = append(r.ttls, ttl)
	}
}

// take returns and forgets what was recorded.
func (r *recorder) take() (keys []string, ttls []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys, ttls = r.keys, r.ttls
	r.keys, r.ttls = nil, nil
	return keys, ttls
}

const noTTL = time.Duration(math.MinInt64) // note an operation that takes no TTL

func (r *recorder) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r.note(noTTL, key)
	return r.s.Get(ctx, key)
}

func (r *recorder) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	r.note(noTTL, keys...)
	return r.s.GetMany(ctx, keys)
}

func (r *recorder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.note(ttl, key)
	return r.s.Set(ctx, key, value, ttl)
}

func (r *recorder) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	keys := make([]string, 0, len(items))
	for k := range items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r.note(ttl, keys...)
	return r.s.SetMany(ctx, items, ttl)
}

func (r *recorder) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.note(ttl, key)
	return r.s.Add(ctx, key, value, ttl)
}

func (r *recorder) Delete(ctx context.Context, key string) (bool, error) {
	r.note(noTTL, key)
	return r.s.Delete(ctx, key)
}

func (r *recorder) DeleteMany(ctx context.Context, keys []string) (int, error) {
	r.note(noTTL, keys...)
	return r.s.DeleteMany(ctx, keys)
}

func (r *recorder) Has(ctx context.Context, key string) (bool, error) {
	r.note(noTTL, key)
	return r.s.Has(ctx, key)
}

func (r *recorder) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	r.note(ttl, key)
	return r.s.Inc(ctx, key, delta, ttl)
}

func (r *recorder) Clear(ctx context.Context, prefix string) error {
	r.note(noTTL, prefix)
	return r.s.Clear(ctx, prefix)
}

func (r *recorder) Close() error { return r.s.Close() }

var errInjected = errors.New("injected failure")

// faulty is a Simple whose writes fail for the keys in fail, as a backend
// whose server rejects some keys would; real backends' own failures are
// tested with the backends.
type faulty struct {
	*backends.Simple
	fail map[string]bool // keys as the backend sees them, prefix included
}

func (f *faulty) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if f.fail[key] {
		return errInjected
	}
	return f.Simple.Set(ctx, key, value, ttl)
}

func (f *faulty) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	var errs []error
	for k, v := range items {
		if err := f.Set(ctx, k, v, ttl); err != nil {
			errs = append(errs, &backends.KeyError{Key: k, Err: err})
		}
	}
	return errors.Join(errs...)
}

func (f *faulty) DeleteMany(ctx context.Context, keys []string) (int, error) {
	var errs []error
	n := 0
	for _, k := range keys {
		if f.fail[k] {
			errs = append(errs, &backends.KeyError{Key: k, Err: errInjected})
			continue
		}
		if ok, _ := f.Delete(ctx, k); ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// keyErrors returns the keys of every *KeyError in err's tree, sorted.
func keyErrors(err error) []string {
	var keys []string
	var walk func(error)
	walk = func(err error) {
		if ke, ok := err.(*backends.KeyError); ok {
			keys = append(keys, ke.Key)
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	walk(err)
	slices.Sort(keys)
	return keys
}

// logBuffer returns a logger that writes text records into the buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestTimeoutResolution(t *testing.T) {
	const def = 300 * time.Second
	tests := []struct {
		name    string
		timeout []time.Duration
		want    time.Duration
		wantErr bool
	}{
		{"none means the default", nil, def, false},
		{"zero means the default", []time.Duration{0}, def, false},
		{"NoExpiry never expires", []time.Duration{backends.NoExpiry}, backends.NoExpiry, false},
		{"a positive timeout is used as given", []time.Duration{5 * time.Second}, 5 * time.Second, false},
		{"a nanosecond is a TTL", []time.Duration{time.Nanosecond}, time.Nanosecond, false},
		{"negative other than NoExpiry is invalid", []time.Duration{-time.Second}, 0, true},
		{"-2ns is invalid", []time.Duration{-2}, 0, true},
		{"more than one is invalid", []time.Duration{time.Second, 2 * time.Second}, 0, true},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			c := backends.New(r, backends.CacheOptions{DefaultTimeout: def})
			got, err := c.Timeout(tt.timeout...)
			if tt.wantErr {
				require.ErrorIs(t, err, backends.ErrInvalidTimeout)
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
			}

			// Every writing method resolves its timeout the same way and
			// rejects a bad one before the backend sees anything.
			errs := []error{
				c.Set(ctx, "k", 1, tt.timeout...),
				c.SetMany(ctx, map[string]any{"k": 1}, tt.timeout...),
			}
			_, err = c.Add(ctx, "new", 1, tt.timeout...)
			errs = append(errs, err)
			keys, ttls := r.take()
			for _, err := range errs {
				if tt.wantErr {
					assert.ErrorIs(t, err, backends.ErrInvalidTimeout)
				} else {
					assert.NoError(t, err)
				}
			}
			if tt.wantErr {
				assert.Empty(t, keys, "nothing reaches the backend")
				return
			}
			assert.Equal(t, []time.Duration{tt.want, tt.want, tt.want}, ttls)
		})
	}
}

func TestIncAndDecStoreAMissingKeyWithTheDefaultTimeout(t *testing.T) {
	ctx := context.Background()
	r := newRecorder()
	c := backends.New(r, backends.CacheOptions{DefaultTimeout: time.Minute})
	_, err := c.Inc(ctx, "n", 1)
	require.NoError(t, err)
	_, err = c.Dec(ctx, "m", 1)
	require.NoError(t, err)
	_, ttls := r.take()
	assert.Equal(t, []time.Duration{time.Minute, time.Minute}, ttls)
}

func TestKeyPrefixIsAppliedOnEveryOperation(t *testing.T) {
	const prefix = "app:"
	ctx := context.Background()
	ops := []struct {
		name string
		run  func(c *backends.Cache) error
		keys []string // as the caller names them
	}{
		{"Get", func(c *backends.Cache) error { _, err := c.Get(ctx, "a", new(int)); return err }, []string{"a"}},
		{"GetValue", func(c *backends.Cache) error { _, err := c.GetValue(ctx, "a"); return err }, []string{"a"}},
		{"GetMany", func(c *backends.Cache) error { _, err := c.GetMany(ctx, "a", "b"); return err }, []string{"a", "b"}},
		{"GetDict", func(c *backends.Cache) error { _, err := c.GetDict(ctx, "a", "b"); return err }, []string{"a", "b"}},
		{"Set", func(c *backends.Cache) error { return c.Set(ctx, "a", 1) }, []string{"a"}},
		{"Add", func(c *backends.Cache) error { _, err := c.Add(ctx, "a", 1); return err }, []string{"a"}},
		{"SetMany", func(c *backends.Cache) error { return c.SetMany(ctx, map[string]any{"a": 1, "b": 2}) }, []string{"a", "b"}},
		{"Delete", func(c *backends.Cache) error { _, err := c.Delete(ctx, "a"); return err }, []string{"a"}},
		{"DeleteMany", func(c *backends.Cache) error { _, err := c.DeleteMany(ctx, "a", "b"); return err }, []string{"a", "b"}},
		{"Has", func(c *backends.Cache) error { _, err := c.Has(ctx, "a"); return err }, []string{"a"}},
		{"Inc", func(c *backends.Cache) error { _, err := c.Inc(ctx, "a", 1); return err }, []string{"a"}},
		{"Dec", func(c *backends.Cache) error { _, err := c.Dec(ctx, "a", 1); return err }, []string{"a"}},
		{"Clear", func(c *backends.Cache) error { return c.Clear(ctx) }, []string{""}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			r := newRecorder()
			c := backends.New(r, backends.CacheOptions{KeyPrefix: prefix})
			require.NoError(t, op.run(c))
			got, _ := r.take()
			want := make([]string, len(op.keys))
			for i, k := range op.keys {
				want[i] = prefix + k
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestKeyPrefixSeparatesCachesSharingABackend(t *testing.T) {
	ctx := context.Background()
	s := backends.NewSimple(0)
	a := backends.New(s, backends.CacheOptions{KeyPrefix: "a:"})
	b := backends.New(s, backends.CacheOptions{KeyPrefix: "b:"})
	require.NoError(t, a.Set(ctx, "k", "from a"))
	require.NoError(t, b.Set(ctx, "k", "from b"))

	var got string
	_, err := a.Get(ctx, "k", &got)
	require.NoError(t, err)
	assert.Equal(t, "from a", got)

	require.NoError(t, a.Clear(ctx))
	ok, err := a.Has(ctx, "k")
	require.NoError(t, err)
	assert.False(t, ok, "Clear removed a's key")
	ok, err = b.Has(ctx, "k")
	require.NoError(t, err)
	assert.True(t, ok, "Clear left b's key alone")
}

func TestGetDictContainsOnlyFoundKeys(t *testing.T) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "p:"})
	require.NoError(t, c.Set(ctx, "a", 1))
	require.NoError(t, c.Set(ctx, "c", "three"))
	m, err := c.GetDict(ctx, "a", "b", "c")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a", "c"}, slices.Collect(maps.Keys(m)))
	var n int
	require.NoError(t, m["a"].Decode(&n))
	assert.Equal(t, 1, n)
}

func TestGetManyReturnsAZeroValueForEachMiss(t *testing.T) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	require.NoError(t, c.Set(ctx, "b", 2))
	vals, err := c.GetMany(ctx, "a", "b", "c")
	require.NoError(t, err)
	require.Len(t, vals, 3)
	assert.Equal(t, []bool{false, true, false}, []bool{vals[0].Found(), vals[1].Found(), vals[2].Found()})
}

// shortGetMany is a backend that breaks the GetMany contract.
type shortGetMany struct{ *backends.Simple }

func (shortGetMany) GetMany(context.Context, []string) ([][]byte, error) { return nil, nil }

func TestGetManyRejectsABackendReturningTheWrongNumberOfValues(t *testing.T) {
	c := backends.New(shortGetMany{backends.NewSimple(0)}, backends.CacheOptions{})
	_, err := c.GetMany(context.Background(), "a", "b")
	assert.ErrorContains(t, err, "backend returned 0 values for 2 keys")
}

func TestSetManyReportsEachFailedKeyUnprefixedAndStoresTheRest(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{"", "p:"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			f := &faulty{Simple: backends.NewSimple(0), fail: map[string]bool{prefix + "bad1": true, prefix + "bad2": true}}
			c := backends.New(f, backends.CacheOptions{KeyPrefix: prefix})
			err := c.SetMany(ctx, map[string]any{
				"good": 1, "bad1": 2, "bad2": 3,
				"unencodable": func() {}, // fails in the codec, before the backend
			})
			require.Error(t, err)
			assert.Equal(t, []string{"bad1", "bad2", "unencodable"}, keyErrors(err))
			assert.ErrorIs(t, err, errInjected)
			var ke *backends.KeyError
			require.ErrorAs(t, err, &ke)

			ok, err := c.Has(ctx, "good")
			require.NoError(t, err)
			assert.True(t, ok, "the keys that did not fail were stored")
		})
	}
}

func TestDeleteManyReportsEachFailedKeyUnprefixedAndDeletesTheRest(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{"", "p:"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			f := &faulty{Simple: backends.NewSimple(0), fail: map[string]bool{prefix + "bad": true}}
			c := backends.New(f, backends.CacheOptions{KeyPrefix: prefix})
			require.NoError(t, c.SetMany(ctx, map[string]any{"a": 1, "b": 2}))
			n, err := c.DeleteMany(ctx, "a", "bad", "missing", "b")
			assert.Equal(t, 2, n, "a and b were deleted; a missing key is not an error")
			assert.Equal(t, []string{"bad"}, keyErrors(err))
			assert.ErrorIs(t, err, errInjected)
		})
	}
}

func TestIgnoreErrorsLogsManyKeyFailuresAndReturnsNil(t *testing.T) {
	ctx := context.Background()
	logger, buf := logBuffer()
	f := &faulty{Simple: backends.NewSimple(0), fail: map[string]bool{"p:bad": true}}
	c := backends.New(f, backends.CacheOptions{KeyPrefix: "p:", IgnoreErrors: true, Logger: logger})

	require.NoError(t, c.SetMany(ctx, map[string]any{"ok": 1, "bad": 2}))
	assert.Contains(t, buf.String(), "level=WARN")
	assert.Contains(t, buf.String(), `key \"bad\"`, "the log names the caller's key")
	assert.Contains(t, buf.String(), errInjected.Error())

	buf.Reset()
	n, err := c.DeleteMany(ctx, "ok", "bad")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Contains(t, buf.String(), `key \"bad\"`)
}

func TestIgnoreErrorsDoesNotHideSingleKeyErrors(t *testing.T) {
	ctx := context.Background()
	f := &faulty{Simple: backends.NewSimple(0), fail: map[string]bool{"bad": true}}
	logger, _ := logBuffer()
	c := backends.New(f, backends.CacheOptions{IgnoreErrors: true, Logger: logger})
	assert.ErrorIs(t, c.Set(ctx, "bad", 1), errInjected)
}

func TestDecOfMinInt64IsAnErrorAndChangesNothing(t *testing.T) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	require.NoError(t, c.Set(ctx, "n", 5))
	_, err := c.Dec(ctx, "n", math.MinInt64)
	require.ErrorIs(t, err, backends.ErrNotInteger)
	var n int64
	_, err = c.Get(ctx, "n", &n)
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)
}

func TestDecSubtractsAndIncAdds(t *testing.T) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	n, err := c.Dec(ctx, "n", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(-3), n, "a missing key starts from 0")
	n, err = c.Inc(ctx, "n", 10)
	require.NoError(t, err)
	assert.Equal(t, int64(7), n)
	n, err = c.Dec(ctx, "n", -1)
	require.NoError(t, err)
	assert.Equal(t, int64(8), n)
}

func TestBackendErrorsAreWrappedWithTheOperationAndKey(t *testing.T) {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: "p:"})
	require.NoError(t, c.Close())
	ops := []struct {
		name, want string
		run        func() error
	}{
		{"Get", `get "k"`, func() error { _, err := c.Get(ctx, "k", new(int)); return err }},
		{"GetValueBytes", `get "k"`, func() error { _, err := c.GetValueBytes(ctx, []byte("k")); return err }},
		{"GetMany", "get many", func() error { _, err := c.GetMany(ctx, "k"); return err }},
		{"GetDict", "get many", func() error { _, err := c.GetDict(ctx, "k"); return err }},
		{"Set", `set "k"`, func() error { return c.Set(ctx, "k", 1) }},
		{"Add", `add "k"`, func() error { _, err := c.Add(ctx, "k", 1); return err }},
		{"SetMany", "set many", func() error { return c.SetMany(ctx, map[string]any{"k": 1}) }},
		{"Delete", `delete "k"`, func() error { _, err := c.Delete(ctx, "k"); return err }},
		{"DeleteMany", "delete many", func() error { _, err := c.DeleteMany(ctx, "k"); return err }},
		{"Has", `has "k"`, func() error { _, err := c.Has(ctx, "k"); return err }},
		{"Inc", `inc "k"`, func() error { _, err := c.Inc(ctx, "k", 1); return err }},
		{"Dec", `dec "k"`, func() error { _, err := c.Dec(ctx, "k", 1); return err }},
		{"Clear", "clear", func() error { return c.Clear(ctx) }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			err := op.run()
			require.ErrorIs(t, err, backends.ErrClosed)
			assert.Contains(t, err.Error(), op.want)
		})
	}
}

func TestNewPanicsOnANegativeDefaultTimeoutOtherThanNoExpiry(t *testing.T) {
	assert.Panics(t, func() {
		backends.New(backends.NewSimple(0), backends.CacheOptions{DefaultTimeout: -time.Second})
	})
	assert.NotPanics(t, func() {
		backends.New(backends.NewSimple(0), backends.CacheOptions{DefaultTimeout: backends.NoExpiry})
	})
}

func TestTheDefaultTimeoutResolves(t *testing.T) {
	tests := []struct {
		name   string
		option time.Duration
		want   time.Duration
	}{
		{"0 is Flask's 300 s", 0, backends.DefaultTimeout},
		{"NoExpiry never expires", backends.NoExpiry, backends.NoExpiry},
		{"a positive default is used as given", time.Minute, time.Minute},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder()
			c := backends.New(r, backends.CacheOptions{DefaultTimeout: tt.option})
			assert.Equal(t, tt.want, c.DefaultTimeout())
			for _, timeout := range [][]time.Duration{nil, {0}} {
				got, err := c.Timeout(timeout...)
				require.NoError(t, err)
				assert.Equal(t, tt.want, got, "Timeout(%v)", timeout)
			}
			require.NoError(t, c.Set(ctx, "k", 1))
			_, err := c.Inc(ctx, "n", 1)
			require.NoError(t, err)
			_, ttls := r.take()
			assert.Equal(t, []time.Duration{tt.want, tt.want}, ttls, "the backend sees the resolved TTL")
		})
	}
	assert.Equal(t, 300*time.Second, backends.DefaultTimeout, "Flask-Caching's CACHE_DEFAULT_TIMEOUT")
}

func TestNewAppliesOptions(t *testing.T) {
	s := backends.NewSimple(0)
	c := backends.New(s, backends.CacheOptions{KeyPrefix: "p:", DefaultTimeout: time.Minute})
	assert.Equal(t, "p:", c.KeyPrefix())
	assert.Equal(t, time.Minute, c.DefaultTimeout())
	assert.Same(t, s, c.Backend())

	zero := backends.New(s, backends.CacheOptions{})
	d, err := zero.Timeout()
	require.NoError(t, err)
	assert.Equal(t, 300*time.Second, d, "the zero Options expire entries after Flask's 300 s")
}

// GetValueBytes reads what GetValue reads, under the Cache's prefix, on
// Simple and through any other backend (here Simple behind Observe).
func TestGetValueBytesReadsWhatGetValueReads(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("k", 300) // longer than the stack buffer
	for _, prefix := range []string{"", "app:"} {
		simple := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: prefix})
		observed := backends.Observe(simple, nopObserver{})
		for name, c := range map[string]*backends.Cache{"simple": simple, "observed": observed} {
			t.Run(prefix+name, func(t *testing.T) {
				require.NoError(t, c.Set(ctx, "frag", "<p>"))
				require.NoError(t, c.Set(ctx, long, []byte("long")))
				for _, key := range []string{"frag", long, "missing", prefix + "frag"} {
					want, err := c.GetValue(ctx, key)
					require.NoError(t, err)
					got, err := c.GetValueBytes(ctx, []byte(key))
					require.NoError(t, err)
					assert.Equal(t, want.Found(), got.Found(), key)
					wb, _ := want.Bytes()
					gb, _ := got.Bytes()
					assert.Equal(t, wb, gb, key)
				}
				got, err := c.GetValueBytes(ctx, []byte("frag"))
				require.NoError(t, err)
				require.True(t, got.Found())
			})
		}
	}
}

// On Simple a hit through GetValueBytes allocates nothing, with a prefix
// too: the key is joined to the prefix on the stack.
func TestGetValueBytesOnSimpleAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	for _, prefix := range []string{"", "app:"} {
		c := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: prefix})
		require.NoError(t, c.Set(ctx, "frag_alice", "<p>"))
		key := []byte("frag_alice")
		assert.Zero(t, testing.AllocsPerRun(100, func() {
			v, _ := c.GetValueBytes(ctx, key)
			_, _ = v.Bytes()
		}), "prefix %q", prefix)
	}
}

type nopObserver struct{}

func (nopObserver) ObserveOp(context.Context, backends.Op, time.Duration, error) {}
