package backendtest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// timing is the suite's short TTL and what it may conclude from it, given
// the backend's TTL resolution r: an entry written with ttl is surely live
// until ttl-r after its write began, and surely gone ttl+r (plus clock
// slack) after its write returned.
type timing struct {
	ttl       time.Duration
	liveFor   time.Duration
	goneAfter time.Duration
}

const (
	// minShortTTL is long enough for a write and a read on a loaded machine
	// under -race, short enough to keep an exact backend's suite quick.
	minShortTTL = 50 * time.Millisecond
	// clockSlack absorbs coarse timers and wall-clock steps.
	clockSlack = 10 * time.Millisecond
)

func newTiming(resolution time.Duration) timing {
	ttl := max(2*resolution, minShortTTL)
	return timing{ttl: ttl, liveFor: ttl - resolution, goneAfter: ttl + resolution + clockSlack}
}

// ttlCase is one row of a timing table. All rows of a table share one
// backend and wait out the short TTL together: write runs first (and must
// leave key live), check once the TTL has surely passed.
type ttlCase struct {
	name  string
	write func(e *env, key string) error
	check func(t *testing.T, e *env, key string)
}

// runTTLTable writes every row, checks each key is live while that is
// certain, sleeps once, then checks each row in a subtest named for it. The
// key of a row is its name.
func (s *suite) runTTLTable(t *testing.T, cases []ttlCase) {
	e := s.env(t)
	type outcome struct {
		writeErr, liveErr error
		tooSlow           bool // the entry may rightly have expired already
	}
	outcomes := make([]outcome, len(cases))
	var lastWrite time.Time
	for i, tc := range cases {
		start := time.Now()
		err := tc.write(e, tc.name)
		lastWrite = time.Now()
		o := &outcomes[i]
		if err != nil {
			o.writeErr, o.tooSlow = err, time.Since(start) >= s.timing.liveFor
			continue
		}
		has, err := e.c.Has(e.ctx, tc.name)
		switch {
		case time.Since(start) >= s.timing.liveFor:
			o.tooSlow = true
		case err != nil:
			o.liveErr = err
		case !has:
			o.liveErr = errors.New("right after the write, before the TTL passed, Has = false")
		}
	}
	time.Sleep(time.Until(lastWrite.Add(s.timing.goneAfter)))
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := outcomes[i]
			if o.writeErr != nil && o.tooSlow {
				// A write that relies on an entry written moments before
				// (Inc, Add) meets an expired one on a stalled machine.
				t.Skipf("inconclusive: the write took longer than %v and failed: %v", s.timing.liveFor, o.writeErr)
			}
			require.NoError(t, o.writeErr, "write")
			require.NoError(t, o.liveErr, "before the TTL passed")
			if o.tooSlow {
				t.Logf("the write took longer than %v; did not check that the entry was live", s.timing.liveFor)
			}
			tc.check(t, e, tc.name)
		})
	}
}

// gone checks that key expired.
func gone(t *testing.T, e *env, key string) {
	t.Helper()
	has, err := e.c.Has(e.ctx, key)
	require.NoError(t, err)
	assert.False(t, has, "Has = true after the TTL passed, want false")
	v, err := e.c.GetValue(e.ctx, key)
	require.NoError(t, err)
	assert.False(t, v.Found(), "GetValue found the entry after the TTL passed")
	_, found, err := e.b.Get(e.ctx, key)
	require.NoError(t, err)
	assert.False(t, found, "Backend.Get found the entry after the TTL passed")
}

// live checks that key did not expire.
func live(t *testing.T, e *env, key string) {
	t.Helper()
	has, err := e.c.Has(e.ctx, key)
	require.NoError(t, err)
	require.True(t, has, "Has = false after the short TTL passed, want true")
	v, err := e.c.GetValue(e.ctx, key)
	require.NoError(t, err)
	assert.True(t, v.Found(), "GetValue missed after the short TTL passed")
}

// wantInc runs an Inc or Dec and checks its result.
func wantInc(n int64, err error, want int64) error {
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("got %d, want %d", n, want)
	}
	return nil
}

