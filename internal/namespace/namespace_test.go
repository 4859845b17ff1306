package namespace

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewDropsDuplicatesAndSortsShortestFirst(t *testing.T) {
	s, err := New([]string{"a:b:", "c:", "a:", "c:"}, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"c:", "a:", "a:b:"}, s.Prefixes())
	assert.Equal(t, 3, s.Len())
	assert.Equal(t, DefaultRefresh, s.refresh, "0 means the default refresh")
}

func TestNewRefusesTheEmptyPrefixAfterTheBackendsCheck(t *testing.T) {
	_, err := New([]string{"a:", ""}, 0, nil)
	assert.ErrorContains(t, err, "empty namespace")

	mine := errors.New("mine")
	_, err = New([]string{"a:", ""}, 0, func(p string) error {
		if p == "" {
			return mine
		}
		return nil
	})
	assert.ErrorIs(t, err, mine, "the backend's check speaks first")
}

func TestWhichNamespacesAKeyOrAClearReaches(t *testing.T) {
	s, err := New([]string{"a:", "a:b:", "c:"}, 0, nil)
	require.NoError(t, err)
	tests := []struct {
		key        string
		containing []string
		longest    string
	}{
		{"a:b:x", []string{"a:", "a:b:"}, "a:b:"},
		{"a:bx", []string{"a:"}, "a:"},
		{"c:", []string{"c:"}, "c:"},
		{"x", nil, ""},
		{"", nil, ""},
	}
	for _, tt := range tests {
		var got []string
		require.NoError(t, s.Containing(tt.key, func(ns *Namespace) error {
			got = append(got, ns.Prefix)
			return nil
		}))
		assert.Equal(t, tt.containing, got, "Containing(%q)", tt.key)
		if tt.longest == "" {
			assert.Nil(t, s.Longest(tt.key), "Longest(%q)", tt.key)
		} else {
			assert.Equal(t, tt.longest, s.Longest(tt.key).Prefix, "Longest(%q)", tt.key)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err = s.Containing("a:b:x", func(*Namespace) error { calls++; return stop })
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls, "Containing stops at the first error")

	assert.Nil(t, s.Lookup("a"), "Lookup wants the exact prefix")
	assert.Equal(t, "a:", s.Lookup("a:").Prefix)
	var within []string
	for _, ns := range s.Within("a:") {
		within = append(within, ns.Prefix)
	}
	assert.Equal(t, []string{"a:", "a:b:"}, within, "a Clear reaches the namespaces nested inside")
}

func TestGenerationIsTrustedForTheRefreshInterval(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tt := range []struct {
		name    string
		refresh time.Duration
		reads   int // after the calls below
	}{
		{"a positive refresh keeps a copy", time.Second, 3},
		{"a negative refresh reads every time", -1, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New([]string{"n:"}, tt.refresh, nil)
			require.NoError(t, err)
			s.SetClock(func() time.Time { return now })
			ns := s.Lookup("n:")
			reads := 0
			read := func(context.Context) (string, error) { reads++; return "g", nil }
			for _, step := range []time.Duration{0, 500 * time.Millisecond, time.Second} {
				now = now.Add(step)
				g, err := s.Generation(t.Context(), ns, read)
				require.NoError(t, err)
				assert.Equal(t, "g", g)
			}
			s.ForgetAll()
			_, err = s.Generation(t.Context(), ns, read)
			require.NoError(t, err)
			assert.Equal(t, tt.reads, reads)
		})
	}
}

func TestGenerationReturnsTheReadError(t *testing.T) {
	s, err := New([]string{"n:"}, time.Hour, nil)
	require.NoError(t, err)
	boom := errors.New("boom")
	_, err = s.Generation(t.Context(), s.Lookup("n:"), func(context.Context) (string, error) { return "", boom })
	assert.ErrorIs(t, err, boom)
	got, err := s.Generation(t.Context(), s.Lookup("n:"), func(context.Context) (string, error) { return "ok", nil })
	require.NoError(t, err)
	assert.Equal(t, "ok", got, "a failed read is not remembered")
}

func TestUndeclaredSaysHowToDeclare(t *testing.T) {
	s, err := New([]string{"n:"}, 0, nil)
	require.NoError(t, err)
	err = s.Undeclared("memcached 127.0.0.1:11211", "memcached", "MemcachedOptions.Namespaces", "x:")
	assert.ErrorIs(t, err, errors.ErrUnsupported)
	for _, want := range []string{"memcached 127.0.0.1:11211", `Clear("x:") needs "x:" declared`, "MemcachedOptions.Namespaces", "CACHE_KEY_PREFIX", `["n:"]`} {
		assert.ErrorContains(t, err, want)
	}
}
