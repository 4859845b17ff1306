package fragment

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// slowDeletes is a backend whose deletes hang until their context ends, as
// a Redis or memcached that stops answering does (honouring ctx).
type slowDeletes struct {
	backends.Backend
	deletes atomic.Int64
}

func (s *slowDeletes) Delete(ctx context.Context, key string) (bool, error) {
	s.deletes.Add(1)
	<-ctx.Done()
	return false, ctx.Err()
}

// TestAttackUnlockHoldsTheRequestPastItsDeadline: with Options.Lock, the
// render that took the lock deletes it when it is done, on a context
// detached from the request's and bounded by StoreTimeout, and it waits for
// that delete. The store right before it gives up waiting when the request's
// context ends (storeDetached), but the unlock does not: a backend that
// stops answering after the lock was taken holds every such request
// StoreTimeout past its deadline. The unlock should go on in the
// background, as the store does.
func TestAttackUnlockHoldsTheRequestPastItsDeadline(t *testing.T) {
	back := &slowDeletes{Backend: backends.NewSimple(0)}
	store := backends.New(back, backends.CacheOptions{})
	c := New(store, Options{Lock: 10 * time.Second, StoreTimeout: 5 * time.Second})
	body, _ := countingBody("fragment")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	began := time.Now()
	err := c.Render(ctx, Call{Site: testSite(), Timeout: 60, Name: "locked"}, &out, body)
	took := time.Since(began)
	require.NoError(t, err)
	assert.Equal(t, "fragment", out.String())
	require.EqualValues(t, 1, back.deletes.Load(), "the lock was taken and released")
	// The deadline is 100 ms; 2.5 s is far beyond any scheduling delay and
	// half of StoreTimeout.
	assert.Less(t, took, 2500*time.Millisecond, "Render returned %v after its 100 ms deadline", took)
}
