package backends

import (
	"math/bits"
	"sync/atomic"
)

// simpleTable is Simple's index: an open-addressing hash table that readers
// search with atomic loads only, while one writer at a time (holding
// Simple.mu) changes it. Neither a Go map nor sync.Map fits: a map needs a
// lock around reads, whose reader count is a cache line every reading core
// writes, and sync.Map costs about 60 bytes per entry more than this table
// (its trie nodes and boxed values), against a budget of 140 bytes per entry
// for everything.
//
// The layout follows Swiss tables: a bucket is one 64-byte cache line with
// seven entry pointers and a control word holding one byte per slot, so a
// lookup loads one control word, compares its bytes with the key's tag all
// at once, and dereferences only the entries whose tag matches (1 in 128 by
// chance). Buckets are probed linearly; a lookup stops at the first bucket
// with an empty slot, because no insert ever went past such a bucket.
//
// Readers race with the writer by design: the writer publishes an entry's
// pointer before its control byte and removes the byte before the pointer,
// a reader loads an entry under the entry's seqlock (see simpleEntry), and
// it always compares the full key it loaded, since an entry it reached may
// have been reused for another key meanwhile. At worst a reader sees the state just before or just
// after a write. When the table must grow, or be rebuilt to drop
// tombstones, the writer builds a new one beside it and swaps the pointer;
// readers still on the old table see a consistent, slightly older state.
type simpleTable struct {
	buckets []simpleBucket
	mask    uint64 // len(buckets)-1; len is a power of two
	// growthLeft is how many more empty slots inserts may fill before the
	// table is rebuilt; it keeps the load (entries and tombstones) at or
	// under 7/8, so probe sequences stay short and always end.
	growthLeft int
	tombstones int
}

const bucketSlots = 7

type simpleBucket struct {
	// ctrl holds slot i's control byte at byte i: ctrlEmpty, ctrlDeleted
	// or a tag (high bit set). Byte 7 is always ctrlDeleted, so that it
	// never matches a tag nor reads as empty.
	ctrl  atomic.Uint64
	slots [bucketSlots]atomic.Pointer[simpleEntry]
}

const (
	ctrlEmpty   = 0x00
	ctrlDeleted = 0x01
	ctrlFull    = 0x80 // set in every tag

	ctrlInit = uint64(ctrlDeleted) << 56 // a new bucket: slots 0–6 empty, byte 7 padding
	lsbs     = 0x0101010101010101
	msbs     = 0x8080808080808080
)

// tagOf is a key's control byte: the hash's top 7 bits with the high bit set.
func tagOf(h uint64) uint64 { return ctrlFull | h>>57 }

// matchTag returns a bit mask with the high bit of byte i set where ctrl's
// byte i may equal tag. It can report a byte that does not match (the
// subtraction borrows across bytes) but never misses one that does; callers
// compare keys anyway.
func matchTag(ctrl, tag uint64) uint64 {
	x := ctrl ^ (lsbs * tag)
	return (x - lsbs) &^ x & msbs
}

// hasEmpty reports whether any slot of ctrl is empty (exact: the borrow
// only ever adds false positives above a real zero byte).
func hasEmpty(ctrl uint64) bool { return (ctrl-lsbs)&^ctrl&msbs != 0 }

func ctrlByte(ctrl uint64, i int) uint64 { return ctrl >> (8 * i) & 0xFF }

func setCtrlByte(ctrl uint64, i int, b uint64) uint64 {
	return ctrl&^(0xFF<<(8*i)) | b<<(8*i)
}

// newSimpleTable returns a table with room for at least n entries.
func newSimpleTable(n int) *simpleTable {
	nb := 1
	for nb*bucketSlots*7/8 < n {
		nb *= 2
	}
	if nb > 1<<29 {
		panic("backends: Simple cannot index more than 3 billion entries") // simpleEntry.pos holds 29 bits of bucket
	}
	t := &simpleTable{buckets: make([]simpleBucket, nb), mask: uint64(nb - 1)}
	for i := range t.buckets {
		t.buckets[i].ctrl.Store(ctrlInit)
	}
	t.growthLeft = nb * bucketSlots * 7 / 8
	return t
}

