package memcached

import (
	"context"
	"errors"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/memcache"
)

var _ backends.Batcher = (*Backend)(nil)

// SetEntries stores every entry with its own expiration through the
// client's pipelined SetMulti: one round trip per server. Spread values
// (SpreadSASLMemcachedCache) take two: every chunk after the first, then
// the first chunks of the entries whose other chunks were stored.
func (m *Backend) SetEntries(ctx context.Context, entries []backends.Entry) error {
	if m.closed.Load() {
		return backends.ErrClosed
	}
	if m.spread {
		return m.spreadSetEntries(ctx, entries)
	}
	var errs []error
	batch := make([]memcache.Item, 0, len(entries))
	owners := make([]string, 0, len(entries))
	for _, e := range entries {
		k, err := m.itemKey(ctx, e.Key)
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: e.Key, Err: err})
			continue
		}
		batch = append(batch, memcache.Item{Key: k, Value: encodeMemcached(e.Value), Flags: m.expiryFlags(e.TTL), Expiration: m.exptime(e.TTL)})
		owners = append(owners, e.Key)
	}
	for i, err := range m.client.SetMulti(ctx, batch) {
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: owners[i], Err: memcachedError(err)})
		}
	}
	return errors.Join(errs...)
}
