package backends

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// simpleClock is a stopped clock for Simple.now, so tests move time
// instead of sleeping.
type simpleClock struct{ ns atomic.Int64 }

func (c *simpleClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newSimpleWithClock(threshold int, eviction ...Eviction) (*Simple, *simpleClock) {
	opts := SimpleOptions{Threshold: threshold}
	if len(eviction) > 0 {
		opts.Eviction = eviction[0]
	}
	s := NewSimpleWithOptions(opts)
	s.noCoarse = true // the coarse clock would read real time
	c := &simpleClock{}
	c.ns.Store(1) // Simple's clock never reads 0
	s.now = c.ns.Load
	return s, c
}

// simpleLiveKeys returns which of keys hold a live entry, sorted.
func simpleLiveKeys(t *testing.T, s *Simple, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		ok, err := s.Has(context.Background(), k)
		require.NoError(t, err)
		if ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// checkSimpleInvariants verifies Simple's bookkeeping: the table, the
// write-order ring and the TTL class rings hold the same entries; each class
// ring is in write order and therefore expiry order; heads lists each class
// once; the count and the threshold hold; the table's own counts add up.
func checkSimpleInvariants(t *testing.T, s *Simple) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	tab := s.table.Load()
	inTable := map[*simpleEntry]bool{}
	used, tombstones := 0, 0
	for bi := range tab.buckets {
		b := &tab.buckets[bi]
		ctrl := b.ctrl.Load()
		require.Equal(t, uint64(ctrlDeleted), ctrlByte(ctrl, 7), "bucket %d padding byte", bi)
		for j := range bucketSlots {
			e := b.slots[j].Load()
			switch c := ctrlByte(ctrl, j); c {
			case ctrlEmpty, ctrlDeleted:
				require.Nil(t, e, "bucket %d slot %d is free but holds an entry", bi, j)
				if c == ctrlDeleted {
					tombstones++
				}
			default:
				require.NotNil(t, e)
				key := e.load().key
				h := s.hash(key)
				require.Equal(t, tagOf(h), c, "slot tag of %q", key)
				found, _ := tab.find(key, h)
				require.Same(t, e, found, "%q is found where it is", key)
				require.Equal(t, slot{uint64(bi), j}.pos(), e.pos, "%q knows where it is", e.load().key)
				inTable[e] = true
				used++
			}
		}
	}
	require.Equal(t, s.n, len(inTable), "count")
	require.Equal(t, tombstones, tab.tombstones)
	require.Equal(t, len(tab.buckets)*bucketSlots*7/8-used-tombstones, tab.growthLeft)

	position := map[*simpleEntry]int{} // in the write order, for EvictFIFO
	inQueue := func(ring *simpleEntry, queue uint32) int {
		n := 0
		for e := ring.qnext; e != ring; e = e.qnext {
			require.Same(t, e, e.qnext.qprev)
			require.True(t, inTable[e], "%q in a queue is in the table", e.load().key)
			_, dup := position[e]
			require.False(t, dup, "%q is in one queue once", e.load().key)
			position[e] = len(position)
			if queue != 0 {
				require.Equal(t, queue, e.meta.Load()&metaQueue, "%q's queue bits", e.load().key)
			}
			n++
		}
		return n
	}
	if p := s.lfu; p != nil {
		require.Equal(t, p.windowLen, inQueue(&p.window, inWindow), "window length")
		require.Equal(t, p.probationLen, inQueue(&p.probation, inProbation), "probation length")
		require.Equal(t, p.protectedLen, inQueue(&p.protected, inProtected), "protected length")
		require.LessOrEqual(t, p.windowLen, p.windowMax)
		require.LessOrEqual(t, p.protectedLen, p.protectedMax)
		require.Equal(t, &s.order, s.order.qnext, "the write order is unused")
		require.Len(t, position, s.n, "every entry is in a queue")
		clear(position) // queue order is not write order
	} else {
		inQueue(&s.order, 0)
		require.Len(t, position, s.n, "every entry is in the write order")
	}

	require.Len(t, s.heads, len(s.classes))
	seen := 0
	for _, c := range s.heads {
		require.Same(t, c, s.classes[c.ttl], "class %v is in the map", c.ttl)
		var prev *simpleEntry
		for e := c.ring.next; e != &c.ring; e = e.next {
			require.Same(t, e, e.next.prev)
			require.True(t, inTable[e], "%q of class %v is in the table", e.load().key, c.ttl)
			if prev != nil && s.lfu == nil {
				require.Less(t, position[prev], position[e], "class %v is in write order", c.ttl)
				require.LessOrEqual(t, prev.expires.Load(), e.expires.Load(), "class %v is in expiry order", c.ttl)
			}
			prev = e
			seen++
		}
	}
	require.Equal(t, s.n, seen, "every entry is in a class")
	if s.threshold > 0 {
		require.LessOrEqual(t, s.n, s.threshold)
	}
}

type simpleWrite struct {
	key string
	ttl time.Duration
}

func TestSimpleEvictsAnExpiredEntryElseTheOldestWrite(t *testing.T) {
	const sec = time.Second
	tests := []struct {
		name    string
		writes  []simpleWrite
		advance time.Duration // after the writes, before the insert
		want    []string      // live keys after inserting "new"
	}{
		{
			// Flask sorts by expiry with 0 first, so it evicts "forever".
			name:   "a never-expiring entry is not evicted before an older write",
			writes: []simpleWrite{{"long", 1000 * sec}, {"forever", 0}, {"short", 10 * sec}},
			want:   []string{"forever", "new", "short"},
		},
		{
			name:   "with nothing expired the oldest write goes, whatever its TTL",
			writes: []simpleWrite{{"forever", 0}, {"long", 1000 * sec}, {"short", 10 * sec}},
			want:   []string{"long", "new", "short"},
		},
		{
			// Flask's scenario: its _remove_expired also drops "forever"
			// (expires 0 < now).
			name:    "an expired entry goes before the oldest write",
			writes:  []simpleWrite{{"forever", 0}, {"long", 1000 * sec}, {"short", 10 * sec}},
			advance: 11 * sec,
			want:    []string{"forever", "long", "new"},
		},
		{
			name:    "an expired entry goes even if it is the newest write",
			writes:  []simpleWrite{{"forever", 0}, {"long", 1000 * sec}, {"short", sec}},
			advance: sec,
			want:    []string{"forever", "long", "new"},
		},
		{
			name:    "an expired entry in a list behind live TTL classes",
			writes:  []simpleWrite{{"a", 100 * sec}, {"b", 0}, {"c", 5 * sec}},
			advance: 6 * sec,
			want:    []string{"a", "b", "new"},
		},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newSimpleWithClock(len(tt.writes))
			for _, w := range tt.writes {
				require.NoError(t, s.Set(ctx, w.key, []byte(w.key), w.ttl))
				clock.advance(time.Millisecond) // distinct write times
			}
			clock.advance(tt.advance)
			require.NoError(t, s.Set(ctx, "new", []byte("new"), 0))
			checkSimpleInvariants(t, s)
			assert.Equal(t, len(tt.writes), s.Len(), "one entry made room")
			all := []string{"new"}
			for _, w := range tt.writes {
				all = append(all, w.key)
			}
			assert.Equal(t, tt.want, simpleLiveKeys(t, s, all...))
		})
	}
}

