package backends

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// Eviction names the policy a bounded [Simple] uses to choose which live
// entry makes room when nothing has expired. Expired entries always go
// first, whatever the policy.
type Eviction string

const (
	// EvictFIFO evicts the oldest write, as Flask's SimpleCache does
	// (without evicting never-expiring entries first). It is the default.
	EvictFIFO Eviction = "fifo"
	// EvictTinyLFU is W-TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A
	// Highly Efficient Cache Admission Policy", 2017, as in Caffeine and
	// otter): a small window of new entries in front of a main region that
	// admits a window entry only if it has been requested more often,
	// recently, than the entry it would replace. It keeps frequently read
	// entries through scans and bursts of new keys, for a higher hit ratio
	// on skewed workloads, at the cost of 8 bytes per entry (see
	// BENCHMARKS.md) and of a read that records itself.
	EvictTinyLFU Eviction = "tinylfu"
)

// W-TinyLFU is written here rather than taken from otter v2, which
// implements it well, because Simple needs what otter's API cannot give
// together: an exact threshold (otter applies its bound after the write,
// asynchronously), eviction of expired entries before any live one, Inc and
// Add atomic with the eviction they cause, and a prefix Clear that sees a
// consistent cache; and because one table serving both policies keeps
// Simple's lock-free reads and its memory per entry.
//
// Reads cannot take the writers' lock, so they record themselves where
// writers find it later: an "accessed" bit on the entry, set only when it
// is not set yet, and the frequency sketch, whose 4-bit counters stop
// changing once saturated. A hot entry is therefore read without any write.
// The writers approximate the policy's LRU queues with second chances
// (CLOCK): the accessed bit of a probation victim promotes it to the
// protected queue instead of evicting it, as an LRU hit would have.

// meta bits of a simpleEntry under EvictTinyLFU.
const (
	metaQueue    = 0b011 // which queue holds the entry
	inWindow     = 0b001
	inProbation  = 0b010
	inProtected  = 0b011
	metaAccessed = 0b100 // read since it last changed queue
)

const (
	windowPercent    = 1  // of the threshold, as Caffeine's initial window
	protectedPercent = 80 // of the main region
	// maxSecondChances bounds the entries one eviction may promote or
	// rotate before it takes the queue head regardless, so that an eviction
	// stays O(1) even when every entry was read.
	maxSecondChances = 16
	// admitRandomlyFrom is the frequency from which a candidate that does
	// not beat its victim is still admitted, 1 time in 128: two hot keys
	// colliding must not keep one of them out forever (Caffeine's guard).
	admitRandomlyFrom = 6
)

type tinyLFU struct {
	sketch frequencySketch
	// Rings of entries through qprev/qnext, oldest first.
	window, probation, protected          simpleEntry
	windowLen, probationLen, protectedLen int
	windowMax, protectedMax               int
}

func newTinyLFU(threshold int) *tinyLFU {
	p := &tinyLFU{
		windowMax: max(1, threshold*windowPercent/100),
	}
	p.protectedMax = (threshold - p.windowMax) * protectedPercent / 100
	p.sketch.init(threshold)
	for _, r := range []*simpleEntry{&p.window, &p.probation, &p.protected} {
		r.qprev, r.qnext = r, r
	}
	return p
}

// reset empties the queues (Clear); the sketch keeps its history.
func (p *tinyLFU) reset() {
	for _, r := range []*simpleEntry{&p.window, &p.probation, &p.protected} {
		r.qprev, r.qnext = r, r
	}
	p.windowLen, p.probationLen, p.protectedLen = 0, 0, 0
}

// hit records a read of e; it runs without the lock.
func (p *tinyLFU) hit(e *simpleEntry, h uint64) {
	if e.meta.Load()&metaAccessed == 0 {
		e.meta.Or(metaAccessed)
	}
	p.sketch.increment(h)
}

