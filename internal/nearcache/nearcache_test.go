package nearcache

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newCache(t *testing.T, opt Options) *Cache {
	t.Helper()
	c := New(opt)
	t.Cleanup(c.Close)
	return c
}

func put(t *testing.T, c *Cache, key, value string) {
	t.Helper()
	ticket, ok := c.Begin()
	require.True(t, ok)
	require.True(t, c.Put(key, []byte(value), 0, ticket), "Put %q", key)
}

func TestGetPut(t *testing.T) {
	c := newCache(t, Options{})
	_, ok := c.Get("a")
	assert.False(t, ok)
	put(t, c, "a", "1")
	put(t, c, "empty", "")
	v, ok := c.Get("a")
	require.True(t, ok)
	assert.Equal(t, "1", string(v))
	v, ok = c.Get("empty")
	require.True(t, ok, "an empty value is a hit")
	assert.NotNil(t, v)
	put(t, c, "a", "22")
	v, _ = c.Get("a")
	assert.Equal(t, "22", string(v))

	ticket, _ := c.Begin()
	assert.False(t, c.Put("nil", nil, 0, ticket), "nil is a miss, not a value")
	assert.False(t, c.Put("neg", []byte("x"), -time.Second, ticket))

	st := c.Stats()
	assert.Equal(t, 2, st.Entries)
	assert.Equal(t, int64(len("a")+len("22")+len("empty")+2*EntryOverhead), st.Bytes)
	assert.Equal(t, uint64(3), st.Hits)
	assert.Equal(t, uint64(1), st.Misses)
}

func TestGetManySplitsHitsAndMisses(t *testing.T) {
	c := newCache(t, Options{})
	put(t, c, "a", "1")
	put(t, c, "c", "3")
	put(t, c, "x:d", "4")
	keys := []string{"a", "b", "c", "x:d"}
	tests := []struct {
		name     string
		covers   func(string) bool
		wantOut  []string // "" for nil
		wantMiss []int
	}{
		{"every key covered", nil, []string{"1", "", "3", "4"}, []int{1}},
		{"uncovered keys miss without a lookup", func(k string) bool { return k[0] != 'x' }, []string{"1", "", "3", ""}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, miss := c.GetMany(keys, tt.covers)
			require.Len(t, out, len(keys))
			for i, want := range tt.wantOut {
				if want == "" {
					assert.Nil(t, out[i], keys[i])
				} else {
					assert.Equal(t, want, string(out[i]), keys[i])
				}
			}
			assert.Equal(t, tt.wantMiss, miss)
		})
	}
}

// TestSequence is the rule that keeps a read racing an invalidation from
// putting back a stale value: a Put whose ticket predates an Invalidate of
// its key, or a Flush, is dropped; one whose ticket came after is kept.
func TestSequence(t *testing.T) {
	for _, tc := range []struct {
		name     string
		between  func(c *Cache) // runs between Begin and Put
		kept     bool
		afterNew bool // a ticket taken after between is kept
	}{
		{"nothing", func(c *Cache) {}, true, true},
		{"invalidate same key", func(c *Cache) { c.Invalidate("k") }, false, true},
		{"invalidate other key", func(c *Cache) { c.Invalidate(otherSlotKey(c, "k")) }, true, true},
		{"flush", func(c *Cache) { c.Flush() }, false, true},
		{"disable", func(c *Cache) { c.Disable() }, false, false},
		{"disable enable", func(c *Cache) { c.Disable(); c.Enable() }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, Options{})
			put(t, c, "k", "old")
			ticket, ok := c.Begin()
			require.True(t, ok)
			tc.between(c)
			assert.Equal(t, tc.kept, c.Put("k", []byte("new"), 0, ticket))
			v, hit := c.Get("k")
			if tc.kept {
				assert.True(t, hit)
				assert.Equal(t, "new", string(v))
			}
			if !tc.kept {
				assert.False(t, hit, "the old value went with the invalidation, the raced fill was dropped")
				assert.Equal(t, uint64(1), c.Stats().DroppedFills)
			}
			ticket, ok = c.Begin()
			assert.Equal(t, tc.afterNew, ok)
			if ok {
				assert.True(t, c.Put("k", []byte("newer"), 0, ticket))
			}
		})
	}
}

// otherSlotKey returns a key whose invalidation slot differs from key's.
func otherSlotKey(c *Cache, key string) string {
	_, h := c.shardOf(key)
	for i := 0; ; i++ {
		k := "other" + strconv.Itoa(i)
		if _, h2 := c.shardOf(k); h2&c.mask != h&c.mask || slot(h2) != slot(h) {
			return k
		}
	}
}

func TestInvalidateRemoves(t *testing.T) {
	c := newCache(t, Options{})
	put(t, c, "a", "1")
	put(t, c, "b", "2")
	c.Invalidate("a")
	_, ok := c.Get("a")
	assert.False(t, ok)
	_, ok = c.Get("b")
	assert.True(t, ok)
	c.Flush()
	_, ok = c.Get("b")
	assert.False(t, ok)
	st := c.Stats()
	assert.Zero(t, st.Entries)
	assert.Zero(t, st.Bytes)
	assert.Equal(t, uint64(1), st.Invalidations)
}

func TestBoundEntries(t *testing.T) {
	for _, max := range []int{1, 10, 100, 5000} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			c := newCache(t, Options{MaxEntries: max})
			for i := range 3 * max {
				put(t, c, "k"+strconv.Itoa(i), "v")
				require.LessOrEqual(t, c.Stats().Entries, max)
			}
			st := c.Stats()
			assert.Greater(t, st.Entries, max/2, "shards fill to their share")
			assert.Equal(t, uint64(3*max-st.Entries), st.Evictions)
		})
	}
}

