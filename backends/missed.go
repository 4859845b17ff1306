package backends

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MissedKeysError is returned by a Backend's GetMany together with its
// values when some keys could not be read — a value over the backend's
// size limit, which it refuses to read — while the others were: the
// values of the keys it lists are nil (misses), the rest are read. One
// key's trouble never loses the others'. [Cache.GetMany] logs it and
// returns the values; a Backend returns any other error only when the
// values cannot be trusted at all.
type MissedKeysError struct {
	Keys []string // as the backend was given them
	Err  error    // why, for the first of them
}

func (e *MissedKeysError) Error() string {
	return fmt.Sprintf("%d key(s) read as misses (%s): %v", len(e.Keys), strings.Join(quoteAll(e.Keys), ", "), e.Err)
}

// Unwrap returns why the keys were missed.
func (e *MissedKeysError) Unwrap() error { return e.Err }

func quoteAll(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%.80q", k)
	}
	return out
}

// missedKeys reports whether err is a MissedKeysError that leaves raw,
// the values for n keys, usable; it logs it.
func (c *Cache) missedKeys(err error, raw [][]byte, n int) bool {
	var missed *MissedKeysError
	if !errors.As(err, &missed) || len(raw) != n {
		return false
	}
	c.logger.Warn("fragcache: values too large to read were taken as misses", "err", missed)
	return true
}

// GetEach reads keys one b.Get at a time: the fallback of a Backend's
// GetMany whose multi-get failed because one of its values is too large to
// read (tooLarge reports such an error), which a size bound on the reply
// does to the whole call. The keys whose values are too large are misses,
// listed in a *MissedKeysError returned with the values of the others; any
// other failure fails the call. If no value is too large any more (it was
// rewritten in between), the error is nil.
func GetEach(ctx context.Context, b Backend, keys []string, tooLarge func(error) bool) ([][]byte, error) {
	out := make([][]byte, len(keys))
	var missed []string
	var cause error
	for i, k := range keys {
		v, ok, err := b.Get(ctx, k)
		switch {
		case err != nil && tooLarge(err):
			missed = append(missed, k)
			if cause == nil {
				cause = err
			}
		case err != nil:
			return nil, err
		case ok:
			out[i] = v
		}
	}
	if len(missed) == 0 {
		return out, nil
	}
	return out, &MissedKeysError{Keys: missed, Err: cause}
}