// added takes a new entry into the window, moving the window's overflow
// to probation.
func (p *tinyLFU) added(e *simpleEntry, h uint64) {
	p.sketch.increment(h)
	e.meta.Store(inWindow)
	pushBack(&p.window, e)
	p.windowLen++
	for p.windowLen > p.windowMax {
		p.move(p.window.qnext, inProbation)
	}
}

// replaced records an overwrite of e, which keeps its place: it is a read
// as far as the policy is concerned.
func (p *tinyLFU) replaced(e *simpleEntry, h uint64) {
	p.sketch.increment(h)
	e.meta.Or(metaAccessed)
}

// removed takes e out of its queue.
func (p *tinyLFU) removed(e *simpleEntry) {
	switch e.meta.Load() & metaQueue {
	case inWindow:
		p.windowLen--
	case inProbation:
		p.probationLen--
	case inProtected:
		p.protectedLen--
	}
	unlinkQueue(e)
}

// move puts e at the back of queue q, clearing its accessed bit.
func (p *tinyLFU) move(e *simpleEntry, q uint32) {
	p.removed(e)
	e.meta.Store(q)
	switch q {
	case inWindow:
		pushBack(&p.window, e)
		p.windowLen++
	case inProbation:
		pushBack(&p.probation, e)
		p.probationLen++
	case inProtected:
		pushBack(&p.protected, e)
		p.protectedLen++
	}
}

// victim returns the entry to evict from a full cache when nothing has
// expired; the caller removes it. The window's oldest entry, if the window
// is full (the coming insert would push it out), is the candidate; it enters
// probation and stays if the sketch says it is requested more often than
// probation's victim, which then goes instead.
func (p *tinyLFU) victim(hash func(string) uint64) *simpleEntry {
	var candidate *simpleEntry
	if p.windowLen >= p.windowMax && p.windowLen > 0 {
		// The window is LRU: an entry read since it came in goes round
		// again (second chance) instead of leaving.
		for range maxSecondChances {
			c := p.window.qnext
			if c.meta.Load()&metaAccessed == 0 || p.windowLen == 1 {
				break
			}
			p.move(c, inWindow)
		}
		candidate = p.window.qnext
		p.move(candidate, inProbation)
	}
	v := p.probationVictim()
	switch {
	case v == nil && candidate == nil: // a window under its share and nothing else: a full cache has no such state
		if w := p.window.qnext; w != &p.window {
			return w
		}
		return nil
	case v == nil || v == candidate:
		return candidate
	case candidate == nil:
		return v
	}
	cf, vf := p.sketch.frequency(hash(candidate.load().key)), p.sketch.frequency(hash(v.load().key))
	if cf > vf || (cf >= admitRandomlyFrom && rand.Uint32()&127 == 0) {
		return v
	}
	return candidate
}

// probationVictim returns probation's oldest entry that was not read since
// it got there, promoting the ones that were to protected (up to
// maxSecondChances of them); with probation empty, protected's oldest.
func (p *tinyLFU) probationVictim() *simpleEntry {
	for range maxSecondChances {
		v := p.probation.qnext
		if v == &p.probation {
			break
		}
		if v.meta.Load()&metaAccessed == 0 {
			return v
		}
		p.move(v, inProtected)
		p.demoteOverflow()
	}
	if v := p.probation.qnext; v != &p.probation {
		return v
	}
	if v := p.protected.qnext; v != &p.protected {
		return v
	}
	return nil
}

// demoteOverflow moves protected's oldest entries to probation while
// protected is over its share, giving a read entry a second chance at the
// back of protected instead.
func (p *tinyLFU) demoteOverflow() {
	for chances := 0; p.protectedLen > p.protectedMax; chances++ {
		d := p.protected.qnext
		if d.meta.Load()&metaAccessed != 0 && chances < maxSecondChances {
			p.move(d, inProtected)
			continue
		}
		p.move(d, inProbation)
	}
}

func pushBack(ring, e *simpleEntry) {
	e.qprev, e.qnext = ring.qprev, ring
	ring.qprev.qnext = e
	ring.qprev = e
}

