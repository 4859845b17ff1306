package memoize

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// square is a named function: its Go name identifies it without
// Options.Name.
func square(_ context.Context, n int) (int, error) { return n * n, nil }

func TestCallRunsOncePerArgument(t *testing.T) {
	tests := []struct {
		name     string
		calls    []int
		wantRuns int64
	}{
		{"one argument, called thrice", []int{1, 1, 1}, 1},
		{"distinct arguments each run", []int{1, 2, 3}, 3},
		{"repeats hit", []int{1, 2, 1, 2, 1}, 2},
		{"zero is an argument like any other", []int{0, 0}, 1},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fn, runs := counted()
				m := Func(open(t), fn, Options{Name: "counted"})
				for _, a := range tt.calls {
					got, err := m.Call(t.Context(), a)
					require.NoError(t, err)
					want, _ := m.Uncached(t.Context(), a)
					assert.Equal(t, want, got)
				}
				assert.Equal(t, tt.wantRuns+int64(len(tt.calls)), runs.Load(), "runs by Call plus the Uncached checks")
				st := m.Stats()
				assert.Equal(t, uint64(tt.wantRuns), st.Calls)
				assert.Equal(t, uint64(len(tt.calls))-uint64(tt.wantRuns), st.Hits)
				assert.Equal(t, uint64(tt.wantRuns), st.Misses)
			})
		}
	})
}

// Several arguments travel as a struct, every field of which is part of
// the key.
func TestStructArgumentsStayApart(t *testing.T) {
	type pair struct{ A, B string }
	type triple struct {
		A string
		B int
		D []string
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		c := open(t)
		var runs2, runs3 atomic.Int64
		f2 := Func(c, func(_ context.Context, p pair) (string, error) {
			runs2.Add(1)
			return p.A + "|" + p.B, nil
		}, Options{Name: "join2"})
		f3 := Func(c, func(_ context.Context, a triple) (string, error) {
			runs3.Add(1)
			return fmt.Sprint(a.A, a.B, a.D), nil
		}, Options{Name: "join3"})
		ctx := t.Context()

		for _, args := range []pair{{"a", "bc"}, {"ab", "c"}, {"", "abc"}, {"a", "bc"}} {
			got, err := f2.Call(ctx, args)
			require.NoError(t, err)
			assert.Equal(t, args.A+"|"+args.B, got)
		}
		assert.EqualValues(t, 3, runs2.Load(), "adjacent strings must not run together")

		for range 2 {
			for _, d := range [][]string{{"x"}, {"x", ""}, nil} {
				got, err := f3.Call(ctx, triple{"p", 1, d})
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprint("p", 1, d), got)
			}
		}
		assert.EqualValues(t, 3, runs3.Load())
	})
}

func TestResultTypesRoundTrip(t *testing.T) {
	type item struct {
		Name  string
		Tags  []string
		Price float64
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		c := open(t)
		ctx := t.Context()
		want := item{Name: "lamp", Tags: []string{"a", "b"}, Price: 9.5}
		var runs atomic.Int64
		m := Func(c, func(context.Context, int) (item, error) { runs.Add(1); return want, nil }, Options{Name: "item"})
		for range 2 {
			got, err := m.Call(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
		assert.EqualValues(t, 1, runs.Load())

		bs := Func(c, func(context.Context, int) ([]byte, error) { return []byte{0, 1, 2}, nil }, Options{Name: "bytes"})
		for range 2 {
			got, err := bs.Call(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, []byte{0, 1, 2}, got)
		}
		assert.EqualValues(t, 1, bs.Stats().Hits)
	})
}

func TestErrorsAreNeverStored(t *testing.T) {
	errNotFound := errors.New("not found")
	forEachCache(t, func(t *testing.T, open newCache) {
		var runs atomic.Int64
		m := Func(open(t), func(_ context.Context, n int) (int, error) {
			if runs.Add(1) == 1 {
				return 0, errNotFound
			}
			return n, nil
		}, Options{Name: "flaky"})
		_, err := m.Call(t.Context(), 5)
		require.ErrorIs(t, err, errNotFound)
		for range 2 {
			got, err := m.Call(t.Context(), 5)
			require.NoError(t, err)
			assert.Equal(t, 5, got)
		}
		assert.EqualValues(t, 2, runs.Load(), "the failed call is retried once, then the result is cached")
	})
}

func TestTimeoutOption(t *testing.T) {
	tests := []struct {
		name           string
		timeout        time.Duration
		defaultTimeout time.Duration
		want           time.Duration
	}{
		{"zero means the cache default", 0, 300 * time.Second, 300 * time.Second},
		{"explicit timeout", 7 * time.Second, 300 * time.Second, 7 * time.Second},
		{"NoExpiry never expires", backends.NoExpiry, 300 * time.Second, backends.NoExpiry},
		{"default of never", 0, backends.NoExpiry, backends.NoExpiry},
		{"zero options' default is Flask's 300 s", 0, 0, backends.DefaultTimeout},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				base := open(t)
				c, rec := record(backends.New(base.Backend(), backends.CacheOptions{KeyPrefix: base.KeyPrefix(), DefaultTimeout: tt.defaultTimeout}))
				fn, _ := counted()
				m := Func(c, fn, Options{Name: "timed", Timeout: tt.timeout})
				_, err := m.Call(t.Context(), 1)
				require.NoError(t, err)

				verKey := c.KeyPrefix() + "timed_memver"
				// Flask's version key expired with the entries' timeout and
				// orphaned later entries (#531); ours never expires.
				assert.Equal(t, backends.NoExpiry, rec.TTL(t, verKey))
				written := rec.Written()
				delete(written, verKey)
				require.Len(t, written, 1, "one entry besides the version key")
				for _, ttl := range written {
					assert.Equal(t, tt.want, ttl)
				}
			})
		}
	})
}

