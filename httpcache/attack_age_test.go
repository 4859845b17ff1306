package httpcache

import (
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// TestAttackAgeOverflow: a hit's Age is the entry's age plus the Age the
// handler relayed, parsed with no upper bound; a relayed (or stored) Age
// near math.MaxInt64 wraps the sum to a negative Age, which RFC 9111 §5.1
// does not allow (a cache sends 2147483648 for an age that overflows).
func TestAttackAgeOverflow(t *testing.T) {
	c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{})
	h, _ := page(nil)
	h = c.Middleware(h)
	req, err := http.NewRequest(http.MethodGet, "http://shop.example/p", nil)
	require.NoError(t, err)
	key, err := c.Key(req)
	require.NoError(t, err)
	b, err := encodeEntry(&entry{
		created: time.Now().Add(-10 * time.Second),
		status:  http.StatusOK,
		header:  http.Header{"Age": {strconv.FormatInt(math.MaxInt64, 10)}},
		body:    []byte("relayed"),
	})
	require.NoError(t, err)
	require.NoError(t, c.set(t.Context(), key, b, 0))

	rec := do(t, h, http.MethodGet, "http://shop.example/p")
	require.Equal(t, "HIT", rec.Header().Get("X-Cache"))
	age, err := strconv.ParseInt(rec.Header().Get("Age"), 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, age, int64(0), "Age must never be negative")
}

func TestAgeOf(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		created time.Time
		relayed []string
		want    int64
	}{
		{"stored now", now, nil, 0},
		{"stored 10 s ago", now.Add(-10 * time.Second), nil, 10},
		{"created in the future (clock skew between servers)", now.Add(time.Hour), nil, 0},
		{"relayed Age added", now.Add(-10 * time.Second), []string{"5"}, 15},
		{"relayed Age 0", now.Add(-10 * time.Second), []string{"0"}, 10},
		{"relayed Age with leading zeros", now, []string{"007"}, 7},
		{"negative relayed Age ignored", now.Add(-10 * time.Second), []string{"-5"}, 10},
		{"signed relayed Age ignored (delta-seconds has no sign)", now.Add(-10 * time.Second), []string{"+5"}, 10},
		{"relayed Age not a number", now.Add(-10 * time.Second), []string{"5s"}, 10},
		{"relayed Age MaxInt64", now.Add(-10 * time.Second), []string{strconv.FormatInt(math.MaxInt64, 10)}, maxAge},
		{"relayed Age beyond 64 bits", now, []string{"99999999999999999999999999"}, maxAge},
		{"relayed Age just over 2^31", now, []string{"2147483649"}, maxAge},
		{"relayed Age plus age over 2^31", now.Add(-10 * time.Second), []string{"2147483640"}, maxAge},
		{"entry as old as time can say", time.UnixMilli(math.MinInt64), nil, maxAge},
		{"first relayed value counts", now, []string{"3", "4"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &entry{created: tt.created, status: http.StatusOK, header: http.Header{}}
			if tt.relayed != nil {
				e.header["Age"] = tt.relayed
			}
			assert.Equal(t, tt.want, ageOf(e, now))
		})
	}
}
