package backends

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDurationOptionsTakeSecondsOrDurationText(t *testing.T) {
	tests := []struct {
		value   any
		want    time.Duration
		wantErr bool
	}{
		{1, time.Second, false},
		{0.25, 250 * time.Millisecond, false},
		{"500ms", 500 * time.Millisecond, false},
		{2 * time.Second, 2 * time.Second, false},
		{"soon", 0, true},
		{-1, 0, true},
		{"-1s", 0, true},
		{true, 0, true},
	}
	for _, tt := range tests {
		var got time.Duration
		err := durationOpt(map[string]any{"timeout": tt.value}, "timeout", &got)
		if tt.wantErr {
			require.ErrorIs(t, err, ErrConfig, "%v", tt.value)
			assert.Contains(t, err.Error(), "CACHE_OPTIONS timeout")
			continue
		}
		require.NoError(t, err, "%v", tt.value)
		assert.Equal(t, tt.want, got, "%v", tt.value)
	}
	got := time.Minute
	require.NoError(t, durationOpt(map[string]any{}, "timeout", &got))
	assert.Equal(t, time.Minute, got, "an absent option leaves the default")
}

func TestIntAndListOptionsNameTheKeyInErrors(t *testing.T) {
	n := 7
	require.NoError(t, positiveIntOpt(map[string]any{"size": 3.0}, "size", &n))
	assert.Equal(t, 3, n)
	for _, bad := range []any{0, -2, 1.5, "3"} {
		err := positiveIntOpt(map[string]any{"size": bad}, "size", &n)
		require.ErrorIs(t, err, ErrConfig)
		assert.Contains(t, err.Error(), "CACHE_OPTIONS size")
	}

	var l []string
	require.NoError(t, stringsOpt(map[string]any{"ns": []any{"a", "b"}}, "ns", &l))
	assert.Equal(t, []string{"a", "b"}, l)
	err := stringsOpt(map[string]any{"ns": []any{"a", 1}}, "ns", &l)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_OPTIONS ns: item 1")
}
