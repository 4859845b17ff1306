package memcached

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/namespace"
)

func TestMemcachedExptime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := &Backend{now: func() time.Time { return now }}
	const month = 30 * 24 * time.Hour
	tests := []struct {
		ttl  time.Duration
		want uint32
	}{
		{0, 0},
		{time.Nanosecond, 1}, // memcached has whole seconds: round up, never down to "never"
		{999 * time.Millisecond, 1},
		{time.Second, 1},
		{1500 * time.Millisecond, 2},
		{month, uint32(month / time.Second)}, // the longest relative exptime
		{month + time.Second, uint32(now.Unix()) + uint32(month/time.Second) + 1}, // then absolute
		{math.MaxInt64, math.MaxUint32 - 1},                                       // capped below NoCreate
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, m.exptime(tc.ttl), "exptime(%v)", tc.ttl)
	}
	assert.Equal(t, uint32(0), m.expiryFlags(0))
	assert.Equal(t, uint32(now.Unix()+2), m.expiryFlags(1500*time.Millisecond))

	expiries := []struct {
		expiry int64
		want   uint32
	}{
		{0, 0},
		{now.Unix() - 5, 1}, // already due
		{now.Unix() + 60, 60},
		{now.Unix() + 40*24*3600, uint32(now.Unix() + 40*24*3600)},
	}
	for _, tc := range expiries {
		assert.Equal(t, tc.want, m.exptimeAt(tc.expiry), "exptimeAt(%d)", tc.expiry)
	}
}

func TestMemcachedStoredForms(t *testing.T) {
	tests := []struct {
		value  string
		stored string
	}{
		{"0", "0"},
		{"42", "42"},
		{"-1", "18446744073709551615"},
		{strconv.FormatInt(math.MinInt64, 10), "9223372036854775808"},
		{strconv.FormatInt(math.MaxInt64, 10), "9223372036854775807"},
		{"", "="},
		{"abc", "=abc"},
		{"+5", "=+5"},   // not the canonical text of an integer
		{"007", "=007"}, // nor this
		{"-0", "=-0"},
		{"18446744073709551615", "=18446744073709551615"}, // a uint64 above MaxInt64
		{"=x", "==x"},
	}
	for _, tc := range tests {
		stored := encodeMemcached([]byte(tc.value))
		assert.Equal(t, tc.stored, string(stored), "stored form of %q", tc.value)
		back, ok := decodeMemcached(stored)
		require.True(t, ok, "%q", tc.value)
		assert.Equal(t, tc.value, string(back), "round trip of %q", tc.value)
		assert.NotNil(t, back)
	}
	// incr shortens numbers in place, padding with spaces.
	back, ok := decodeMemcached([]byte("9 "))
	assert.True(t, ok)
	assert.Equal(t, "9", string(back))
	for _, foreign := range []string{"", "abc", "12abc", " 12", "-5", "99999999999999999999"} {
		_, ok := decodeMemcached([]byte(foreign))
		assert.False(t, ok, "%q is not a stored form", foreign)
	}
}

func TestMemcachedLogicalKeysAreDistinct(t *testing.T) {
	ns, err := namespace.New([]string{"a:", "a:1:"}, time.Hour, nil)
	require.NoError(t, err)
	for _, p := range ns.Prefixes() {
		ns.Remember(ns.Lookup(p), "1")
	}
	m := &Backend{now: time.Now, namespaces: ns}
	ctx := t.Context()
	// With one generation inserted after the longest namespace only,
	// "a:1:k" (in a:1:) and "a:k" (in a: with generation 1) could meet;
	// every enclosing namespace's generation keeps them apart.
	seen := map[string]string{}
	for _, key := range []string{"a:1:k", "a:k", "a:1:1:k", "a:1:", "a:", "a", "", "a:11:k", "x:1:k"} {
		logical, err := m.logical(ctx, key)
		require.NoError(t, err)
		if other, dup := seen[logical]; dup {
			t.Fatalf("%q and %q both map to %q", key, other, logical)
		}
		seen[logical] = key
	}
	got, err := m.logical(ctx, "a:1:k")
	require.NoError(t, err)
	assert.Equal(t, "a:1:1:1:k", got)
	assert.Equal(t, memcachedEmptyKey, memcachedSafeKey(""))
	assert.Len(t, memcachedEmptyKey, 44)
}
