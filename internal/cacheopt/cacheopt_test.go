package cacheopt

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type opts struct {
	Timeout time.Duration
	Size    int
	Retries int
	On      bool
	Name    string
	NS      []string
}

var table = []Option[opts]{
	Duration("timeout", func(o *opts) *time.Duration { return &o.Timeout }),
	PositiveInt("size", func(o *opts) *int { return &o.Size }),
	Int("retries", func(o *opts) *int { return &o.Retries }, -1),
	Bool("on", func(o *opts) *bool { return &o.On }),
	String("name", func(o *opts) *string { return &o.Name }),
	Strings("ns", func(o *opts) *[]string { return &o.NS }),
}

func TestDurationOptionsTakeSecondsOrDurationText(t *testing.T) {
	tests := []struct {
		value   any
		want    time.Duration
		wantErr bool
	}{
		{1, time.Second, false},
		{0.25, 250 * time.Millisecond, false},
		{1e-10, time.Nanosecond, false}, // never rounded down to 0, "the default"
		{"500ms", 500 * time.Millisecond, false},
		{2 * time.Second, 2 * time.Second, false},
		{"soon", 0, true},
		{-1, 0, true},
		{-0.5, 0, true},
		{"-1s", 0, true},
		{true, 0, true},
		{math.NaN(), 0, true},
	}
	for _, tt := range tests {
		var got opts
		err := Decode("MyCache", map[string]any{"timeout": tt.value}, &got, table)
		if tt.wantErr {
			require.Error(t, err, "%v", tt.value)
			assert.Contains(t, err.Error(), "CACHE_OPTIONS timeout")
			continue
		}
		require.NoError(t, err, "%v", tt.value)
		assert.Equal(t, tt.want, got.Timeout, "%v", tt.value)
	}
	got := opts{Timeout: time.Minute}
	require.NoError(t, Decode("MyCache", map[string]any{}, &got, table))
	assert.Equal(t, time.Minute, got.Timeout, "an absent option leaves the default")
}

func TestIntBoolStringAndListOptionsNameTheKeyInErrors(t *testing.T) {
	var o opts
	require.NoError(t, Decode("MyCache", map[string]any{
		"size": 3.0, "retries": -1, "on": true, "name": "n", "ns": []any{"a", "b"},
	}, &o, table))
	assert.Equal(t, opts{Size: 3, Retries: -1, On: true, Name: "n", NS: []string{"a", "b"}}, o)

	bad := []struct {
		key   string
		value any
		want  string
	}{
		{"size", 0, "CACHE_OPTIONS size: got 0 (int), want a positive integer"},
		{"size", -2, "CACHE_OPTIONS size"},
		{"size", 1.5, "CACHE_OPTIONS size"},
		{"size", "3", "CACHE_OPTIONS size"},
		{"retries", -2, "CACHE_OPTIONS retries: -2 is below -1"},
		{"retries", "1", "CACHE_OPTIONS retries: got string, want an integer"},
		{"on", "yes", "CACHE_OPTIONS on: got string, want a bool"},
		{"name", 1, "CACHE_OPTIONS name: got int, want a string"},
		{"ns", []any{"a", 1}, "CACHE_OPTIONS ns: item 1"},
		{"ns", "a", "CACHE_OPTIONS ns: got string, want a list of strings"},
	}
	for _, b := range bad {
		err := Decode("MyCache", map[string]any{b.key: b.value}, &o, table)
		assert.ErrorContains(t, err, b.want, "%s=%v", b.key, b.value)
	}
}

func TestUnknownOptionsAreRefusedListingTheKnownOnes(t *testing.T) {
	var o opts
	err := Decode("MyCache", map[string]any{"sise": 1, "b": 2}, &o, table)
	assert.ErrorContains(t, err, `CACHE_OPTIONS key "b" is not an option of MyCache (accepted: timeout, size, retries, on, name, ns)`)
	assert.Zero(t, o, "nothing is stored when a key is unknown")
	assert.ErrorContains(t, Check("Other", map[string]any{"x": 1}), "accepted: none")
	assert.NoError(t, Check("Other", nil))
}

func TestAsIntTakesIntegersAndWholeFloats(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want int
		ok   bool
	}{
		{7, 7, true}, {int8(-3), -3, true}, {uint16(9), 9, true}, {int64(1 << 40), 1 << 40, true},
		{3.0, 3, true}, {3.5, 0, false}, {float64(math.MaxInt32 + 1), 0, false},
		{uint64(math.MaxUint64), 0, false}, {"3", 0, false}, {nil, 0, false},
	} {
		got, ok := AsInt(tt.v)
		assert.Equal(t, tt.ok, ok, "%T %v", tt.v, tt.v)
		assert.Equal(t, tt.want, got, "%T %v", tt.v, tt.v)
	}
}