func TestSimpleHoldsExactlyThresholdEntries(t *testing.T) {
	ctx := context.Background()
	for _, threshold := range []int{1, 2, 3, 10, DefaultThreshold} {
		t.Run(fmt.Sprint(threshold), func(t *testing.T) {
			s, _ := newSimpleWithClock(threshold)
			var keys []string
			for i := range 3 * threshold {
				k := fmt.Sprint("k", i)
				keys = append(keys, k)
				require.NoError(t, s.Set(ctx, k, []byte(k), 0))
				require.Equal(t, min(i+1, threshold), s.Len(), "Flask would hold threshold+1")
			}
			checkSimpleInvariants(t, s)
			want := slices.Clone(keys[len(keys)-threshold:])
			slices.Sort(want)
			assert.Equal(t, want, simpleLiveKeys(t, s, keys...), "the newest writes stay")
		})
	}
}

func TestSimpleThresholdZeroIsUnlimited(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(0)
	const n = 10 * DefaultThreshold // Flask's SimpleCache turns 0 into 500
	for i := range n {
		require.NoError(t, s.Set(ctx, fmt.Sprint(i), []byte{1}, time.Hour))
	}
	assert.Equal(t, n, s.Len())
}

func TestSimpleEveryWayOfInsertingRespectsTheThreshold(t *testing.T) {
	ctx := context.Background()
	inserts := map[string]func(s *Simple, key string) error{
		"Set": func(s *Simple, k string) error { return s.Set(ctx, k, []byte(k), 0) },
		"Add": func(s *Simple, k string) error { _, err := s.Add(ctx, k, []byte(k), 0); return err },
		"SetMany": func(s *Simple, k string) error {
			return s.SetMany(ctx, map[string][]byte{k: []byte(k)}, 0)
		},
		"Inc": func(s *Simple, k string) error { _, err := s.Inc(ctx, k, 1, 0); return err },
	}
	for name, insert := range inserts {
		t.Run(name, func(t *testing.T) {
			s, clock := newSimpleWithClock(2)
			for _, k := range []string{"a", "b", "c"} {
				require.NoError(t, insert(s, k))
				clock.advance(time.Millisecond)
			}
			checkSimpleInvariants(t, s)
			assert.Equal(t, []string{"b", "c"}, simpleLiveKeys(t, s, "a", "b", "c"))
		})
	}
	t.Run("SetMany larger than the threshold", func(t *testing.T) {
		s, _ := newSimpleWithClock(2)
		require.NoError(t, s.SetMany(ctx, map[string][]byte{"a": {1}, "b": {2}, "c": {3}, "d": {4}}, 0))
		checkSimpleInvariants(t, s)
		assert.Equal(t, 2, s.Len())
	})
}