func (s *suite) testInvalidTimeouts(t *testing.T) {
	writes := []struct {
		name  string
		write func(e *env, key string, timeout []time.Duration) error
	}{
		{"Set", func(e *env, key string, timeout []time.Duration) error {
			return e.c.Set(e.ctx, key, "new", timeout...)
		}},
		{"Add", func(e *env, key string, timeout []time.Duration) error {
			_, err := e.c.Add(e.ctx, key, "new", timeout...)
			return err
		}},
		{"SetMany", func(e *env, key string, timeout []time.Duration) error {
			return e.c.SetMany(e.ctx, map[string]any{key: "new"}, timeout...)
		}},
	}
	invalid := []struct {
		name    string
		timeout []time.Duration
	}{
		{"a negative timeout", []time.Duration{-time.Second}},
		{"a timeout of -2ns", []time.Duration{-2}},
		{"two timeouts", []time.Duration{time.Minute, time.Minute}},
	}
	for _, w := range writes {
		for _, bad := range invalid {
			t.Run(fmt.Sprintf("%s with %s is ErrInvalidTimeout and stores nothing", w.name, bad.name), func(t *testing.T) {
				e := s.env(t)
				require.NoError(t, e.c.Set(e.ctx, "old", "old"))
				for _, key := range []string{"old", "missing"} {
					err := w.write(e, key, bad.timeout)
					require.ErrorIs(t, err, backends.ErrInvalidTimeout, "%s(%q)", w.name, key)
				}
				requireValue(t, e, e.c, "old", "old")
				requireMiss(t, e, e.c, "missing")
			})
		}
	}
}

func (s *suite) testTimeouts(t *testing.T) {
	ttl := s.timing.ttl
	s.runTTLTable(t, []ttlCase{
		{"Set without a timeout uses the default timeout", func(e *env, k string) error {
			return e.short.Set(e.ctx, k, "v")
		}, gone},
		{"Add without a timeout uses the default timeout", func(e *env, k string) error {
			_, err := e.short.Add(e.ctx, k, "v")
			return err
		}, gone},
		{"SetMany without a timeout uses the default timeout", func(e *env, k string) error {
			return e.short.SetMany(e.ctx, map[string]any{k: "v"})
		}, gone},
		{"Inc of a missing key uses the default timeout", func(e *env, k string) error {
			n, err := e.short.Inc(e.ctx, k, 1)
			return wantInc(n, err, 1)
		}, gone},
		{"Dec of a missing key uses the default timeout", func(e *env, k string) error {
			n, err := e.short.Dec(e.ctx, k, 1)
			return wantInc(n, err, -1)
		}, gone},
		{"Set without a timeout never expires when the default is NoExpiry", func(e *env, k string) error {
			return e.c.Set(e.ctx, k, "v")
		}, live},
		{"Set with timeout 0 uses the default timeout", func(e *env, k string) error {
			return e.short.Set(e.ctx, k, "v", 0)
		}, gone},
		{"Add with timeout 0 uses the default timeout", func(e *env, k string) error {
			_, err := e.short.Add(e.ctx, k, "v", 0)
			return err
		}, gone},
		{"SetMany with timeout 0 uses the default timeout", func(e *env, k string) error {
			return e.short.SetMany(e.ctx, map[string]any{k: "v"}, 0)
		}, gone},
		{"Set with a timeout expires after it", func(e *env, k string) error {
			return e.c.Set(e.ctx, k, "v", ttl)
		}, gone},
		{"Add with a timeout expires after it", func(e *env, k string) error {
			_, err := e.c.Add(e.ctx, k, "v", ttl)
			return err
		}, gone},
		{"SetMany with a timeout expires after it", func(e *env, k string) error {
			return e.c.SetMany(e.ctx, map[string]any{k: "v"}, ttl)
		}, gone},
		{"Set with NoExpiry never expires even when the default is short", func(e *env, k string) error {
			return e.short.Set(e.ctx, k, "v", backends.NoExpiry)
		}, live},
		{"Add with NoExpiry never expires even when the default is short", func(e *env, k string) error {
			_, err := e.short.Add(e.ctx, k, "v", backends.NoExpiry)
			return err
		}, live},
		{"SetMany with NoExpiry never expires even when the default is short", func(e *env, k string) error {
			return e.short.SetMany(e.ctx, map[string]any{k: "v"}, backends.NoExpiry)
		}, live},
		{"Set replaces the TTL so an expiring entry overwritten with NoExpiry lives", func(e *env, k string) error {
			if err := e.c.Set(e.ctx, k, "v", ttl); err != nil {
				return err
			}
			return e.c.Set(e.ctx, k, "w", backends.NoExpiry)
		}, live},
		{"Set replaces the TTL so a lasting entry overwritten with a timeout expires", func(e *env, k string) error {
			if err := e.c.Set(e.ctx, k, "v", backends.NoExpiry); err != nil {
				return err
			}
			return e.c.Set(e.ctx, k, "w", ttl)
		}, gone},
		// The cache's default is NoExpiry here, so an Inc that reset the
		// TTL to the default (as Flask does) would make the entry immortal.
		{"Inc keeps the entry's TTL", func(e *env, k string) error {
			if err := e.c.Set(e.ctx, k, 5, ttl); err != nil {
				return err
			}
			n, err := e.c.Inc(e.ctx, k, 1)
			return wantInc(n, err, 6)
		}, gone},
		{"Dec keeps the entry's TTL", func(e *env, k string) error {
			if err := e.c.Set(e.ctx, k, 5, ttl); err != nil {
				return err
			}
			n, err := e.c.Dec(e.ctx, k, 1)
			return wantInc(n, err, 4)
		}, gone},
		{"Add that finds a live entry leaves its TTL alone", func(e *env, k string) error {
			if err := e.c.Set(e.ctx, k, "v", ttl); err != nil {
				return err
			}
			added, err := e.c.Add(e.ctx, k, "w", backends.NoExpiry)
			if err == nil && added {
				err = errors.New("the Add overwrote a live entry")
			}
			return err
		}, gone},
		{"Backend.Set with a ttl expires after it", func(e *env, k string) error {
			return e.b.Set(e.ctx, k, []byte("sv"), ttl)
		}, gone},
		{"Backend.SetMany with a ttl expires after it", func(e *env, k string) error {
			return e.b.SetMany(e.ctx, map[string][]byte{k: []byte("sv")}, ttl)
		}, gone},
		{"Backend.Add with a ttl expires after it", func(e *env, k string) error {
			_, err := e.b.Add(e.ctx, k, []byte("sv"), ttl)
			return err
		}, gone},
		{"Backend.Inc of a missing key creates it with the given ttl", func(e *env, k string) error {
			n, err := e.b.Inc(e.ctx, k, 1, ttl)
			return wantInc(n, err, 1)
		}, gone},
		{"Backend.Inc of a missing key with NoExpiry creates it never to expire", func(e *env, k string) error {
			n, err := e.b.Inc(e.ctx, k, 1, backends.NoExpiry)
			return wantInc(n, err, 1)
		}, live},
	})
}