func TestBoundBytes(t *testing.T) {
	const maxBytes = 64 << 10
	c := newCache(t, Options{MaxBytes: maxBytes})
	value := make([]byte, 1000)
	for i := range 1000 {
		ticket, _ := c.Begin()
		c.Put("k"+strconv.Itoa(i), value, 0, ticket)
		require.LessOrEqual(t, c.Stats().Bytes, int64(maxBytes))
	}
	assert.Greater(t, c.Stats().Bytes, int64(maxBytes/2))

	ticket, _ := c.Begin()
	assert.False(t, c.Put("big", make([]byte, c.MaxEntryBytes()), 0, ticket), "larger than a shard's share")
	fits := int(c.MaxEntryBytes()) - len("fits") - EntryOverhead
	assert.True(t, c.Put("fits", make([]byte, fits), 0, ticket))
	assert.LessOrEqual(t, c.Stats().Bytes, int64(maxBytes))
}

// TestClock: with one shard, an entry read since the hand last passed
// survives the eviction of one that was not.
func TestClock(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 3})
	require.Len(t, c.shards, 1)
	put(t, c, "a", "1")
	put(t, c, "b", "2")
	put(t, c, "c", "3")
	// Every entry starts unread; the first eviction takes a.
	put(t, c, "d", "4")
	_, ok := c.Get("a")
	require.False(t, ok)
	_, ok = c.Get("b")
	require.True(t, ok)
	put(t, c, "e", "5") // b was read: c goes
	_, ok = c.Get("b")
	assert.True(t, ok)
	_, ok = c.Get("c")
	assert.False(t, ok)
}

func TestTTL(t *testing.T) {
	c := newCache(t, Options{})
	ticket, _ := c.Begin()
	require.True(t, c.Put("short", []byte("v"), 20*time.Millisecond, ticket))
	require.True(t, c.Put("long", []byte("v"), time.Hour, ticket))
	require.Eventually(t, func() bool { _, ok := c.Get("short"); return !ok }, 10*time.Second, 5*time.Millisecond)
	_, ok := c.Get("long")
	assert.True(t, ok)
}

func TestTTLCap(t *testing.T) {
	c := newCache(t, Options{TTL: 20 * time.Millisecond})
	ticket, _ := c.Begin()
	require.True(t, c.Put("forever", []byte("v"), 0, ticket))
	require.True(t, c.Put("hour", []byte("v"), time.Hour, ticket))
	require.Eventually(t, func() bool {
		_, a := c.Get("forever")
		_, b := c.Get("hour")
		return !a && !b
	}, 10*time.Second, 5*time.Millisecond)
}

func TestClose(t *testing.T) {
	c := New(Options{})
	put(t, c, "a", "1")
	c.Close()
	c.Close()
	_, ok := c.Get("a")
	assert.False(t, ok)
	_, ok = c.Begin()
	assert.False(t, ok)
}

// TestRaceInvalidation models a server and its invalidation stream: writers
// store a new version then invalidate; readers fill from the server through
// Begin/Put. Once a writer's invalidation has returned, no Get may return a
// version older than the one it wrote.
func TestRaceInvalidation(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 64})
	const keys = 8
	var (
		mu      sync.Mutex
		server  [keys]int
		visible [keys]atomic.Int64 // versions whose invalidation has returned
		stop    atomic.Bool
		wg      sync.WaitGroup
		fails   atomic.Int64
		hits    atomic.Int64
	)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := (i + w) % keys
				mu.Lock()
				server[k]++
				v := server[k]
				mu.Unlock()
				c.Invalidate(strconv.Itoa(k))
				for {
					old := visible[k].Load()
					if int64(v) <= old || visible[k].CompareAndSwap(old, int64(v)) {
						break
					}
				}
				if i%1000 == 999 {
					c.Flush()
				}
			}
		}()
	}
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := (i*7 + r) % keys
				key := strconv.Itoa(k)
				floor := visible[k].Load()
				if v, ok := c.Get(key); ok {
					hits.Add(1)
					n, _ := strconv.Atoi(string(v))
					if int64(n) < floor {
						fails.Add(1)
					}
					continue
				}
				ticket, ok := c.Begin()
				mu.Lock()
				n := server[k]
				mu.Unlock()
				if ok {
					c.Put(key, []byte(strconv.Itoa(n)), 0, ticket)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, fails.Load(), "stale values served after their invalidation")
	assert.Positive(t, hits.Load())
	t.Logf("stats: %+v", c.Stats())
}

// TestRaceBounds runs Put, Get, Invalidate and Flush concurrently over a
// small cache and checks its accounting afterwards.
func TestRaceBounds(t *testing.T) {
	c := newCache(t, Options{MaxEntries: 200, MaxBytes: 32 << 10})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				key := fmt.Sprintf("k%d", (i*31+g)%700)
				switch i % 10 {
				case 0:
					c.Invalidate(key)
				case 1:
					if g == 0 && i%1000 == 1 {
						c.Flush()
					}
				case 2, 3, 4:
					ticket, _ := c.Begin()
					c.Put(key, make([]byte, i%300), 0, ticket)
				default:
					c.Get(key)
				}
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	assert.LessOrEqual(t, st.Entries, 200)
	assert.LessOrEqual(t, st.Bytes, int64(32<<10))
	var entries int
	var bytes int64
	for i := range c.shards {
		s := &c.shards[i]
		require.Len(t, s.ring, len(s.m))
		for j, e := range s.ring {
			require.Equal(t, j, e.idx)
			require.Same(t, e, s.m[e.key])
			bytes += e.size
		}
		entries += len(s.m)
	}
	assert.Equal(t, st.Entries, entries)
	assert.Equal(t, st.Bytes, bytes)
}
