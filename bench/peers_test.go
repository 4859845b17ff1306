package bench

import (
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/fragcache/fragcache/internal/benchreport"
)

// The measured workloads. Key counts are those of the issue: 100k and 1M
// keys, plus 1k to show that the cost per operation has no step with size.
var (
	benchSizes = []int{1_000, 100_000, 1_000_000}
	// benchTraceLen is the length of each Zipf trace the benchmarks walk
	// (repeating it); long enough that the walk is not a cache-friendly loop.
	benchTraceLen = 1 << 20
	benchValue    = []byte("01234567") // 8 bytes, stored by every Set
)

const (
	benchZipfS    = 1.01
	benchSeed     = 1
	benchRoutines = 2
)

// sizeName is 1k, 100k, 1M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1_000 && n%1_000 == 0:
		return strconv.Itoa(n/1_000) + "k"
	}
	return strconv.Itoa(n)
}

// parallel runs b.N calls of op split over benchRoutines goroutines; each
// goroutine walks trace from its own offset, so they read different keys
// at any moment but the same distribution.
func parallel(b *testing.B, trace []int32, op func(key string)) {
	keys := keyNames()
	per := b.N / benchRoutines
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := benchreport.CPUClock()
	for g := range benchRoutines {
		n := per
		if g == 0 {
			n += b.N % benchRoutines
		}
		start := g * len(trace) / benchRoutines
		wg.Go(func() {
			j := start
			for range n {
				op(keys[trace[j]])
				j++
				if j == len(trace) {
					j = 0
				}
			}
		})
	}
	wg.Wait()
	lastCPU = float64(benchreport.CPUClock()-cpu0) / float64(max(b.N, 1))
}

// lastCPU is the process CPU time per operation of the last parallel run
// (both goroutines' time, and any background work of the contender, such
// as otter's maintenance), which TestReport reports with -clock cpu.
var lastCPU float64

// filledForGet returns a contender holding all n keys (capacity n), so that
// every Get of the trace is a hit where the policy admitted the key. Each
// key gets a value of its own, as in real use: one shared value would stay
// in the CPU cache for the contenders that keep the caller's slice.
func filledForGet(c contender, n int) store {
	s := c.new(n, newOpts{})
	keys := keyNames()
	for _, k := range keys[:n] {
		s.Set(k, append([]byte(nil), benchValue...))
	}
	s.Len() // lets otter and ristretto apply their buffered writes
	return s
}

// filledForSet returns a contender with capacity n/10 filled with the first
// n/10 keys; Sets along a Zipf trace over n keys then mostly insert a new
// key and evict one, and sometimes overwrite a hot key.
func filledForSet(c contender, n int) store {
	s := c.new(max(n/10, 1), newOpts{})
	keys := keyNames()
	for _, k := range keys[:max(n/10, 1)] {
		s.Set(k, benchValue)
	}
	s.Len()
	return s
}

func benchGet(b *testing.B, s store, trace []int32) {
	b.ReportAllocs()
	parallel(b, trace, func(k string) { s.Get(k) })
}

func benchSet(b *testing.B, s store, trace []int32) {
	b.ReportAllocs()
	parallel(b, trace, func(k string) { s.Set(k, benchValue) })
}

// BenchmarkGet is a Get of a present key (Zipf 1.01 over n keys, all
// stored), from 2 goroutines.
func BenchmarkGet(b *testing.B) {
	for _, n := range benchSizes {
		trace := cachedZipfTrace(n, benchZipfS, benchTraceLen, benchSeed)
		for _, c := range contenders {
			var s store
			b.Run(fmt.Sprintf("keys=%s/%s", sizeName(n), c.name), func(b *testing.B) {
				if s == nil {
					s = filledForGet(c, n)
				}
				benchGet(b, s, trace)
			})
			if s != nil {
				s.Close()
			}
		}
	}
}

