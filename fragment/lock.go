package fragment

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/fragcache/fragcache/internal/xfetch"
)

// With Options.Lock, a cold fragment is rendered once across every process
// sharing the backend, not once per process: the render that misses first
// (per process, the one the flight lets through) takes a short lock on the
// fragment's key with the backend's atomic Add (Redis SET NX PX, memcached
// add), renders, stores, and deletes the lock. A render that finds the lock
// taken waits for the fragment to appear, polling the key and the lock in
// one GetMany round trip every 5 ms doubling to 50 ms, and serves it; it
// stops waiting and renders itself when the lock disappears without a
// fragment (its holder failed), when Options.LockWait passes, or when its
// context ends. A refresh of a stale fragment does not wait: it serves the
// stale copy while another process holds the lock. The lock expires after
// Options.Lock, so a holder that crashed blocks nobody for longer; a
// render that outlives its lock may see another process render too, and
// its delete may remove that process's lock (the Backend API has no
// compare-and-delete), costing at most one more render. The lock of key k
// is stored under "fragcache-lock:" + k, which no fragment key starts with.

// lockPrefix starts every lock key.
const lockPrefix = "fragcache-lock:"

// lockPoll bounds the interval between two looks at a locked key.
const (
	lockPollFirst = 5 * time.Millisecond
	lockPollMax   = 50 * time.Millisecond
)

func lockKey(key string) string { return lockPrefix + key }

// lock tries to take key's render lock. It reports false when another
// process holds it; a backend error counts as taken by nobody, so that
// the render goes on (fail-open).
func (c *Cache) lock(ctx context.Context, key string) (held, taken bool) {
	var b [9]byte
	_, _ = rand.Read(b[:])
	added, err := c.store.Add(ctx, lockKey(key), base64.RawURLEncoding.EncodeToString(b[:]), c.opts.Lock)
	if err != nil {
		return false, false
	}
	return added, !added
}

// unlock deletes key's render lock, on a context detached from ctx's
// cancellation and bounded by StoreTimeout: the lock must go even when the
// request did. As with the store before it, the request waits for the
// delete only until its own ctx ends; the delete goes on in the
// background.
func (c *Cache) unlock(ctx context.Context, key string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.StoreTimeout)
	if ctx.Done() == nil { // nothing to detach from: no goroutine needed
		defer cancel()
		_, _ = c.store.Delete(dctx, lockKey(key))
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		_, _ = c.store.Delete(dctx, lockKey(key))
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// waitForOther waits, while another process holds key's lock, for the
// fragment it renders; ok is false when the wait ended without one.
func (c *Cache) waitForOther(ctx context.Context, key string) (frag []byte, ok bool) {
	c.lockWaits.Add(1)
	until := time.Now().Add(c.opts.LockWait)
	interval := lockPollFirst
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false
		case <-timer.C:
		}
		vals, err := c.store.GetMany(ctx, key, lockKey(key))
		if err != nil {
			return nil, false
		}
		if f, m, found := c.fragmentOf(vals[0]); found && m.freshness(0) != xfetch.Stale {
			return append([]byte(nil), f...), true
		}
		if !vals[1].Found() || time.Now().After(until) {
			return nil, false
		}
		interval = min(2*interval, lockPollMax)
		timer.Reset(interval)
	}
}
