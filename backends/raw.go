package backends

import (
	"context"
	"fmt"
	"time"
)

// GetRaw returns the bytes stored under key as the backend holds them,
// without the value envelope Get and GetValue read (see Value), for
// callers that store values in a format of their own (httpcache's
// entries). It goes through the key prefix and the backend's circuit
// breaker like every other method, so a skipped call is ErrBreakerOpen.
// A miss returns found=false.
func (c *Cache) GetRaw(ctx context.Context, key string) (value []byte, found bool, err error) {
	b, found, err := c.backend.Get(ctx, c.key(key))
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	return b, found, nil
}

// SetRaw stores value under key as it is, without the value envelope Set
// writes, with the timeout rules of Set. Get reads such a value as a
// foreign one (see Value); read it back with GetRaw.
func (c *Cache) SetRaw(ctx context.Context, key string, value []byte, timeout ...time.Duration) error {
	ttl, err := c.Timeout(timeout...)
	if err != nil {
		return fmt.Errorf("set %q: %w", key, err)
	}
	if err := c.backend.Set(ctx, c.key(key), value, ttl); err != nil {
		return fmt.Errorf("set %q: %w", key, err)
	}
	return nil
}

// BytesEnvelope is what Set writes ahead of a []byte value: a value stored
// with SetRaw as BytesEnvelope followed by b is, byte for byte, what
// Set(ctx, key, b) stores, and every reader (Get, GetValue, other
// processes) sees the []byte b. It is for callers that build a value in a
// buffer of their own and keep it (fragment's renders, stored and then
// printed), which can then store it without the copy Set makes into its
// envelope.
const BytesEnvelope = "\xf6"