func TestSimpleOverwriteMakesAnEntryTheNewest(t *testing.T) {
	ctx := context.Background()
	overwrites := map[string]func(s *Simple) error{
		"Set with the same TTL":       func(s *Simple) error { return s.Set(ctx, "a", []byte("a2"), time.Hour) },
		"Set with another TTL":        func(s *Simple) error { return s.Set(ctx, "a", []byte("a2"), 0) },
		"SetMany":                     func(s *Simple) error { return s.SetMany(ctx, map[string][]byte{"a": []byte("a2")}, time.Hour) },
		"Add over an expired entry":   func(s *Simple) error { _, err := s.Add(ctx, "a", []byte("a2"), time.Hour); return err },
		"Inc of an expired entry":     func(s *Simple) error { _, err := s.Inc(ctx, "a", 1, time.Hour); return err },
		"Set after Delete of the key": func(s *Simple) error { _, _ = s.Delete(ctx, "a"); return s.Set(ctx, "a", []byte("a2"), time.Hour) },
	}
	for name, overwrite := range overwrites {
		t.Run(name, func(t *testing.T) {
			s, clock := newSimpleWithClock(3)
			require.NoError(t, s.Set(ctx, "a", []byte("a"), time.Second))
			require.NoError(t, s.Set(ctx, "b", []byte("b"), 0))
			require.NoError(t, s.Set(ctx, "c", []byte("c"), time.Hour))
			clock.advance(time.Second) // "a" expires; b and c stay live
			require.NoError(t, overwrite(s))
			require.NoError(t, s.Set(ctx, "d", []byte("d"), time.Hour))
			checkSimpleInvariants(t, s)
			assert.Equal(t, []string{"a", "c", "d"}, simpleLiveKeys(t, s, "a", "b", "c", "d"),
				"b is now the oldest write")
		})
	}
}

func TestSimpleIncKeepsPositionAndExpiry(t *testing.T) {
	ctx := context.Background()
	t.Run("position", func(t *testing.T) {
		s, clock := newSimpleWithClock(3)
		for _, k := range []string{"n", "b", "c"} {
			require.NoError(t, s.Set(ctx, k, []byte("1"), 0))
			clock.advance(time.Millisecond)
		}
		n, err := s.Inc(ctx, "n", 5, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, int64(6), n)
		require.NoError(t, s.Set(ctx, "d", []byte("1"), 0))
		checkSimpleInvariants(t, s)
		assert.Equal(t, []string{"b", "c", "d"}, simpleLiveKeys(t, s, "n", "b", "c", "d"), "n is still the oldest write")
	})
	t.Run("expiry", func(t *testing.T) {
		s, clock := newSimpleWithClock(0)
		require.NoError(t, s.Set(ctx, "n", []byte("1"), 10*time.Second))
		clock.advance(9 * time.Second)
		_, err := s.Inc(ctx, "n", 1, time.Hour) // the ttl is for a missing key only
		require.NoError(t, err)
		clock.advance(time.Second)
		ok, err := s.Has(ctx, "n")
		require.NoError(t, err)
		assert.False(t, ok, "the entry expires when it did before Inc")
	})
	t.Run("a missing key gets the given ttl", func(t *testing.T) {
		s, clock := newSimpleWithClock(0)
		n, err := s.Inc(ctx, "n", -2, time.Minute)
		require.NoError(t, err)
		assert.Equal(t, int64(-2), n)
		clock.advance(time.Minute - 1)
		ok, _ := s.Has(ctx, "n")
		assert.True(t, ok)
		clock.advance(1)
		ok, _ = s.Has(ctx, "n")
		assert.False(t, ok)
	})
	t.Run("a value that is not an integer is untouched", func(t *testing.T) {
		s, _ := newSimpleWithClock(0)
		require.NoError(t, s.Set(ctx, "n", []byte("sfive"), 0))
		_, err := s.Inc(ctx, "n", 1, 0)
		require.ErrorIs(t, err, ErrNotInteger)
		v, _, _ := s.Get(ctx, "n")
		assert.Equal(t, "sfive", string(v))
	})
}

func TestSimpleExpiryBoundary(t *testing.T) {
	ctx := context.Background()
	s, clock := newSimpleWithClock(0)
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 10*time.Second))
	clock.advance(10*time.Second - 1)
	_, found, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.True(t, found, "live until its expiry instant")
	clock.advance(1)
	_, found, _ = s.Get(ctx, "k")
	assert.False(t, found, "dead at its expiry instant")
	vals, err := s.GetMany(ctx, []string{"k"})
	require.NoError(t, err)
	assert.Nil(t, vals[0])
	assert.Equal(t, 1, s.Len(), "an expired entry occupies a slot until evicted or deleted")

	deleted, err := s.Delete(ctx, "k")
	require.NoError(t, err)
	assert.False(t, deleted, "an expired entry was not live")
	assert.Equal(t, 0, s.Len(), "but it is gone")
}

