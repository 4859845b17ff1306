package backendtest

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// absent as an initial value leaves the key missing (nil is a value).
type absentValue struct{}

var absent any = absentValue{}

type counterOp func(e *env, key string) (int64, error)

func inc(delta int64) counterOp {
	return func(e *env, key string) (int64, error) { return e.c.Inc(e.ctx, key, delta) }
}

func dec(delta int64) counterOp {
	return func(e *env, key string) (int64, error) { return e.c.Dec(e.ctx, key, delta) }
}

func (s *suite) testIncDec(t *testing.T) {
	notInteger := backends.ErrNotInteger
	cases := []struct {
		name    string
		initial any // stored with Set first, unless absent
		op      counterOp
		want    int64 // the result, and the value stored afterwards
		wantErr error // instead: the error, with the stored value unchanged
	}{
		{"Inc of a missing key creates it at delta", absent, inc(5), 5, nil},
		{"Dec of a missing key creates it at minus delta", absent, dec(5), -5, nil},
		{"Inc adds delta to an int stored by Set", 10, inc(5), 15, nil},
		{"Inc works on an int8 stored by Set", int8(-3), inc(1), -2, nil},
		{"Inc works on a uint32 stored by Set", uint32(7), inc(1), 8, nil},
		{"Inc works on an int64 stored by Set", int64(1 << 40), inc(1), 1<<40 + 1, nil},
		{"Dec subtracts delta from an int stored by Set", 10, dec(3), 7, nil},
		{"Dec goes below zero", 1, dec(3), -2, nil},
		{"Inc with a negative delta subtracts", 10, inc(-4), 6, nil},
		{"Inc by zero returns the stored value", 10, inc(0), 10, nil},
		{"successive Incs and Decs accumulate", absent, func(e *env, key string) (int64, error) {
			for _, d := range []int64{1, 2, -4} {
				if _, err := e.c.Inc(e.ctx, key, d); err != nil {
					return 0, err
				}
			}
			return e.c.Dec(e.ctx, key, 3)
		}, -4, nil},
		{"Inc of a missing key by math.MinInt64 creates it", absent, inc(math.MinInt64), math.MinInt64, nil},
		{"Inc may reach math.MaxInt64", int64(math.MaxInt64 - 1), inc(1), math.MaxInt64, nil},
		{"Dec may reach math.MinInt64", int64(math.MinInt64 + 1), dec(1), math.MinInt64, nil},
		{"Inc past math.MaxInt64 is ErrNotInteger", int64(math.MaxInt64), inc(1), 0, notInteger},
		{"Dec past math.MinInt64 is ErrNotInteger", int64(math.MinInt64), dec(1), 0, notInteger},
		{"Inc of a uint64 above math.MaxInt64 is ErrNotInteger", uint64(math.MaxUint64), inc(-1), 0, notInteger},
		{"Dec by math.MinInt64 is ErrNotInteger", 5, dec(math.MinInt64), 0, notInteger},
		{"Dec by math.MinInt64 of a missing key is ErrNotInteger and creates nothing", absent, dec(math.MinInt64), 0, notInteger},
		{"Inc of a string is ErrNotInteger", "abc", inc(1), 0, notInteger},
		{"Inc of a string of digits is ErrNotInteger", "12", inc(1), 0, notInteger},
		{"Inc of an empty string is ErrNotInteger", "", inc(1), 0, notInteger},
		{"Inc of a byte slice of digits is ErrNotInteger", []byte("12"), inc(1), 0, notInteger},
		{"Inc of a float is ErrNotInteger", 1.5, inc(1), 0, notInteger},
		{"Inc of a struct is ErrNotInteger", record{Count: 1}, inc(1), 0, notInteger},
		{"Inc of nil is ErrNotInteger", nil, inc(1), 0, notInteger},
		{"Dec of a string is ErrNotInteger", "abc", dec(1), 0, notInteger},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := s.env(t)
			if tc.initial != absent {
				require.NoError(t, e.c.Set(e.ctx, "k", tc.initial))
			}
			got, err := tc.op(e, "k")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if tc.initial == absent {
					requireMiss(t, e, e.c, "k")
				} else {
					requireValue(t, e, e.c, "k", tc.initial)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "result")
			requireValue(t, e, e.c, "k", tc.want)
		})
	}
}
