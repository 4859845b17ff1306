// Package backendtest is the conformance suite for [backends.Backend]
// implementations, in the spirit of testing/fstest and
// golang.org/x/net/nettest: a backend author calls [Run] from an ordinary
// test and gets one named subtest per rule of the contract.
//
// Most rules are checked through a [backends.Cache] over the backend, since
// that is how users meet it: typed values, key prefixes, default and
// explicit timeouts (including the rejection of invalid ones), Add, Delete,
// the many-key operations, Inc and Dec, Clear, keys of every shape, large
// values and concurrent use. A few rules that the Cache hides are checked on
// the Backend directly: bytes round-trip verbatim, a found empty value is a
// non-nil slice, Inc writes decimal text, and every operation after Close
// returns [backends.ErrClosed].
//
// A backend that talks to a server can be checked like this:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backends.Backend {
//			b, err := mycache.New(mycache.Options{Addr: testServerAddr(t)})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		}, backendtest.Options{TTLResolution: time.Second, AtomicInc: true, AtomicAdd: true})
//	}
//
// Run calls the factory once per subtest (a timing table shares one backend
// among its rows, so that they wait out the TTL together). It empties each
// backend with Clear(ctx, "") before use and closes it when the subtest
// ends, so the factory must return a new Backend every time, but backends
// may share one server or directory. Nothing else may use that store while
// the suite runs, because the suite clears all of it. Subtests run one after
// another. The suite never holds more than about thirty entries at once, so
// an evicting backend needs room for that many.
//
// Subtest names state the rule they check, so a failure reads as the broken
// promise, and go test -run or -skip select rules by name.
//
// Expiry is checked with short TTLs scaled to [Options.TTLResolution]; an
// exact backend spends well under a second waiting in total, a whole-second
// backend a few seconds per timing table.
//
// It imports backends, testify, golang.org/x/sync and the standard library.
package backendtest

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// ClearedPrefixes returns the key prefixes the suite clears with Clear: a
// backend that can clear only declared namespaces (memcached, uWSGI)
// declares these for its run of the suite.
func ClearedPrefixes() []string {
	return []string{"a:", "b:", "p:", "prefix:", "g[ab]*?:", "r.+(x|y):"}
}

// Options describe what a backend promises, so that the suite asks no more
// of it. The zero value suits an in-process backend with an exact clock and
// makes no atomicity claims.
type Options struct {
	// TTLResolution is how coarsely the backend measures expiry: 0 for an
	// exact clock (Simple, FileSystem), time.Millisecond for Redis,
	// time.Second for memcached and uWSGI. The suite's short TTLs and its
	// waits scale with it.
	TTLResolution time.Duration
	// AtomicInc declares that concurrent Incs of one key never lose an
	// update; the suite then checks that N goroutines doing M increments
	// each end at exactly N*M.
	AtomicInc bool
	// AtomicAdd declares that of concurrent Adds of one missing key exactly
	// one succeeds.
	AtomicAdd bool
}

// Run checks the backend contract against the backends that newBackend
// returns, one subtest per rule. It fails t at once if opts is invalid.
func Run(t *testing.T, newBackend func(t *testing.T) backends.Backend, opts Options) {
	t.Helper()
	if opts.TTLResolution < 0 {
		t.Fatalf("backendtest: Options.TTLResolution %v is negative", opts.TTLResolution)
	}
	if newBackend == nil {
		t.Fatal("backendtest: newBackend is nil")
	}
	s := &suite{newBackend: newBackend, opts: opts, timing: newTiming(opts.TTLResolution)}
	groups := []struct {
		name string
		run  func(*testing.T)
	}{
		{"Get", s.testGetMiss},
		{"RoundTrip", s.testRoundTrip},
		{"Overwrite", s.testOverwrite},
		{"Foreign", s.testForeign},
		{"LargeValues", s.testLargeValues},
		{"InvalidTimeouts", s.testInvalidTimeouts},
		{"Timeouts", s.testTimeouts},
		{"Expiry", s.testExpiry},
		{"Add", s.testAdd},
		{"Delete", s.testDelete},
		{"Has", s.testHas},
		{"GetMany", s.testGetMany},
		{"SetMany", s.testSetMany},
		{"DeleteMany", s.testDeleteMany},
		{"IncDec", s.testIncDec},
		{"KeyPrefix", s.testKeyPrefix},
		{"Keys", s.testKeys},
		{"Concurrency", s.testConcurrency},
		{"Backend", s.testBackend},
		{"Close", s.testClose},
	}
	for _, g := range groups {
		t.Run(g.name, g.run)
	}
}

