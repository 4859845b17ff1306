package backends_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

var errTooBig = errors.New("value over the limit")

// partial is a backend whose GetMany misses the key "big" with a
// *MissedKeysError and reads the others.
type partial struct{ backends.Backend }

func (p partial) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	out, err := p.Backend.GetMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	var missed []string
	for i, k := range keys {
		if bytes.HasSuffix([]byte(k), []byte("big")) {
			out[i] = nil
			missed = append(missed, k)
		}
	}
	if missed == nil {
		return out, nil
	}
	return out, &backends.MissedKeysError{Keys: missed, Err: errTooBig}
}

// TestGetManyMissedKeys: a backend's *MissedKeysError makes those keys
// misses and keeps the other values; it is logged, and it never opens a
// circuit breaker (the backend answered).
func TestGetManyMissedKeys(t *testing.T) {
	ctx := t.Context()
	var logs bytes.Buffer
	br := backends.NewBreaker(partial{backends.NewSimple(0)}, backends.BreakerOptions{Failures: 1, Cooldown: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	c := backends.New(br, backends.CacheOptions{KeyPrefix: "p/", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, c.Set(ctx, "a", "first"))
	require.NoError(t, c.Set(ctx, "big", "would be too large"))
	for range 3 {
		vals, err := c.GetMany(ctx, "a", "big")
		require.NoError(t, err)
		var got string
		require.NoError(t, vals[0].Decode(&got))
		assert.Equal(t, "first", got)
		assert.False(t, vals[1].Found())
	}
	assert.Equal(t, backends.BreakerClosed, br.State())
	assert.Contains(t, logs.String(), `p/big`)
	assert.Contains(t, logs.String(), errTooBig.Error())
}
