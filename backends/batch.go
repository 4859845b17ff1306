package backends

import (
	"context"
	"fmt"
	"time"
)

// Entry is one entry of a [Batcher]'s SetEntries: an already prefixed key,
// its encoded value and its TTL, resolved as a Backend's ttl is (positive,
// or NoExpiry).
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// EntriesOf returns items as entries that all have ttl: a Batcher's
// SetMany is its SetEntries of them.
func EntriesOf(items map[string][]byte, ttl time.Duration) []Entry {
	entries := make([]Entry, 0, len(items))
	for k, v := range items {
		entries = append(entries, Entry{Key: k, Value: v, TTL: ttl})
	}
	return entries
}

// Batcher is implemented by backends whose every call costs a network
// round trip (Redis, memcached). SetEntries stores entries that each have
// their own TTL in as few round trips as the protocol allows (one pipeline
// on Redis, one batch of pipelined sets on memcached), attempting every
// entry and reporting failures as an errors.Join of *KeyError, like
// SetMany. Callers that can group their work (fragment's page batching)
// take the interface as the sign that grouping pays off; in-process
// backends do not implement it, since a call costs them less than the
// bookkeeping of a batch.
type Batcher interface {
	SetEntries(ctx context.Context, entries []Entry) error
}

// Item is one entry of [Cache.SetItems]. Timeout is as Set's: 0 for the
// cache's default, NoExpiry for never.
type Item struct {
	Key     string
	Value   any
	Timeout time.Duration
}

// Batches reports whether the cache's backend is a [Batcher]: whether
// grouping reads with GetMany and writes with SetItems saves round trips.
// A backend wrapping another (a Breaker, anything with an Unwrap() Backend
// method) counts only if it and every backend it wraps are Batchers, so
// that SetItems reaches the store in one call.
func (c *Cache) Batches() bool { return isBatcher(c.backend) }

func isBatcher(b Backend) bool {
	for {
		if _, ok := b.(Batcher); !ok {
			return false
		}
		u, ok := b.(interface{ Unwrap() Backend })
		if !ok {
			return true
		}
		b = u.Unwrap()
	}
}

// SetItems stores every item, each with its own timeout, in one round trip
// when the backend is a [Batcher] (one Set per item otherwise). Every item
// is attempted; the error, if any, joins a *KeyError per failed key.
func (c *Cache) SetItems(ctx context.Context, items []Item) error {
	var errs []error
	entries := make([]Entry, 0, len(items))
	for _, it := range items {
		ttl, err := c.Timeout(it.Timeout)
		if err == nil {
			var b []byte
			if b, err = encode(c.codec, it.Value); err == nil {
				entries = append(entries, Entry{Key: c.key(it.Key), Value: b, TTL: ttl})
				continue
			}
		}
		errs = append(errs, &KeyError{Key: it.Key, Err: err})
	}
	if b, ok := c.backend.(Batcher); ok && isBatcher(c.backend) {
		if err := b.SetEntries(ctx, entries); err != nil {
			errs = append(errs, c.unprefixErrors(err, c.unprefixedKeys(entries)))
		}
	} else {
		for _, e := range entries {
			if err := c.backend.Set(ctx, e.Key, e.Value, e.TTL); err != nil {
				errs = append(errs, &KeyError{Key: e.Key[len(c.prefix):], Err: err})
			}
		}
	}
	return c.manyResult("set items", errs)
}

func (c *Cache) unprefixedKeys(entries []Entry) map[string]string {
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Key] = e.Key[len(c.prefix):]
	}
	return m
}

// SetEntries writes through the breaker; it is there so that a guarded
// Batcher stays one. The guarded backend must be a Batcher.
func (br *Breaker) SetEntries(ctx context.Context, entries []Entry) error {
	b, ok := br.b.(Batcher)
	if !ok {
		return fmt.Errorf("backends: %T is not a Batcher", br.b)
	}
	return br.do(ctx, func() error { return b.SetEntries(ctx, entries) })
}

// SetEntries writes through the observer, reported as one OpSetMany, so
// that an observed Batcher stays one. The wrapped backend must be a
// Batcher.
func (ob *observed) SetEntries(ctx context.Context, entries []Entry) error {
	b, ok := ob.b.(Batcher)
	if !ok {
		return fmt.Errorf("backends: %T is not a Batcher", ob.b)
	}
	began := time.Now()
	err := b.SetEntries(ctx, entries)
	ob.done(ctx, OpSetMany, began, err)
	return err
}
