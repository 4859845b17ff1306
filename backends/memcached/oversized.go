package memcached

import (
	"errors"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/memcache"
)

// tooLarge reports an error saying a value read was over max_value_size.
func tooLarge(err error) bool {
	return errors.Is(err, memcache.ErrTooLarge) || errors.Is(err, backends.ErrValueTooLarge)
}