type ctxKey string

func flagged(ctx context.Context, k ctxKey) bool { v, _ := ctx.Value(k).(bool); return v }

func TestUnlessBypassesTheCache(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c, rec := record(open(t))
		fn, runs := counted()
		m := Func(c, fn, Options{Name: "unless", Unless: func(ctx context.Context) bool { return flagged(ctx, "bypass") }})
		bypass := context.WithValue(t.Context(), ctxKey("bypass"), true)
		for range 3 {
			got, err := m.Call(bypass, 1)
			require.NoError(t, err)
			assert.Equal(t, "r1", got)
		}
		assert.EqualValues(t, 3, runs.Load())
		assert.Empty(t, rec.Written(), "a bypassed call neither reads nor writes")
		assert.Equal(t, Stats{Bypasses: 3}, m.Stats())

		for range 2 {
			_, err := m.Call(t.Context(), 1)
			require.NoError(t, err)
		}
		assert.EqualValues(t, 4, runs.Load(), "without the flag the cache is used")
	})
}

func TestForcedUpdateReplacesTheResult(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		var n atomic.Int64
		m := Func(open(t), func(context.Context, string) (int64, error) { return n.Add(1), nil },
			Options{Name: "forced", ForcedUpdate: func(ctx context.Context) bool { return flagged(ctx, "force") }})
		ctx := t.Context()
		force := context.WithValue(ctx, ctxKey("force"), true)
		steps := []struct {
			ctx  context.Context
			want int64
		}{
			{ctx, 1},   // miss: runs
			{ctx, 1},   // hit
			{force, 2}, // forced: runs and stores
			{ctx, 2},   // hit on the forced result
			{force, 3},
		}
		for i, s := range steps {
			got, err := m.Call(s.ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, s.want, got, "step %d", i)
		}
	})
}

func TestCacheNoneOption(t *testing.T) {
	tests := []struct {
		name      string
		cacheNone bool
		result    *string
		wantRuns  int64
	}{
		{"nil result is not stored", false, nil, 2},
		{"nil result is stored with CacheNone", true, nil, 1},
		{"non-nil result is stored", false, new("x"), 1},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var runs atomic.Int64
				m := Func(open(t), func(context.Context, int) (*string, error) { runs.Add(1); return tt.result, nil },
					Options{Name: "none", CacheNone: tt.cacheNone})
				for range 2 {
					got, err := m.Call(t.Context(), 1)
					require.NoError(t, err)
					assert.Equal(t, tt.result, got)
				}
				assert.Equal(t, tt.wantRuns, runs.Load())
			})
		}
	})
	t.Run("zero values of non-nillable types are results", func(t *testing.T) {
		var runs atomic.Int64
		m := Func(backends.New(backends.NewSimple(0), backends.CacheOptions{}),
			func(context.Context, int) (int, error) { runs.Add(1); return 0, nil }, Options{Name: "zero"})
		for range 2 {
			_, err := m.Call(t.Context(), 1)
			require.NoError(t, err)
		}
		assert.EqualValues(t, 1, runs.Load())
	})
}

func TestIgnoreFieldsOption(t *testing.T) {
	type call struct {
		A int
		b string // unexported fields are keyed, and ignored, alike
	}
	tests := []struct {
		name     string
		ignore   []string
		calls    []call
		wantRuns int64
	}{
		{"nothing ignored", nil, []call{{1, "x"}, {1, "y"}, {2, "x"}}, 3},
		{"second ignored", []string{"b"}, []call{{1, "x"}, {1, "y"}, {2, "x"}}, 2},
		{"first ignored", []string{"A"}, []call{{1, "x"}, {2, "x"}, {1, "y"}}, 2},
		{"both ignored", []string{"A", "b"}, []call{{1, "x"}, {2, "y"}}, 1},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var runs atomic.Int64
				m := Func(open(t), func(_ context.Context, c call) (string, error) {
					runs.Add(1)
					return fmt.Sprint(c.A, c.b), nil
				}, Options{Name: "ignore", IgnoreFields: tt.ignore})
				for _, c := range tt.calls {
					_, err := m.Call(t.Context(), c)
					require.NoError(t, err)
				}
				assert.Equal(t, tt.wantRuns, runs.Load())
			})
		}
	})
}