func (s *suite) testExpiry(t *testing.T) {
	// Every row's key holds 5 with the short TTL; the checks run after it.
	write := func(e *env, k string) error { return e.c.Set(e.ctx, k, 5, s.timing.ttl) }
	s.runTTLTable(t, []ttlCase{
		{"Get of an expired entry is a miss", write, func(t *testing.T, e *env, k string) {
			var n int
			found, err := e.c.Get(e.ctx, k, &n)
			require.NoError(t, err)
			assert.False(t, found)
		}},
		{"Has of an expired entry is false", write, func(t *testing.T, e *env, k string) {
			has, err := e.c.Has(e.ctx, k)
			require.NoError(t, err)
			assert.False(t, has)
		}},
		{"GetMany of an expired entry is a miss", write, func(t *testing.T, e *env, k string) {
			vs, err := e.c.GetMany(e.ctx, k)
			require.NoError(t, err)
			require.Len(t, vs, 1)
			assert.False(t, vs[0].Found())
		}},
		{"GetDict leaves out an expired entry", write, func(t *testing.T, e *env, k string) {
			m, err := e.c.GetDict(e.ctx, k)
			require.NoError(t, err)
			assert.NotContains(t, m, k)
		}},
		{"Delete of an expired entry reports false", write, func(t *testing.T, e *env, k string) {
			deleted, err := e.c.Delete(e.ctx, k)
			require.NoError(t, err)
			assert.False(t, deleted)
		}},
		{"DeleteMany does not count an expired entry", write, func(t *testing.T, e *env, k string) {
			n, err := e.c.DeleteMany(e.ctx, k)
			require.NoError(t, err)
			assert.Equal(t, 0, n)
		}},
		{"Add overwrites an expired entry", write, func(t *testing.T, e *env, k string) {
			added, err := e.c.Add(e.ctx, k, "new")
			require.NoError(t, err)
			assert.True(t, added)
			requireValue(t, e, e.c, k, "new")
		}},
		{"Inc of an expired entry starts again from delta", write, func(t *testing.T, e *env, k string) {
			n, err := e.c.Inc(e.ctx, k, 2)
			require.NoError(t, err)
			assert.Equal(t, int64(2), n)
			requireValue(t, e, e.c, k, int64(2))
		}},
		{"Backend.Get of an expired entry is a miss", write, func(t *testing.T, e *env, k string) {
			_, found, err := e.b.Get(e.ctx, k)
			require.NoError(t, err)
			assert.False(t, found)
		}},
		{"Backend.GetMany of an expired entry is nil", write, func(t *testing.T, e *env, k string) {
			vs, err := e.b.GetMany(e.ctx, []string{k})
			require.NoError(t, err)
			require.Len(t, vs, 1)
			assert.Nil(t, vs[0])
		}},
	})
}
