package failopen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

func TestCountTellsSkipsFromErrors(t *testing.T) {
	r := New(nil, 0, "m")
	assert.True(t, r.Count(fmt.Errorf("get: %w", backends.ErrBreakerOpen)), "a wrapped ErrBreakerOpen is a skip")
	assert.False(t, r.Count(errors.New("connection refused")))
	assert.False(t, r.Count(errors.New("timeout")))
	assert.Equal(t, uint64(1), r.Skips())
	assert.Equal(t, uint64(2), r.Errors())
	assert.Equal(t, DefaultInterval, r.interval)
}

func TestReportLogsOncePerIntervalAndCountsTheRest(t *testing.T) {
	var buf bytes.Buffer
	r := New(slog.New(slog.NewJSONHandler(&buf, nil)), time.Hour, "fragcache: x failed")
	for i := range 3 {
		r.Report(fmt.Errorf("failure %d", i), "op", "get")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, "one line per interval")
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "fragcache: x failed", rec["msg"])
	assert.Equal(t, "WARN", rec["level"])
	assert.Equal(t, "get", rec["op"])
	assert.Equal(t, "failure 0", rec["err"])
	assert.Equal(t, 0.0, rec["suppressed_since_last_report"])

	// The interval has passed: the next report carries the count.
	r.PassInterval()
	buf.Reset()
	r.Report(errors.New("later"), "op", "set")
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	assert.Equal(t, "later", rec["err"])
	assert.Equal(t, 2.0, rec["suppressed_since_last_report"])
}