// Ignoring no field keys a struct as it keys it without IgnoreFields, and
// an ignored field differs from any value it could hold.
func TestIgnoredFieldsKeepKeysApart(t *testing.T) {
	type args struct{ A, B int }
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	fn := func(_ context.Context, a args) (int, error) { return a.A + a.B, nil }
	plain := Func(c, fn, Options{Name: "sum"})
	ignoring := Func(c, fn, Options{Name: "sum", IgnoreFields: []string{"B"}})
	key := func(m *Memoized[args, int], a args) string {
		k, err := m.m.hash(nil, a)
		require.NoError(t, err)
		return k
	}
	assert.NotEqual(t, key(plain, args{1, 0}), key(ignoring, args{1, 0}))
	assert.Equal(t, key(ignoring, args{1, 0}), key(ignoring, args{1, 7}))
	assert.NotEqual(t, key(ignoring, args{1, 0}), key(ignoring, args{2, 0}))
}

func TestKeyPartsOptions(t *testing.T) {
	// Each case builds two memos over one cache and says whether the second
	// reads what the first stored.
	fn := func(context.Context, int) (string, error) { return "v", nil }
	tests := []struct {
		name       string
		a, b       Options
		wantShared bool
	}{
		{"same name shares", Options{Name: "n"}, Options{Name: "n"}, true},
		{"different names do not", Options{Name: "n"}, Options{Name: "m"}, false},
		{"same version shares", Options{Name: "n", Version: "1"}, Options{Name: "n", Version: "1"}, true},
		{"new version does not", Options{Name: "n", Version: "1"}, Options{Name: "n", Version: "2"}, false},
		{"source check on both shares", Options{Name: "n", SourceCheck: true}, Options{Name: "n", SourceCheck: true}, true},
		{"source check on one does not", Options{Name: "n"}, Options{Name: "n", SourceCheck: true}, false},
		{"timeouts do not change keys", Options{Name: "n", Timeout: time.Minute}, Options{Name: "n"}, true},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := open(t)
				first := Func(c, fn, tt.a)
				second := Func(c, fn, tt.b)
				_, err := first.Call(t.Context(), 1)
				require.NoError(t, err)
				_, err = second.Call(t.Context(), 1)
				require.NoError(t, err)
				assert.Equal(t, tt.wantShared, second.Stats().Hits == 1)
			})
		}
	})
}

func TestResultTypeIsPartOfTheKey(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	asInt := Func(c, func(context.Context, int) (int, error) { return 1, nil }, Options{Name: "same"})
	asString := Func(c, func(context.Context, int) (string, error) { return "one", nil }, Options{Name: "same"})
	_, err := asInt.Call(t.Context(), 1)
	require.NoError(t, err)
	got, err := asString.Call(t.Context(), 1)
	require.NoError(t, err)
	assert.Equal(t, "one", got)
	assert.Zero(t, asString.Stats().Hits)
}

func TestNameDefaultsToTheGoName(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	m := Func(c, square, Options{})
	assert.Equal(t, "github.com/fragcache/fragcache/memoize.square", m.Name())
	got, err := m.Call(t.Context(), 4)
	require.NoError(t, err)
	assert.Equal(t, 16, got)
	has, err := c.Has(t.Context(), m.Name()+"_memver")
	require.NoError(t, err)
	assert.True(t, has, "the version key is named after the function")
	assert.Equal(t, "custom", Func(c, square, Options{Name: "custom"}).Name())
}

func TestBuildDigestNamesTheExecutable(t *testing.T) {
	d := buildDigest()
	assert.True(t, strings.HasPrefix(d, "exe:") || strings.HasPrefix(d, "buildinfo:"), d)
	assert.Equal(t, d, buildDigest(), "computed once")
}

func TestDeleteMemoizedInvalidatesEveryArgumentInOneWrite(t *testing.T) {
	tests := []struct {
		name           string
		delete         func(m *Memoized[int, string], ctx context.Context) error
		wantVersionKey bool // right after the delete
	}{
		{"DeleteMemoized", (*Memoized[int, string]).DeleteMemoized, true},
		{"DeleteVerhash", (*Memoized[int, string]).DeleteVerhash, false},
	}
	forEachCache(t, func(t *testing.T, open newCache) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c, rec := record(open(t))
				fn, runs := counted()
				m := Func(c, fn, Options{Name: "all"})
				ctx := t.Context()
				for _, a := range []int{1, 2, 3} {
					_, err := m.Call(ctx, a)
					require.NoError(t, err)
				}
				before := rec.Writes()
				require.NoError(t, tt.delete(m, ctx))
				assert.Equal(t, 1, rec.Writes()-before, "one write, however many entries")
				has, err := c.Has(ctx, "all_memver")
				require.NoError(t, err)
				assert.Equal(t, tt.wantVersionKey, has)
				for _, a := range []int{1, 2, 3, 1} {
					_, err := m.Call(ctx, a)
					require.NoError(t, err)
				}
				assert.EqualValues(t, 6, runs.Load(), "every argument runs again once")
			})
		}
	})
}