func TestSimpleNeverExpiringEntriesDoNotReadTheClockOnGet(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(0)
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
	s.now = func() int64 { panic("clock read") }
	assert.NotPanics(t, func() {
		_, _, _ = s.Get(ctx, "k")
		require.NoError(t, s.Set(ctx, "k", []byte("v2"), 0))
	})
}

func TestSimpleClearWithPrefixKeepsTheRestEvictable(t *testing.T) {
	ctx := context.Background()
	s, clock := newSimpleWithClock(4)
	for _, k := range []string{"x:1", "y:1", "x:2", "y:2"} {
		require.NoError(t, s.Set(ctx, k, []byte(k), time.Hour))
		clock.advance(time.Millisecond)
	}
	require.NoError(t, s.Clear(ctx, "x:"))
	checkSimpleInvariants(t, s)
	assert.Equal(t, []string{"y:1", "y:2"}, simpleLiveKeys(t, s, "x:1", "y:1", "x:2", "y:2"))
	for _, k := range []string{"z:1", "z:2", "z:3"} {
		require.NoError(t, s.Set(ctx, k, []byte(k), 0))
	}
	checkSimpleInvariants(t, s)
	assert.Equal(t, []string{"y:2", "z:1", "z:2", "z:3"}, simpleLiveKeys(t, s, "y:1", "y:2", "z:1", "z:2", "z:3"))
}

func TestSimpleClearEverythingThenRefill(t *testing.T) {
	ctx := context.Background()
	s, _ := newSimpleWithClock(2)
	require.NoError(t, s.Set(ctx, "a", []byte("a"), time.Hour))
	require.NoError(t, s.Set(ctx, "b", []byte("b"), 0))
	require.NoError(t, s.Clear(ctx, ""))
	assert.Equal(t, 0, s.Len())
	checkSimpleInvariants(t, s)
	for _, k := range []string{"c", "d", "e"} {
		require.NoError(t, s.Set(ctx, k, []byte(k), time.Minute))
	}
	checkSimpleInvariants(t, s)
	assert.Equal(t, []string{"d", "e"}, simpleLiveKeys(t, s, "a", "b", "c", "d", "e"))
}

func TestSimpleAfterCloseEveryOperationIsErrClosed(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(0)
	require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
	require.NoError(t, s.Close())
	assert.Equal(t, 0, s.Len(), "Close drops the entries")
	ops := map[string]func() error{
		"Get":        func() error { _, _, err := s.Get(ctx, "k"); return err },
		"GetMany":    func() error { _, err := s.GetMany(ctx, []string{"k"}); return err },
		"Set":        func() error { return s.Set(ctx, "k", []byte("v"), 0) },
		"SetMany":    func() error { return s.SetMany(ctx, map[string][]byte{"k": {1}}, 0) },
		"Add":        func() error { _, err := s.Add(ctx, "n", []byte("v"), 0); return err },
		"Delete":     func() error { _, err := s.Delete(ctx, "k"); return err },
		"DeleteMany": func() error { _, err := s.DeleteMany(ctx, []string{"k"}); return err },
		"Has":        func() error { _, err := s.Has(ctx, "k"); return err },
		"Inc":        func() error { _, err := s.Inc(ctx, "n", 1, 0); return err },
		"Clear":      func() error { return s.Clear(ctx, "") },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, op(), ErrClosed)
		})
	}
	assert.NoError(t, s.Close(), "closing twice is harmless")
}

// TestSimpleEvictionRuleUnderRandomOperations drives Simple with random
// writes, deletes and clock moves and checks every eviction against the
// rule: an expired entry if any existed, else the oldest write.
func TestSimpleEvictionRuleUnderRandomOperations(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const threshold = 16
	ttls := []time.Duration{0, time.Second, 5 * time.Second, time.Minute}
	s, clock := newSimpleWithClock(threshold)

	type modelEntry struct {
		written int
		expires int64 // 0 = never
	}
	model := map[string]modelEntry{} // what Simple holds, expired entries included
	evictions := 0
	for op := range 5000 {
		clock.advance(time.Duration(rng.IntN(300)) * time.Millisecond)
		now := clock.ns.Load()
		key := fmt.Sprint("k", rng.IntN(3*threshold))
		if rng.IntN(10) == 0 {
			_, err := s.Delete(ctx, key)
			require.NoError(t, err)
			delete(model, key)
			continue
		}
		var allowed []string // the entries the rule lets this insert evict
		if _, overwrite := model[key]; !overwrite && len(model) == threshold {
			oldest := ""
			for k, e := range model {
				if e.expires != 0 && now >= e.expires {
					allowed = append(allowed, k)
				}
				if oldest == "" || e.written < model[oldest].written {
					oldest = k
				}
			}
			if allowed == nil {
				allowed = []string{oldest}
			}
		}
		ttl := ttls[rng.IntN(len(ttls))]
		require.NoError(t, s.Set(ctx, key, []byte("v"), ttl))
		if allowed != nil {
			var gone []string
			for k := range model {
				if !simpleHolds(s, k) {
					gone = append(gone, k)
				}
			}
			require.Len(t, gone, 1, "op %d: one entry evicted", op)
			require.Contains(t, allowed, gone[0], "op %d", op)
			delete(model, gone[0])
			evictions++
		}
		e := modelEntry{written: op}
		if ttl > 0 {
			e.expires = now + int64(ttl)
		}
		model[key] = e
		require.Equal(t, len(model), s.Len())
	}
	checkSimpleInvariants(t, s)
	assert.Greater(t, evictions, 100, "the test exercised eviction")
}