func unlinkQueue(e *simpleEntry) {
	e.qprev.qnext, e.qnext.qprev = e.qnext, e.qprev
	e.qprev, e.qnext = nil, nil
}

// frequencySketch is TinyLFU's count-min sketch of recent request
// frequencies: 4-bit counters, 16 to a word, one word per entry of the
// threshold (8 bytes, as Caffeine). An increment raises only the counters
// at the minimum (conservative update), which keeps estimates closer than
// Caffeine's increment of all four: it measured 0.1–0.2 points more hits on
// the Zipf traces of BENCHMARKS.md. After 10 increments per entry of the threshold, every counter is halved,
// so that the sketch forgets old popularity.
type frequencySketch struct {
	words   []atomic.Uint64
	shift   uint // word index = mixed hash >> shift
	resetAt int64
	// counts stripes the number of increments by key hash, so that readers
	// of different keys do not write one cache line; adjust (writers only)
	// is subtracted from their sum by resets.
	counts [8]struct {
		n atomic.Int64
		_ [56]byte
	}
	adjust    int64
	sinceSeen int // increments by writers since the last look at counts
}

func (f *frequencySketch) init(threshold int) {
	n := uint64(max(threshold, 8))
	size := 1 << bits.Len64(n-1) // next power of two
	f.words = make([]atomic.Uint64, max(size, 8))
	f.shift = uint(64 - bits.TrailingZeros64(uint64(len(f.words))))
	f.resetAt = 10 * int64(threshold)
}

const hashMix = 0x9E3779B97F4A7C15 // Fibonacci hashing spreads the key hash's bits to the top

// counters returns the word index and nibble shift of a key's four counters:
// one in each pair of words of its 64-byte block of eight, as Caffeine lays
// them out (one word per key did measurably worse: its four counters had
// only four places each).
func (f *frequencySketch) counters(h uint64) (w [4]uint64, sh [4]uint) {
	hm := h * hashMix
	block := (hm >> f.shift) &^ 7
	for i := range 4 {
		x := hm >> (8 * i)
		w[i] = block + uint64(2*i) + x&1
		sh[i] = uint(x>>1&15) * 4
	}
	return
}

func (f *frequencySketch) frequency(h uint64) uint64 {
	w, sh := f.counters(h)
	m := uint64(15)
	for i := range 4 {
		m = min(m, f.words[w[i]].Load()>>sh[i]&15)
	}
	return m
}

func (f *frequencySketch) increment(h uint64) {
	w, sh := f.counters(h)
	var c [4]uint64
	m := uint64(15)
	for i := range 4 {
		c[i] = f.words[w[i]].Load() >> sh[i] & 15
		m = min(m, c[i])
	}
	if m == 15 {
		return
	}
	for i := range 4 {
		if c[i] == m { // conservative update: only the counters at the minimum
			f.incrementAt(&f.words[w[i]], sh[i])
		}
	}
	f.counts[h&7].n.Add(1)
}

// incrementAt adds one to the counter at shift sh of w unless it is
// saturated; a compare-and-swap, so that racing readers cannot carry a
// counter into its neighbour. Giving up after a few lost races loses an
// increment, which a sketch can afford.
func (f *frequencySketch) incrementAt(w *atomic.Uint64, sh uint) {
	for range 4 {
		x := w.Load()
		if x>>sh&15 == 15 || w.CompareAndSwap(x, x+1<<sh) {
			return
		}
	}
}

// maybeReset halves every counter once enough increments happened; the
// caller holds Simple.mu. It looks at the striped counts every 64 calls.
func (f *frequencySketch) maybeReset() {
	if f.sinceSeen++; f.sinceSeen < 64 {
		return
	}
	f.sinceSeen = 0
	total := f.adjust
	for i := range f.counts {
		total += f.counts[i].n.Load()
	}
	if total < f.resetAt {
		return
	}
	for i := range f.words {
		w := &f.words[i]
		for {
			x := w.Load()
			if w.CompareAndSwap(x, x>>1&0x7777777777777777) {
				break
			}
		}
	}
	f.adjust -= (total + 1) / 2
}