func TestDeleteRemovesExactlyOneEntry(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := open(t)
		fn, runs := counted()
		m := Func(c, fn, Options{Name: "one"})
		ctx := t.Context()

		deleted, err := m.Delete(ctx, 1)
		require.NoError(t, err)
		assert.False(t, deleted, "nothing stored yet")
		has, err := c.Has(ctx, "one_memver")
		require.NoError(t, err)
		assert.False(t, has, "Delete creates no version key")

		for _, a := range []int{1, 2} {
			_, err := m.Call(ctx, a)
			require.NoError(t, err)
		}
		deleted, err = m.Delete(ctx, 1)
		require.NoError(t, err)
		assert.True(t, deleted)
		deleted, err = m.Delete(ctx, 1)
		require.NoError(t, err)
		assert.False(t, deleted, "already gone")

		for _, a := range []int{2, 1} {
			_, err := m.Call(ctx, a)
			require.NoError(t, err)
		}
		assert.EqualValues(t, 3, runs.Load(), "only 1 ran again")
	})
}

func TestDeleteWithUnsupportedArgument(t *testing.T) {
	m := Func(backends.New(backends.NewSimple(0), backends.CacheOptions{}),
		func(context.Context, any) (int, error) { return 1, nil }, Options{Name: "any"})
	_, err := m.Delete(t.Context(), func() {})
	require.ErrorIs(t, err, ErrUnsupportedArg)
	_, err = m.Call(t.Context(), make(chan int))
	require.ErrorIs(t, err, ErrUnsupportedArg)
	assert.Contains(t, err.Error(), "memoize any: argument (chan int)")
}

// account is a method receiver identified by its number.
type account struct {
	number string
	runs   *atomic.Int64
}

func (a *account) CacheID() string { return a.number }

func (a *account) balance(_ context.Context, currency string) (string, error) {
	a.runs.Add(1)
	return a.number + " in " + currency, nil
}

// conversion is the argument of convert: a method of several arguments
// takes them as a struct.
type conversion struct {
	Amount   int
	Currency string
}

func (a *account) convert(_ context.Context, c conversion) (string, error) {
	a.runs.Add(1)
	return fmt.Sprint(a.number, c.Amount, c.Currency), nil
}

func TestMethodReceiversNeverShareEntries(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := open(t)
		ctx := t.Context()
		var runs atomic.Int64
		a := &account{"A", &runs}
		b := &account{"B", &runs}
		aAgain := &account{"A", &runs} // another pointer, same identity
		m := Method(c, (*account).balance, Options{})
		assert.Equal(t, "github.com/fragcache/fragcache/memoize.(*account).balance", m.Name())

		call := func(recv *account, cur string) {
			t.Helper()
			got, err := m.Call(ctx, recv, cur)
			require.NoError(t, err)
			assert.Equal(t, recv.number+" in "+cur, got)
		}
		call(a, "EUR")
		call(b, "EUR")
		assert.EqualValues(t, 2, runs.Load(), "two receivers, two runs")
		call(aAgain, "EUR")
		assert.EqualValues(t, 2, runs.Load(), "the same CacheID is the same receiver")

		call(a, "USD")
		call(b, "USD")
		require.NoError(t, m.DeleteInstance(ctx, a))
		call(a, "EUR")
		call(a, "USD")
		call(b, "EUR")
		call(b, "USD")
		assert.EqualValues(t, 6, runs.Load(), "DeleteInstance(a) re-runs a's two entries only")

		deleted, err := m.Delete(ctx, b, "EUR")
		require.NoError(t, err)
		assert.True(t, deleted)
		call(b, "EUR")
		call(b, "USD")
		assert.EqualValues(t, 7, runs.Load(), "Delete re-runs one entry")

		require.NoError(t, m.DeleteMemoized(ctx))
		call(a, "EUR")
		call(b, "EUR")
		assert.EqualValues(t, 9, runs.Load(), "DeleteMemoized re-runs every receiver")
	})
}

func TestMethodWithStructArgument(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		c := open(t)
		ctx := t.Context()
		var runs atomic.Int64
		a, b := &account{"A", &runs}, &account{"B", &runs}
		m := Method(c, (*account).convert, Options{IgnoreFields: []string{"Currency"}})
		for _, recv := range []*account{a, b, a} {
			for _, cur := range []string{"EUR", "USD"} {
				got, err := m.Call(ctx, recv, conversion{5, cur})
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprint(recv.number, 5, "EUR"), got, "currency is ignored: the first call's result")
			}
		}
		assert.EqualValues(t, 2, runs.Load())
		deleted, err := m.Delete(ctx, a, conversion{5, "anything"})
		require.NoError(t, err)
		assert.True(t, deleted)
		require.NoError(t, m.DeleteInstance(ctx, b))
		require.NoError(t, m.DeleteVerhash(ctx))
		got, err := m.Uncached(ctx, a, conversion{1, "X"})
		require.NoError(t, err)
		assert.Equal(t, "A1X", got)
	})
}