// simpleHolds reports whether key has an entry, live or expired.
func simpleHolds(s *Simple, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.table.Load().find(key, s.hash(key))
	return e != nil
}

func TestSimpleConcurrentInsertsStayWithinTheThreshold(t *testing.T) {
	ctx := context.Background()
	const threshold = 50
	s := NewSimple(threshold)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := fmt.Sprint(g, ":", i)
				ttl := time.Duration(i%3) * time.Hour
				assert.NoError(t, s.Set(ctx, k, []byte(k), ttl))
				_, _, err := s.Get(ctx, fmt.Sprint(g, ":", i/2))
				assert.NoError(t, err)
				if i%7 == 0 {
					_, err = s.Delete(ctx, fmt.Sprint(g, ":", i-3))
					assert.NoError(t, err)
				}
			}
		})
	}
	wg.Wait()
	checkSimpleInvariants(t, s)
	assert.Equal(t, threshold, s.Len())
}

func TestSimpleHugeTTLDoesNotOverflowIntoThePast(t *testing.T) {
	ctx := context.Background()
	for _, ttl := range []time.Duration{math.MaxInt64, math.MaxInt64 / 2, 200 * 365 * 24 * time.Hour} {
		t.Run(ttl.String(), func(t *testing.T) {
			s, clock := newSimpleWithClock(0)
			clock.advance(time.Hour) // so that now+ttl overflows for the largest ttl
			require.NoError(t, s.Set(ctx, "k", []byte("v"), ttl))
			_, found, err := s.Get(ctx, "k")
			require.NoError(t, err)
			assert.True(t, found, "an entry with a TTL of %v is live right after the write", ttl)
		})
	}
}

// TestSimpleTableUnderRandomOperations drives the table through growth,
// tombstones and rebuilds with random sets and deletes of a key set much
// larger than the table's first size, and checks it against a map.
func TestSimpleTableUnderRandomOperations(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	s, _ := newSimpleWithClock(0)
	model := map[string]string{}
	tables := map[*simpleTable]bool{}
	sawTombstones := false
	for op := range 60_000 {
		k := fmt.Sprint("k", rng.IntN(6_000))
		if rng.IntN(3) == 0 {
			deleted, err := s.Delete(ctx, k)
			require.NoError(t, err)
			_, had := model[k]
			require.Equal(t, had, deleted, "op %d: Delete(%q)", op, k)
			delete(model, k)
		} else {
			v := fmt.Sprint(op)
			require.NoError(t, s.Set(ctx, k, []byte(v), 0))
			model[k] = v
		}
		tab := s.table.Load()
		tables[tab] = true
		sawTombstones = sawTombstones || tab.tombstones > 0
		if op%10_000 == 0 {
			checkSimpleInvariants(t, s)
		}
	}
	checkSimpleInvariants(t, s)
	require.Equal(t, len(model), s.Len())
	for i := range 6_000 {
		k := fmt.Sprint("k", i)
		v, found, err := s.Get(ctx, k)
		require.NoError(t, err)
		want, ok := model[k]
		require.Equal(t, ok, found, "Get(%q)", k)
		if ok {
			require.Equal(t, want, string(v), "Get(%q)", k)
		}
	}
	assert.Greater(t, len(tables), 3, "the table grew or was rebuilt")
	assert.True(t, sawTombstones, "deletes left tombstones")
}

