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
	c := New(backends.New(backends.NewSimple(0), backends.Options{}), Options{})
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