func TestReceiverWithoutIdentityIsAnError(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	m := Method(c, (*account).balance, Options{})
	var runs atomic.Int64
	tests := []struct {
		name string
		recv *account
	}{
		{"nil receiver", nil},
		{"empty CacheID", &account{"", &runs}},
		{"blank CacheID", &account{" ", &runs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Call(t.Context(), tt.recv, "EUR")
			require.ErrorIs(t, err, ErrReceiver)
			_, err = m.Delete(t.Context(), tt.recv, "EUR")
			require.ErrorIs(t, err, ErrReceiver)
			require.ErrorIs(t, m.DeleteInstance(t.Context(), tt.recv), ErrReceiver)
			assert.Zero(t, runs.Load())
		})
	}
}

func TestConstructorPanicsOnProgrammingErrors(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var acct account
	tests := []struct {
		name  string
		build func()
		want  string
	}{
		{"nil cache", func() { Func(nil, square, Options{}) }, "nil *backends.Cache"},
		{"nil function", func() { Func[int, int](c, nil, Options{}) }, "nil function"},
		{"function literal without a name", func() {
			Func(c, func(context.Context, int) (int, error) { return 0, nil }, Options{})
		}, "function literal or method value; set Options.Name"},
		{"method value without a name", func() { Func(c, acct.balance, Options{}) }, "(*account).balance-fm"},
		{"negative timeout", func() { Func(c, square, Options{Timeout: -time.Second}) }, "negative Timeout -1s"},
		{"ignored field of an argument that is no struct", func() { Func(c, square, Options{IgnoreFields: []string{"A"}}) }, "IgnoreFields needs a struct argument encoded field by field; int is not one"},
		{"ignored field of a struct keyed by its binary form", func() {
			Func(c, func(context.Context, time.Time) (int, error) { return 0, nil }, Options{Name: "t", IgnoreFields: []string{"wall"}})
		}, "time.Time is not one"},
		{"ignored field that does not exist", func() {
			Method(c, (*account).convert, Options{IgnoreFields: []string{"Amount", "Rate"}})
		}, `IgnoreFields: memoize.conversion has no field "Rate"`},
		{"ignored field of an embedded struct", func() {
			type inner struct{ X int }
			type outer struct{ inner }
			Func(c, func(context.Context, outer) (int, error) { return 0, nil }, Options{Name: "o", IgnoreFields: []string{"X"}})
		}, `has no field "X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, panicMessage(t, tt.build), tt.build)
			assert.Contains(t, panicMessage(t, tt.build), tt.want)
		})
	}
	assert.NotPanics(t, func() {
		Func(c, func(context.Context, int) (int, error) { return 0, nil }, Options{Name: "literal"})
		Func(c, acct.balance, Options{Name: "value", Timeout: backends.NoExpiry})
	})
}

func panicMessage(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() { msg, _ = recover().(string) }()
	f()
	t.Fatal("no panic")
	return ""
}

func TestConcurrentCallsRunOnce(t *testing.T) {
	// Entry writes fail, so only deduplication (not a stored result) can
	// keep the waiters from running the function themselves.
	const callers = 8
	c := backends.New(failSets{backends.NewSimple(0)}, backends.CacheOptions{})
	release := make(chan struct{})
	var runs atomic.Int64
	m := Func(c, func(_ context.Context, n int) (int, error) {
		runs.Add(1)
		<-release
		return n * 2, nil
	}, Options{Name: "slow", Logger: slog.New(slog.DiscardHandler)})

	results := make(chan int, callers)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			got, err := m.Call(context.Background(), 21)
			results <- got
			errs <- err
		}()
	}
	testkit.Eventually(t, "every caller but one waits", func() bool { return m.m.group.Waiting() == callers-1 })
	close(release)
	for range callers {
		require.NoError(t, <-errs)
		assert.Equal(t, 42, <-results)
	}
	assert.EqualValues(t, 1, runs.Load())
	st := m.Stats()
	assert.EqualValues(t, callers-1, st.Waits)
	assert.EqualValues(t, 1, st.Calls)
}

func TestConcurrentCallsOverEveryCache(t *testing.T) {
	const callers = 16
	forEachCache(t, func(t *testing.T, open newCache) {
		fn, runs := counted()
		m := Func(open(t), fn, Options{Name: "many"})
		done := make(chan error, callers)
		for range callers {
			go func() {
				got, err := m.Call(context.Background(), 3)
				if err == nil && got != "r3" {
					err = fmt.Errorf("got %q", got)
				}
				done <- err
			}()
		}
		for range callers {
			require.NoError(t, <-done)
		}
		assert.EqualValues(t, 1, runs.Load(), "a stored or shared result serves every other caller")
		st := m.Stats()
		assert.EqualValues(t, callers-1, st.Hits+st.Waits)
	})
}

func TestPanicReleasesWaiters(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	release := make(chan struct{})
	m := Func(c, func(context.Context, int) (int, error) {
		<-release
		panic("boom")
	}, Options{Name: "panics"})

	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		_, _ = m.Call(context.Background(), 1)
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return m.Stats().Calls == 1 })
	waiter := make(chan error, 1)
	go func() {
		_, err := m.Call(context.Background(), 1)
		waiter <- err
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return m.m.group.Waiting() == 1 })
	close(release)
	assert.Equal(t, "boom", <-leader, "the panic goes on up the leader")
	assert.ErrorIs(t, <-waiter, ErrPanicked)
}

func TestWaiterLeavesWhenItsContextEnds(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	release := make(chan struct{})
	m := Func(c, func(context.Context, int) (int, error) { <-release; return 1, nil }, Options{Name: "wait"})
	go func() { _, _ = m.Call(context.Background(), 1) }()
	testkit.Eventually(t, "the leader runs", func() bool { return m.Stats().Calls == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() {
		_, err := m.Call(ctx, 1)
		waiter <- err
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return m.m.group.Waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-waiter, context.Canceled)
	close(release)
}

func TestWaiterRerunsWhenTheLeadersContextEnds(t *testing.T) {
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var runs atomic.Int64
	m := Func(c, func(ctx context.Context, n int) (int, error) {
		if runs.Add(1) == 1 {
			<-ctx.Done() // the first caller goes away
			return 0, ctx.Err()
		}
		return n, nil
	}, Options{Name: "leader"})

	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := m.Call(ctx, 7)
		leader <- err
	}()
	testkit.Eventually(t, "the leader runs", func() bool { return runs.Load() == 1 })
	waiter := make(chan int, 1)
	go func() {
		got, err := m.Call(context.Background(), 7)
		assert.NoError(t, err)
		waiter <- got
	}()
	testkit.Eventually(t, "the waiter waits", func() bool { return m.m.group.Waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-leader, context.Canceled)
	assert.Equal(t, 7, <-waiter, "the waiter ran the function under its own context")
	assert.EqualValues(t, 2, runs.Load())
}

func TestBackendFailures(t *testing.T) {
	tests := []struct {
		name     string
		backend  backends.Backend
		strict   bool
		wantRuns int64
		want     Stats
	}{
		{"down: runs uncached", broken{}, false, 3, Stats{Calls: 3, BackendErrors: 3}},
		{"down and strict: returns the error", broken{}, true, 0, Stats{BackendErrors: 3}},
		{"writes fail: results still returned", failSets{backends.NewSimple(0)}, false, 3, Stats{Misses: 3, Calls: 3, BackendErrors: 3}},
		{"writes fail and strict", failSets{backends.NewSimple(0)}, true, 3, Stats{Misses: 3, Calls: 3, BackendErrors: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			fn, runs := counted()
			m := Func(backends.New(tt.backend, backends.CacheOptions{}), fn, Options{
				Name: "down", Strict: tt.strict, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			for range 3 {
				got, err := m.Call(t.Context(), 1)
				if tt.strict {
					require.ErrorIs(t, err, errBroken)
					assert.Contains(t, err.Error(), "memoize down:")
					continue
				}
				require.NoError(t, err)
				assert.Equal(t, "r1", got)
			}
			assert.Equal(t, tt.wantRuns, runs.Load())
			assert.Equal(t, tt.want, m.Stats())
			lines := testkit.LogLines(t, &logs)
			if tt.strict {
				assert.Empty(t, lines, "strict errors are returned, not logged")
				return
			}
			require.Len(t, lines, 1, "reports are rate-limited")
			assert.Equal(t, "WARN", lines[0]["level"])
			assert.Equal(t, "down", lines[0]["func"])
			assert.Contains(t, lines[0]["err"], errBroken.Error())
		})
	}
}

func TestDeletesReturnBackendErrors(t *testing.T) {
	fn, _ := counted()
	m := Func(backends.New(broken{}, backends.CacheOptions{}), fn, Options{Name: "del"})
	ctx := t.Context()
	_, err := m.Delete(ctx, 1)
	require.ErrorIs(t, err, errBroken)
	require.ErrorIs(t, m.DeleteMemoized(ctx), errBroken)
	require.ErrorIs(t, m.DeleteVerhash(ctx), errBroken)
}

func TestUndecodableEntryIsAMiss(t *testing.T) {
	var logs bytes.Buffer
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var runs atomic.Int64
	m := Func(c, func(context.Context, int) (int, error) { runs.Add(1); return 5, nil },
		Options{Name: "decode", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := t.Context()
	key, err := m.m.hash(nil, 1)
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, key, "not an entry"))

	for range 2 {
		got, err := m.Call(ctx, 1)
		require.NoError(t, err)
		assert.Equal(t, 5, got)
	}
	assert.EqualValues(t, 1, runs.Load(), "recomputed once, then stored over the bad entry")
	lines := testkit.LogLines(t, &logs)
	require.Len(t, lines, 1)
	assert.Equal(t, "decode", lines[0]["op"])
}

// readCounter counts the backend reads that reach the store.
type readCounter struct {
	backends.Backend
	reads atomic.Int64
}

func (r *readCounter) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r.reads.Add(1)
	return r.Backend.Get(ctx, key)
}

func (r *readCounter) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	r.reads.Add(1)
	return r.Backend.GetMany(ctx, keys)
}

func TestAHitIsOneRoundTrip(t *testing.T) {
	forEachCache(t, func(t *testing.T, open newCache) {
		base := open(t)
		rc := &readCounter{Backend: base.Backend()}
		c := backends.New(rc, backends.CacheOptions{KeyPrefix: base.KeyPrefix()})
		fn, _ := counted()
		var runs atomic.Int64
		acct := &account{"A", &runs}
		plain := Func(c, fn, Options{Name: "trip"})
		method := Method(c, (*account).balance, Options{})
		ctx := t.Context()
		_, err := plain.Call(ctx, 1)
		require.NoError(t, err)
		_, err = method.Call(ctx, acct, "EUR")
		require.NoError(t, err)
		require.NoError(t, method.DeleteInstance(ctx, acct)) // a receiver version to read too
		_, err = method.Call(ctx, acct, "EUR")
		require.NoError(t, err)

		before := rc.reads.Load()
		_, err = plain.Call(ctx, 1)
		require.NoError(t, err)
		_, err = method.Call(ctx, acct, "EUR")
		require.NoError(t, err)
		assert.EqualValues(t, 2, rc.reads.Load()-before, "one read per hit")
		assert.EqualValues(t, 1, plain.Stats().Hits)
		assert.EqualValues(t, 1, method.Stats().Hits)
	})
}

// wrapper is what every memoized function offers, bound to fixed arguments.
type wrapper struct {
	call, uncached                func(ctx context.Context) error
	del                           func(ctx context.Context) (bool, error)
	deleteMemoized, deleteVerhash func(ctx context.Context) error
	name                          func() string
	stats                         func() Stats
}

func TestFunctionsAndMethodsOfferTheWholeAPI(t *testing.T) {
	errOf := func(_ any, err error) error { return err }
	forEachCache(t, func(t *testing.T, open newCache) {
		var runs atomic.Int64
		acct := &account{"A", &runs}
		build := map[string]func(c *backends.Cache) wrapper{
			"Func": func(c *backends.Cache) wrapper {
				m := Func(c, func(context.Context, int) (int, error) { runs.Add(1); return 1, nil }, Options{Name: "Func"})
				return wrapper{
					call:           func(ctx context.Context) error { return errOf(m.Call(ctx, 1)) },
					uncached:       func(ctx context.Context) error { return errOf(m.Uncached(ctx, 1)) },
					del:            func(ctx context.Context) (bool, error) { return m.Delete(ctx, 1) },
					deleteMemoized: m.DeleteMemoized, deleteVerhash: m.DeleteVerhash, name: m.Name, stats: m.Stats,
				}
			},
			"Func of a struct": func(c *backends.Cache) wrapper {
				type args struct {
					A int
					B string
					C bool
				}
				m := Func(c, func(context.Context, args) (int, error) { runs.Add(1); return 1, nil }, Options{Name: "Func of a struct", IgnoreFields: []string{"C"}})
				return wrapper{
					call:           func(ctx context.Context) error { return errOf(m.Call(ctx, args{1, "b", true})) },
					uncached:       func(ctx context.Context) error { return errOf(m.Uncached(ctx, args{1, "b", true})) },
					del:            func(ctx context.Context) (bool, error) { return m.Delete(ctx, args{1, "b", false}) },
					deleteMemoized: m.DeleteMemoized, deleteVerhash: m.DeleteVerhash, name: m.Name, stats: m.Stats,
				}
			},
			"Method": func(c *backends.Cache) wrapper {
				m := Method(c, (*account).balance, Options{Name: "Method"})
				return wrapper{
					call:           func(ctx context.Context) error { return errOf(m.Call(ctx, acct, "EUR")) },
					uncached:       func(ctx context.Context) error { return errOf(m.Uncached(ctx, acct, "EUR")) },
					del:            func(ctx context.Context) (bool, error) { return m.Delete(ctx, acct, "EUR") },
					deleteMemoized: m.DeleteMemoized, deleteVerhash: m.DeleteVerhash, name: m.Name, stats: m.Stats,
				}
			},
			"Method of a struct": func(c *backends.Cache) wrapper {
				m := Method(c, (*account).convert, Options{Name: "Method of a struct"})
				return wrapper{
					call:           func(ctx context.Context) error { return errOf(m.Call(ctx, acct, conversion{5, "EUR"})) },
					uncached:       func(ctx context.Context) error { return errOf(m.Uncached(ctx, acct, conversion{5, "EUR"})) },
					del:            func(ctx context.Context) (bool, error) { return m.Delete(ctx, acct, conversion{5, "EUR"}) },
					deleteMemoized: m.DeleteMemoized, deleteVerhash: m.DeleteVerhash, name: m.Name, stats: m.Stats,
				}
			},
		}
		for name, b := range build {
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				runs.Store(0)
				w := b(open(t))
				assert.Equal(t, name, w.name())
				steps := []struct {
					what     string
					do       func() error
					wantRuns int64
				}{
					{"first call runs", func() error { return w.call(ctx) }, 1},
					{"second call hits", func() error { return w.call(ctx) }, 1},
					{"Uncached runs", func() error { return w.uncached(ctx) }, 2},
					{"Delete", func() error {
						deleted, err := w.del(ctx)
						assert.True(t, deleted)
						return err
					}, 2},
					{"call after Delete runs", func() error { return w.call(ctx) }, 3},
					{"DeleteMemoized", func() error { return w.deleteMemoized(ctx) }, 3},
					{"call after DeleteMemoized runs", func() error { return w.call(ctx) }, 4},
					{"DeleteVerhash", func() error { return w.deleteVerhash(ctx) }, 4},
					{"call after DeleteVerhash runs", func() error { return w.call(ctx) }, 5},
					{"and is stored again", func() error { return w.call(ctx) }, 5},
				}
				for _, s := range steps {
					require.NoError(t, s.do(), s.what)
					assert.Equal(t, s.wantRuns, runs.Load(), s.what)
				}
				assert.Equal(t, Stats{Hits: 2, Misses: 4, Calls: 4}, w.stats())
			})
		}
	})
}

// A function that calls itself with its own arguments would wait for its own
// result forever; it gets ErrRecursive instead.
func TestMemoizedFunctionCallingItselfWithSameArgumentsIsErrRecursive(t *testing.T) {
	cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var self *Memoized[int, int]
	self = Func(cache, func(ctx context.Context, n int) (int, error) {
		return self.Call(ctx, n)
	}, Options{Name: "selfish"})
	done := make(chan error, 1)
	go func() { _, err := self.Call(context.Background(), 1); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrRecursive)
	case <-time.After(10 * time.Second):
		t.Fatal("a memoized function calling itself deadlocked")
	}
}

// nestKey marks a context under which the test's functions call each
// other; without it they return at once.
type nestKey struct{}

// Two calls of a memoized function that call each other, on two
// goroutines at once, close a cycle of waits: h(1) calls h(2) on one
// goroutine while h(2) calls h(1) on another (whether h nests depends on
// its context, which is not part of the key). The call that would close
// the cycle runs the function uncached instead, and neither call fails.
func TestMemoizedCallsNestedInOppositeOrdersAcrossGoroutinesDoNotFail(t *testing.T) {
	cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var h *Memoized[int, string]
	oneStarted := make(chan struct{})
	h = Func(cache, func(ctx context.Context, n int) (string, error) {
		if ctx.Value(nestKey{}) == nil {
			return fmt.Sprint("h", n), nil
		}
		other := 2
		if n == 1 {
			close(oneStarted)
			if !pollUntil(func() bool { return h.m.group.Waiting() == 1 }) {
				return "", errors.New("h(2) never waited for h(1)")
			}
		} else {
			<-oneStarted
			other = 1
		}
		inner, err := h.Call(context.Background(), other)
		return fmt.Sprintf("h%d(%s)", n, inner), err
	}, Options{Name: "h"})
	nest := context.WithValue(context.Background(), nestKey{}, true)
	var out1, out2 string
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Go(func() { out1, err1 = h.Call(nest, 1) })
	wg.Go(func() { out2, err2 = h.Call(nest, 2) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls nested in opposite orders deadlocked")
	}
	require.NoError(t, err1)
	require.NoError(t, err2)
	assert.Equal(t, "h1(h2)", out1, "h(1) ran h(2) uncached rather than wait for it")
	assert.Equal(t, "h2(h1(h2))", out2, "h(2) waited for h(1)")
}

// The same cycle through two different memoized functions: f(1) calls
// g(1) on one goroutine while g(1) calls f(1) on another. Each function
// deduplicates its own calls, so the cycle spans two of them; it must be
// seen all the same, and the call closing it runs uncached.
func TestCallsOfTwoMemoizedFunctionsNestedInOppositeOrdersDoNotDeadlock(t *testing.T) {
	cache := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	var f *Memoized[int, string]
	var g *Memoized[int, int]
	fStarted := make(chan struct{})
	f = Func(cache, func(ctx context.Context, n int) (string, error) {
		if ctx.Value(nestKey{}) == nil {
			return fmt.Sprint("f", n), nil
		}
		close(fStarted)
		if !pollUntil(func() bool { return f.m.group.Waiting() == 1 }) {
			return "", errors.New("g(1) never waited for f(1)")
		}
		inner, err := g.Call(context.Background(), n)
		return fmt.Sprintf("f%d(%d)", n, inner), err
	}, Options{Name: "f"})
	g = Func(cache, func(ctx context.Context, n int) (int, error) {
		if ctx.Value(nestKey{}) == nil {
			return 10 * n, nil
		}
		<-fStarted
		inner, err := f.Call(context.Background(), n)
		return len(inner), err
	}, Options{Name: "g"})
	nest := context.WithValue(context.Background(), nestKey{}, true)
	var outF string
	var outG int
	var errF, errG error
	var wg sync.WaitGroup
	wg.Go(func() { outF, errF = f.Call(nest, 1) })
	wg.Go(func() { outG, errG = g.Call(nest, 1) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls of two memoized functions nested in opposite orders deadlocked")
	}
	require.NoError(t, errF)
	require.NoError(t, errG)
	assert.Equal(t, "f1(10)", outF, "f(1) ran g(1) uncached rather than wait for it")
	assert.Equal(t, len("f1(10)"), outG, "g(1) waited for f(1)")
}