type suite struct {
	newBackend func(t *testing.T) backends.Backend
	opts       Options
	timing     timing
}

// env is one fresh backend and the caches a rule uses over it.
type env struct {
	ctx   context.Context
	b     backends.Backend
	c     *backends.Cache // no prefix; entries never expire unless a call says so
	short *backends.Cache // no prefix; DefaultTimeout is the suite's short TTL
}

// env returns a new, emptied backend that is closed when t ends.
func (s *suite) env(t *testing.T) *env {
	t.Helper()
	b := s.newBackend(t)
	require.NotNil(t, b, "newBackend returned nil")
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx := t.Context()
	require.NoError(t, b.Clear(ctx, ""), `Clear(ctx, "") of a new backend`)
	return &env{
		ctx:   ctx,
		b:     b,
		c:     backends.New(b, backends.CacheOptions{DefaultTimeout: backends.NoExpiry}),
		short: backends.New(b, backends.CacheOptions{DefaultTimeout: s.timing.ttl}),
	}
}

// prefixed returns a cache over the same backend whose keys start with prefix.
func (e *env) prefixed(prefix string) *backends.Cache {
	return backends.New(e.b, backends.CacheOptions{KeyPrefix: prefix, DefaultTimeout: backends.NoExpiry})
}

// rule is one named rule of the contract; each gets its own backend.
type rule struct {
	name  string
	check func(t *testing.T, e *env)
}

func (s *suite) runRules(t *testing.T, rules []rule) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) { r.check(t, s.env(t)) })
	}
}

// requireValue fails t unless Get of key decodes to want (into a new value of
// want's type).
func requireValue(t *testing.T, e *env, c *backends.Cache, key string, want any) {
	t.Helper()
	dst := newDst(want)
	found, err := c.Get(e.ctx, key, dst)
	require.NoError(t, err, "Get(%.60q)", key)
	require.True(t, found, "Get(%.60q) missed, want %.60v", key, want)
	assertSame(t, want, deref(dst), "Get(%.60q)", key)
}

// requireMiss fails t unless key holds no live entry, by GetValue and Has.
func requireMiss(t *testing.T, e *env, c *backends.Cache, key string) {
	t.Helper()
	v, err := c.GetValue(e.ctx, key)
	require.NoError(t, err, "GetValue(%.60q)", key)
	require.False(t, v.Found(), "GetValue(%.60q) found a value, want a miss", key)
	has, err := c.Has(e.ctx, key)
	require.NoError(t, err, "Has(%.60q)", key)
	require.False(t, has, "Has(%.60q) = true, want false", key)
}

// newDst returns a pointer to decode a value like want into.
func newDst(want any) any {
	if want == nil {
		return new(any)
	}
	return reflect.New(reflect.TypeOf(want)).Interface()
}

func deref(ptr any) any { return reflect.ValueOf(ptr).Elem().Interface() }

// assertSame is assert.Equal except that an empty []byte equals a nil one:
// decoding an empty byte slice may give either.
func assertSame(t *testing.T, want, got any, msgAndArgs ...any) bool {
	t.Helper()
	if w, ok := want.([]byte); ok && len(w) == 0 {
		if g, ok := got.([]byte); ok && len(g) == 0 {
			return true
		}
	}
	return assert.Equal(t, want, got, msgAndArgs...)
}

// requireBytes compares possibly large byte slices without printing them.
func requireBytes(t *testing.T, want, got []byte, what string) {
	t.Helper()
	if !bytes.Equal(want, got) {
		t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", what, len(got), got, len(want), want)
	}
}