// TestSimpleReadersDuringWrites reads keys that are always present, from
// several goroutines without locks, while a writer overwrites them, Incs
// them and churns other keys through growth, evictions and rebuilds. A read
// must always find the key and see a value written for that key.
func TestSimpleReadersDuringWrites(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		threshold int
		eviction  Eviction
	}{{0, EvictFIFO}, {300, EvictFIFO}, {300, EvictTinyLFU}} {
		threshold := tc.threshold
		t.Run(fmt.Sprint("threshold ", threshold, " ", tc.eviction), func(t *testing.T) {
			s := NewSimpleWithOptions(SimpleOptions{Threshold: threshold, Eviction: tc.eviction})
			const stable = 64
			stableKey := func(i int) string { return fmt.Sprint("stable:", i) }
			for i := range stable {
				require.NoError(t, s.Set(ctx, stableKey(i), []byte(stableKey(i)+"=0"), time.Hour))
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			var written atomic.Int64 // churn keys below it were written
			wg.Go(func() {
				// Churn keys come and go, and their entries are reused for
				// other keys: a hit must still be the key's own value.
				for n := 0; !stop.Load(); n++ {
					k := fmt.Sprint("churn:", int64(n)%max(written.Load(), 1))
					v, found, err := s.Get(ctx, k)
					if !assert.NoError(t, err) || found && !assert.Equal(t, k+"=v", string(v)) {
						return
					}
				}
			})
			for r := range 2 {
				wg.Go(func() {
					for n := 0; !stop.Load(); n++ {
						k := stableKey((n*7 + r) % stable)
						v, found, err := s.Get(ctx, k)
						if !assert.NoError(t, err) || !assert.True(t, found, "Get(%q) missed", k) ||
							!assert.True(t, strings.HasPrefix(string(v), k+"="), "Get(%q) = %q", k, v) {
							return
						}
						vals, err := s.GetMany(ctx, []string{k, "missing"})
						if !assert.NoError(t, err) || !assert.True(t, strings.HasPrefix(string(vals[0]), k+"="), "GetMany(%q) = %q", k, vals[0]) {
							return
						}
					}
				})
			}
			tables := map[*simpleTable]bool{}
			for i := range 4_000 {
				k := stableKey(i % stable)
				require.NoError(t, s.Set(ctx, k, []byte(fmt.Sprint(k, "=", i)), time.Hour))
				// The churn evicts the oldest writes; the stable keys stay
				// because each is rewritten every 64 iterations, long
				// before 300 younger writes pile up behind it (FIFO), and
				// is read far more often than any churn key (TinyLFU).
				require.NoError(t, s.Set(ctx, fmt.Sprint("churn:", i), []byte(fmt.Sprint("churn:", i, "=v")), time.Hour))
				written.Store(int64(i + 1))
				if threshold == 0 && i%3 == 0 {
					_, err := s.Delete(ctx, fmt.Sprint("churn:", i-1))
					require.NoError(t, err)
				}
				tables[s.table.Load()] = true
			}
			stop.Store(true)
			wg.Wait()
			checkSimpleInvariants(t, s)
			if threshold == 0 {
				assert.Greater(t, len(tables), 3, "readers ran across table swaps")
			}
		})
	}
}

func TestSimpleCoarseClock(t *testing.T) {
	ctx := context.Background()
	type reading struct {
		coarse, precise int64
	}
	const ttl = 10 * time.Second
	tests := []struct {
		name         string
		at           reading // clock readings at the Get; the entry was written at 1
		want         bool    // found
		readsPrecise bool
	}{
		{"far from expiry the coarse clock decides", reading{1, 1}, true, false},
		{"within the margin the precise clock decides: live", reading{int64(ttl - coarseMargin/2), int64(ttl - 1)}, true, true},
		{"within the margin the precise clock decides: expired", reading{int64(ttl - coarseMargin/2), int64(ttl + 1)}, false, true},
		{"the lagging coarse clock past expiry proves it", reading{int64(ttl + 1), int64(ttl + 1)}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newSimpleWithClock(0)
			require.NoError(t, s.Set(ctx, "k", []byte("v"), ttl))
			c := &coarseClock{done: make(chan struct{})}
			c.now.Store(tt.at.coarse)
			s.coarse.Store(c)
			clock.ns.Store(tt.at.precise)
			var preciseReads atomic.Int64
			s.now = func() int64 { preciseReads.Add(1); return clock.ns.Load() }
			_, found, err := s.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, tt.want, found)
			assert.Equal(t, tt.readsPrecise, preciseReads.Load() > 0, "read the precise clock")
		})
	}
}

func TestSimpleCoarseClockRunsOnlyWithExpiringEntriesAndStops(t *testing.T) {
	ctx := context.Background()
	t.Run("not started by entries that never expire", func(t *testing.T) {
		s := NewSimple(0)
		require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
		assert.Nil(t, s.coarse.Load())
	})
	t.Run("follows the precise clock and stops at Close", func(t *testing.T) {
		s := NewSimple(0)
		require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Hour))
		c := s.coarse.Load()
		require.NotNil(t, c)
		first := c.now.Load()
		require.Eventually(t, func() bool { return c.now.Load() > first }, 30*time.Second, coarseTick/4, "the clock moves")
		assert.LessOrEqual(t, c.now.Load(), s.now(), "never ahead of the precise clock")
		require.NoError(t, s.Close())
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("Close did not stop the clock goroutine")
		}
	})
	t.Run("stops when the cache is garbage", func(t *testing.T) {
		var exited chan struct{} // does not keep the clock reachable: the clock refers to it, not back
		func() {
			s := NewSimple(0)
			require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Hour))
			exited = s.coarse.Load().exited
		}()
		require.Eventually(t, func() bool {
			runtime.GC()
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}, 30*time.Second, coarseTick, "the clock goroutine of a dropped cache exits")
	})
}

func TestSimpleGetNeverLetsAnAppendWriteIntoTheStore(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(0)
	buf := make([]byte, 2, 16)
	copy(buf, "ab")
	require.NoError(t, s.Set(ctx, "k", buf, 0))
	v, _, err := s.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, len(v), cap(v))
	_ = append(v, 'X')
	v2, _, _ := s.Get(ctx, "k")
	assert.Equal(t, "ab", string(v2))

	require.NoError(t, s.Set(ctx, "empty", []byte{}, 0))
	v, found, err := s.Get(ctx, "empty")
	require.NoError(t, err)
	assert.True(t, found)
	assert.NotNil(t, v, "a found empty value is not nil")
}

func TestSimpleGetDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(DefaultThreshold)
	require.NoError(t, s.Set(ctx, "forever", []byte("v"), 0))
	require.NoError(t, s.Set(ctx, "expiring", []byte("v"), time.Hour))
	c := New(s, CacheOptions{}) // a key prefix costs Cache one concatenation per call
	require.NoError(t, c.Set(ctx, "frag", "<p>"))
	for _, key := range []string{"forever", "expiring", "missing"} {
		assert.Zero(t, testing.AllocsPerRun(100, func() { _, _, _ = s.Get(ctx, key) }), "Get(%q)", key)
	}
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		v, _ := c.GetValue(ctx, "frag")
		_, _ = v.Bytes()
	}), "Cache.GetValue")
}

func TestSimpleTinyLFUHoldsExactlyThresholdEntries(t *testing.T) {
	ctx := context.Background()
	for _, threshold := range []int{1, 2, 3, 10, 150, DefaultThreshold} {
		t.Run(fmt.Sprint(threshold), func(t *testing.T) {
			s := NewSimpleWithOptions(SimpleOptions{Threshold: threshold, Eviction: EvictTinyLFU})
			for i := range 5 * threshold {
				k := fmt.Sprint("k", i)
				if i%3 == 0 {
					_, err := s.Add(ctx, k, []byte(k), 0)
					require.NoError(t, err)
				} else {
					require.NoError(t, s.Set(ctx, k, []byte(k), time.Hour))
				}
				_, _, _ = s.Get(ctx, fmt.Sprint("k", i/2)) // reads move entries between queues
				require.Equal(t, min(i+1, threshold), s.Len())
			}
			checkSimpleInvariants(t, s)
		})
	}
}

// TestSimpleTinyLFUEvictionUnderRandomOperations drives TinyLFU with random
// reads, writes, Incs, deletes and clock moves, and checks that an insert
// into a full cache evicts exactly one entry, an expired one whenever one
// existed, and that every value read is the one last written.
func TestSimpleTinyLFUEvictionUnderRandomOperations(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	const threshold = 40
	ttls := []time.Duration{0, time.Second, 5 * time.Second, time.Minute}
	s, clock := newSimpleWithClock(threshold, EvictTinyLFU)

	type modelEntry struct {
		value   string
		expires int64
	}
	model := map[string]modelEntry{}
	evictions := 0
	for op := range 20_000 {
		clock.advance(time.Duration(rng.IntN(100)) * time.Millisecond)
		now := clock.ns.Load()
		key := fmt.Sprint("k", int(float64(3*threshold)*rng.Float64()*rng.Float64())) // skewed
		switch r := rng.IntN(20); {
		case r < 10:
			v, found, err := s.Get(ctx, key)
			require.NoError(t, err)
			m, ok := model[key]
			live := ok && (m.expires == 0 || now < m.expires)
			require.Equal(t, live, found, "op %d: Get(%q)", op, key)
			if found {
				require.Equal(t, m.value, string(v), "op %d: Get(%q)", op, key)
			}
			continue
		case r == 10:
			_, err := s.Delete(ctx, key)
			require.NoError(t, err)
			delete(model, key)
			continue
		}
		var expired []string
		_, overwrite := model[key]
		if !overwrite && len(model) == threshold {
			for k, e := range model {
				if e.expires != 0 && now >= e.expires {
					expired = append(expired, k)
				}
			}
		}
		ttl := ttls[rng.IntN(len(ttls))]
		val := fmt.Sprint(op)
		require.NoError(t, s.Set(ctx, key, []byte(val), ttl))
		if !overwrite && len(model) == threshold {
			var gone []string
			for k := range model {
				if !simpleHolds(s, k) {
					gone = append(gone, k)
				}
			}
			require.Len(t, gone, 1, "op %d: one entry evicted", op)
			if expired != nil {
				require.Contains(t, expired, gone[0], "op %d: an expired entry goes first", op)
			}
			delete(model, gone[0])
			evictions++
		}
		e := modelEntry{value: val}
		if ttl > 0 {
			e.expires = now + int64(ttl)
		}
		model[key] = e
		require.Equal(t, len(model), s.Len())
		if op%1000 == 0 {
			checkSimpleInvariants(t, s)
		}
	}
	checkSimpleInvariants(t, s)
	assert.Greater(t, evictions, 500, "the test exercised eviction")
}