// BenchmarkSet is a Set along a Zipf 1.01 trace over n keys into a full
// cache of capacity n/10 (mostly evicting inserts), from 2 goroutines.
// go-cache has no bound, so its Sets never evict.
func BenchmarkSet(b *testing.B) {
	for _, n := range benchSizes {
		trace := cachedZipfTrace(n, benchZipfS, benchTraceLen, benchSeed)
		for _, c := range contenders {
			var s store
			b.Run(fmt.Sprintf("keys=%s/%s", sizeName(n), c.name), func(b *testing.B) {
				if s == nil {
					s = filledForSet(c, n)
				}
				benchSet(b, s, trace)
			})
			if s != nil {
				s.Close()
			}
		}
	}
}

// bytesPerEntry stores n entries (keys "key:<i>", a new 8-byte value each)
// into a contender of capacity n and returns the live heap it added, after
// a GC, per entry it holds, and how many it holds. Keys and values are
// built during the fill, so their memory counts for every contender (the
// fragcache Set copies the value into its envelope; the others keep the
// caller's slice).
func bytesPerEntry(c contender, n int) (perEntry float64, held int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := c.new(n, newOpts{})
	for i := range n {
		v := make([]byte, 8)
		v[0] = byte(i)
		s.Set("key:"+strconv.Itoa(i), v)
	}
	s.Len()
	runtime.GC()
	runtime.ReadMemStats(&after)
	keys := keyNames()
	for _, k := range keys[:n] {
		if s.Get(k) {
			held++
		}
	}
	runtime.KeepAlive(s)
	s.Close()
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(max(held, 1)), held
}

// BenchmarkBytesPerEntry reports B/entry at 1M entries (see bytesPerEntry).
func BenchmarkBytesPerEntry(b *testing.B) {
	keyNames() // built before, so not counted
	for _, c := range contenders {
		b.Run(c.name, func(b *testing.B) {
			var per float64
			var held int
			for range b.N {
				per, held = bytesPerEntry(c, 1_000_000)
			}
			b.ReportMetric(per, "B/entry")
			b.ReportMetric(float64(held), "entries")
		})
	}
}

// hitTraces are the hit-ratio workloads: 1M requests over 100k keys, the
// cache holding 10 % of the keys. Every trace has a fixed seed.
var hitTraces = []struct {
	name  string
	trace func() []int32
}{
	{"zipf0.8", func() []int32 { return cachedZipfTrace(hitKeys, 0.8, hitLen, 8) }},
	{"zipf1.01", func() []int32 { return cachedZipfTrace(hitKeys, 1.01, hitLen, 101) }},
	{"zipf1.2", func() []int32 { return cachedZipfTrace(hitKeys, 1.2, hitLen, 12) }},
	{"scan", sync.OnceValue(func() []int32 { return scanTrace(hitKeys, hitLen, 7) })},
}

const (
	hitKeys = 100_000
	hitLen  = 1_000_000
)

// hitRatio replays trace against a contender holding hitKeys/10 entries: a
// Get, and on a miss a Set, as a cache-aside application does.
func hitRatio(c contender, trace []int32) float64 {
	s := c.new(hitKeys/10, newOpts{sync: true})
	defer s.Close()
	keys := keyNames()
	hits := 0
	for _, k := range trace {
		if s.Get(keys[k]) {
			hits++
		} else {
			s.Set(keys[k], benchValue)
		}
	}
	return float64(hits) / float64(len(trace))
}

// BenchmarkHitRatio reports the hit ratio (hit%) of each bounded contender
// on each trace; ns/op is one whole replay.
func BenchmarkHitRatio(b *testing.B) {
	for _, tr := range hitTraces {
		trace := tr.trace()
		for _, c := range contenders {
			if !c.bounded {
				continue
			}
			b.Run(tr.name+"/"+c.name, func(b *testing.B) {
				var r float64
				for range b.N {
					r = hitRatio(c, trace)
				}
				b.ReportMetric(100*r, "hit%")
			})
		}
	}
}

var (
	reportFlag = flag.Bool("report", false, "run TestReport: all measurements, interleaved by round, as markdown")
	roundsFlag = flag.Int("rounds", 5, "rounds of TestReport")
)
