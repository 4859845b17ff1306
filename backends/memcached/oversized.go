package memcached

import (
	"context"
	"errors"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/memcache"
)

// tooLarge reports an error saying a value read was over max_value_size.
func tooLarge(err error) bool {
	return errors.Is(err, memcache.ErrTooLarge) || errors.Is(err, backends.ErrValueTooLarge)
}

// getManyOversized reads keys one Get at a time, after a GetMany failed
// because one of its values is over max_value_size (the client refuses to
// read such a reply, which fails the whole multi-get on that server): the
// keys whose values are too large are misses, listed in a
// *backends.MissedKeysError returned with the values of the others. Any
// other failure fails the call.
func (m *Backend) getManyOversized(ctx context.Context, keys []string, cause error) ([][]byte, error) {
	out := make([][]byte, len(keys))
	var missed []string
	for i, k := range keys {
		v, ok, err := m.Get(ctx, k)
		switch {
		case tooLarge(err):
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
