package fragment

import (
	"bytes"
	"context"
	"io"
)

// renderOffline renders a block whose lookup failed (the backend down, its
// circuit breaker open) and that has no stale copy at hand: through the
// flight group like a miss, so that concurrent renders of the key run its
// body once — an outage of the cache is when the data source behind the
// blocks needs that most — but stored nowhere, since the backend has just
// failed. Like the uncached render it replaces, it counts in no Stats
// field but BackendErrors (or Skips).
func (c *Cache) renderOffline(ctx context.Context, call Call, key string, w io.Writer, body func(io.Writer) error) ([]byte, error) {
	out, _, err := c.group.Do(ctx, key, func() ([]byte, error) {
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer bufPool.Put(buf)
		if err := body(buf); err != nil {
			return nil, err
		}
		return bytes.Clone(buf.Bytes()), nil
	})
	if err != nil {
		return c.flightError(err, call, w, body)
	}
	// out is this render's own copy, never stored: execute's caller may
	// write it or hand it on as an immutable fragment.
	return out, nil
}
