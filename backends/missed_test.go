package backends_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// failingGets is a Simple whose Get fails for the keys in errs.
type failingGets struct {
	*backends.Simple
	errs map[string]error
}

func (f failingGets) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := f.errs[key]; err != nil {
		return nil, false, err
	}
	return f.Simple.Get(ctx, key)
}

func TestGetEachMissesOnlyTheKeysTooLargeToRead(t *testing.T) {
	ctx := context.Background()
	errDown := errors.New("connection reset")
	tooLarge := func(err error) bool { return errors.Is(err, errTooBig) }
	tests := []struct {
		name       string
		errs       map[string]error
		want       [][]byte
		wantMissed []string // nil: no MissedKeysError
		wantErr    error    // another failure fails the call
	}{
		{"none too large now", nil, [][]byte{[]byte("A"), nil, []byte("C")}, nil, nil},
		{"one", map[string]error{"a": errTooBig}, [][]byte{nil, nil, []byte("C")}, []string{"a"}, nil},
		{"two, the first's cause kept", map[string]error{"a": errTooBig, "c": fmt.Errorf("c: %w", errTooBig)},
			[][]byte{nil, nil, nil}, []string{"a", "c"}, nil},
		{"another failure", map[string]error{"a": errTooBig, "c": errDown}, nil, nil, errDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := failingGets{backends.NewSimple(0), tt.errs}
			require.NoError(t, b.Set(ctx, "a", []byte("A"), 0))
			require.NoError(t, b.Set(ctx, "c", []byte("C"), 0))
			got, err := backends.GetEach(ctx, b, []string{"a", "b", "c"}, tooLarge)
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			case tt.wantMissed == nil:
				require.NoError(t, err)
			default:
				var missed *backends.MissedKeysError
				require.ErrorAs(t, err, &missed)
				assert.Equal(t, tt.wantMissed, missed.Keys)
				assert.Same(t, tt.errs[tt.wantMissed[0]], missed.Err, "the first key's cause")
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