// TestSimpleTinyLFUKeepsFrequentEntriesThroughAScan is the point of the
// policy: entries read often survive a scan of many keys read once, which
// flushes a FIFO cache completely.
func TestSimpleTinyLFUKeepsFrequentEntriesThroughAScan(t *testing.T) {
	ctx := context.Background()
	const threshold, hot = 200, 50
	for _, tc := range []struct {
		eviction Eviction
		minKept  int
	}{{EvictFIFO, 0}, {EvictTinyLFU, hot * 9 / 10}} {
		t.Run(string(tc.eviction), func(t *testing.T) {
			s := NewSimpleWithOptions(SimpleOptions{Threshold: threshold, Eviction: tc.eviction})
			for i := range hot {
				require.NoError(t, s.Set(ctx, fmt.Sprint("hot", i), []byte("v"), 0))
			}
			for range 8 {
				for i := range hot {
					_, _, err := s.Get(ctx, fmt.Sprint("hot", i))
					require.NoError(t, err)
				}
			}
			for i := range 10 * threshold {
				require.NoError(t, s.Set(ctx, fmt.Sprint("scan", i), []byte("v"), 0))
			}
			kept := 0
			for i := range hot {
				if simpleHolds(s, fmt.Sprint("hot", i)) {
					kept++
				}
			}
			checkSimpleInvariants(t, s)
			if tc.eviction == EvictFIFO {
				assert.Zero(t, kept, "FIFO keeps none: this scan does flush a cache")
			} else {
				assert.GreaterOrEqual(t, kept, tc.minKept, "hot entries kept through the scan")
			}
		})
	}
}

func TestNewSimpleWithOptionsRejectsAnUnknownEviction(t *testing.T) {
	assert.PanicsWithValue(t, `backends.NewSimpleWithOptions: unknown Eviction "lru"`, func() {
		NewSimpleWithOptions(SimpleOptions{Threshold: 10, Eviction: "lru"})
	})
	assert.Nil(t, NewSimpleWithOptions(SimpleOptions{Eviction: EvictTinyLFU}).lfu, "unbounded: no policy to run")
}

func TestOpenSimpleCacheEvictionOption(t *testing.T) {
	tests := []struct {
		options map[string]any
		want    bool   // TinyLFU
		err     string // part of the error, "" for none
	}{
		{nil, false, ""},
		{map[string]any{"eviction": "fifo"}, false, ""},
		{map[string]any{"eviction": "tinylfu"}, true, ""},
		{map[string]any{"eviction": "TinyLFU"}, false, `CACHE_OPTIONS eviction: got TinyLFU (string), want "fifo" or "tinylfu"`},
		{map[string]any{"eviction": 1}, false, "CACHE_OPTIONS eviction: got 1 (int)"},
		{map[string]any{"evict": "tinylfu"}, false, `CACHE_OPTIONS key "evict" is not an option of SimpleCache (accepted: eviction)`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.options), func(t *testing.T) {
			c, err := Open(Config{Type: "SimpleCache", Threshold: 10, Options: tt.options})
			if tt.err != "" {
				require.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			s := c.Backend().(*Simple)
			assert.Equal(t, 10, s.threshold)
			assert.Equal(t, tt.want, s.lfu != nil, "TinyLFU in use")
		})
	}
}

// TestSimpleEntryReadsAreNeverTorn rewrites one entry as fast as it can,
// alternating between two keys and their values (as eviction reuses an
// entry for another key), while readers load it: each reading must pair a
// key with its own value and expiry.
func TestSimpleEntryReadsAreNeverTorn(t *testing.T) {
	e := &simpleEntry{}
	writes := []struct {
		key     string
		value   []byte
		expires int64
	}{{"a", []byte("value of a"), 1}, {"bb", []byte("b's"), 2}}
	e.store(writes[0].key, writes[0].value, writes[0].expires)
	var stop atomic.Bool
	writer := make(chan struct{})
	go func() {
		defer close(writer)
		for i := 0; !stop.Load(); i++ {
			w := writes[i%2]
			e.store(w.key, w.value, w.expires)
		}
	}()
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for range 20_000 {
				st := e.load()
				i := 0
				if st.key != writes[0].key {
					i = 1
				}
				if !assert.Equal(t, writes[i].key, st.key) || !assert.Equal(t, string(writes[i].value), string(st.bytes())) ||
					!assert.Equal(t, writes[i].expires, st.expires) {
					return
				}
			}
		})
	}
	readers.Wait()
	stop.Store(true)
	<-writer
}

// Clear keeps what refilling the cache would rebuild: a table with room
// for as many entries as it held (up to the initial size), and its TTL
// classes, emptied. A page cleared and rendered again then costs its
// entries, not a table rebuild and a class per TTL.
func TestSimpleClearKeepsRoomForARefill(t *testing.T) {
	ctx := context.Background()
	s := NewSimple(0)
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
		require.NoError(t, s.Set(ctx, keys[i], []byte("v"), time.Hour))
	}
	require.NoError(t, s.Clear(ctx, ""))
	table, classes := s.table.Load(), len(s.heads)
	assert.Equal(t, 0, s.Len())
	for _, k := range keys {
		require.NoError(t, s.Set(ctx, k, []byte("v"), time.Hour))
	}
	checkSimpleInvariants(t, s)
	assert.Same(t, table, s.table.Load(), "the refill fits the table Clear made")
	assert.Equal(t, 1, classes, "the TTL class stays")
	assert.Len(t, s.heads, 1)
	assert.Equal(t, len(keys), s.Len())
}