// find returns the entry stored under key and what it holds, or a nil
// entry. It is safe to call without the write lock.
func (t *simpleTable) find(key string, h uint64) (*simpleEntry, entryState) {
	tag := tagOf(h)
	i := h & t.mask
	for range len(t.buckets) {
		b := &t.buckets[i]
		ctrl := b.ctrl.Load()
		for m := matchTag(ctrl, tag); m != 0; m &= m - 1 {
			if e := b.slots[bits.TrailingZeros64(m)/8].Load(); e != nil {
				if st := e.load(); st.key == key {
					return e, st
				}
			}
		}
		if hasEmpty(ctrl) {
			return nil, entryState{}
		}
		i = (i + 1) & t.mask
	}
	return nil, entryState{}
}

// slot is where an entry is, or may be put: bucket index and slot.
type slot struct {
	b uint64
	i int
}

// locate returns where key is (found) or else the first free slot of its
// probe sequence, for an insert. The caller holds the write lock and has
// made sure the table has room (growthLeft > 0 or a tombstone on the way).
func (t *simpleTable) locate(key string, h uint64) (at slot, found bool) {
	tag := tagOf(h)
	i := h & t.mask
	free := slot{i: -1}
	for range len(t.buckets) {
		b := &t.buckets[i]
		ctrl := b.ctrl.Load()
		for m := matchTag(ctrl, tag); m != 0; m &= m - 1 {
			j := bits.TrailingZeros64(m) / 8
			if e := b.slots[j].Load(); e != nil && e.keyIs(key) {
				return slot{i, j}, true
			}
		}
		if free.i < 0 {
			for j := range bucketSlots {
				if c := ctrlByte(ctrl, j); c == ctrlEmpty || c == ctrlDeleted {
					free = slot{i, j}
					break
				}
			}
		}
		if hasEmpty(ctrl) {
			break
		}
		i = (i + 1) & t.mask
	}
	return free, false
}

// needsRebuild reports whether an insert could find no free slot: the
// table is rebuilt first when it has no empty slot left to spend.
func (t *simpleTable) needsRebuild() bool { return t.growthLeft == 0 }

// put stores e at a free slot s (from locate) or over the entry there.
func (t *simpleTable) put(s slot, e *simpleEntry, h uint64) {
	b := &t.buckets[s.b]
	ctrl := b.ctrl.Load()
	switch ctrlByte(ctrl, s.i) {
	case ctrlEmpty:
		t.growthLeft--
	case ctrlDeleted:
		t.tombstones--
	}
	e.pos = s.pos()
	b.slots[s.i].Store(e) // the pointer first: a reader matching the tag finds it
	b.ctrl.Store(setCtrlByte(ctrl, s.i, tagOf(h)))
}

// pos packs s into simpleEntry.pos.
func (s slot) pos() uint32 { return uint32(s.b)<<3 | uint32(s.i) }

// at returns the entry at s, which holds one.
func (t *simpleTable) at(s slot) *simpleEntry { return t.buckets[s.b].slots[s.i].Load() }

// remove empties slot s. A bucket that still has an empty slot was never
// full since the table was built, so no probe sequence goes past it and the
// slot can be empty again; otherwise it becomes a tombstone, which lookups
// step over and inserts reuse.
func (t *simpleTable) remove(s slot) {
	b := &t.buckets[s.b]
	ctrl := b.ctrl.Load()
	c := uint64(ctrlDeleted)
	if hasEmpty(ctrl) {
		c = ctrlEmpty
		t.growthLeft++
	} else {
		t.tombstones++
	}
	b.ctrl.Store(setCtrlByte(ctrl, s.i, c)) // the control byte first: readers stop matching it
	b.slots[s.i].Store(nil)
}

// all calls f for every entry, in table order.
func (t *simpleTable) all(f func(s slot, e *simpleEntry)) {
	for bi := range t.buckets {
		b := &t.buckets[bi]
		for j := range bucketSlots {
			if e := b.slots[j].Load(); e != nil {
				f(slot{uint64(bi), j}, e)
			}
		}
	}
}
