package backends

import (
	"context"
	"errors"

	"github.com/fragcache/fragcache/internal/memcache"
)

// SetEntries stores every entry with its own expiration through the
// client's pipelined SetMulti: one round trip per server. Spread values
// (SpreadSASLMemcachedCache) go one by one, as their chunks need.
func (m *Memcached) SetEntries(ctx context.Context, entries []Entry) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if m.spread {
		return setEntriesOneByOne(ctx, m, entries)
	}
	var errs []error
	batch := make([]memcache.Item, 0, len(entries))
	owners := make([]string, 0, len(entries))
	for _, e := range entries {
		k, err := m.itemKey(ctx, e.Key)
		if err != nil {
			errs = append(errs, &KeyError{Key: e.Key, Err: err})
			continue
		}
		batch = append(batch, memcache.Item{Key: k, Value: encodeMemcached(e.Value), Flags: m.expiryFlags(e.TTL), Expiration: m.exptime(e.TTL)})
		owners = append(owners, e.Key)
	}
	for i, err := range m.client.SetMulti(ctx, batch) {
		if err != nil {
			errs = append(errs, &KeyError{Key: owners[i], Err: memcachedError(err)})
		}
	}
	return errors.Join(errs...)
}
