package redis

import (
	"context"
	"errors"

	"github.com/fragcache/fragcache/backends"
)

// getManyOversized reads keys one GET at a time, after a GetMany failed
// because one of its values is over max_value_size (the reply bound fails
// the whole MGET, and the connection it came on): the keys whose values
// are too large are misses, listed in a *backends.MissedKeysError returned
// with the values of the others. Any other failure fails the call.
func (r *Backend) getManyOversized(ctx context.Context, keys []string, cause error) ([][]byte, error) {
	out := make([][]byte, len(keys))
	var missed []string
	for i, k := range keys {
		v, ok, err := r.Get(ctx, k)
		switch {
		case errors.Is(err, ErrReplyTooLarge):
			missed = append(missed, k)
			cause = err
		case err != nil:
			return nil, err
		case ok:
			out[i] = v
		}
	}
	if len(missed) == 0 {
		return out, nil // rewritten in between: nothing too large now
	}
	return out, &backends.MissedKeysError{Keys: missed, Err: cause}
}
