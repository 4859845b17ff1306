package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
)

// keyNames returns the n keys every contender stores, built once so that
// benchmarks measure the caches and not strconv.
var keyNames = sync.OnceValue(func() []string {
	keys := make([]string, 1_000_000)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	return keys
})

// zipf draws key indices in [0, n) with P(i) proportional to 1/(i+1)^s.
// math/rand/v2's Zipf needs s > 1; this inverts the CDF, so any s > 0 works.
type zipf struct {
	cdf []float64
	rng *rand.Rand
}

func newZipf(n int, s float64, seed uint64) *zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipf{cdf: cdf, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (z *zipf) next() int {
	i, _ := slices.BinarySearch(z.cdf, z.rng.Float64())
	return min(i, len(z.cdf)-1)
}

// zipfTrace returns length key indices drawn from a Zipf(s) over n keys.
// The same arguments give the same trace.
func zipfTrace(n int, s float64, length int, seed uint64) []int32 {
	z := newZipf(n, s, seed)
	out := make([]int32, length)
	for i := range out {
		out[i] = int32(z.next())
	}
	return out
}

// traceCache memoizes traces: the 1M-key ones take a while to draw.
var traceCache sync.Map

func cachedZipfTrace(n int, s float64, length int, seed uint64) []int32 {
	type k struct {
		n, length int
		s         float64
		seed      uint64
	}
	key := k{n, length, s, seed}
	if t, ok := traceCache.Load(key); ok {
		return t.([]int32)
	}
	t := zipfTrace(n, s, length, seed)
	traceCache.Store(key, t)
	return t
}

// scanTrace is the scan-heavy trace: Zipf(1.01) requests over the n hot
// keys, interrupted every scanEvery requests by a sequential scan of
// scanLen keys from a cold range of 5n keys, taken in turn (so a scanned
// key comes back only after the whole cold range has been scanned, much
// later than any cache of 10 % of the keys can remember it). Half of all
// requests are scans. Key indices of the cold range start at n.
func scanTrace(n, length int, seed uint64) []int32 {
	const scanEvery, scanLen = 5_000, 5_000
	z := newZipf(n, 1.01, seed)
	out := make([]int32, 0, length)
	cold := 0
	for len(out) < length {
		for range scanEvery {
			out = append(out, int32(z.next()))
		}
		for range scanLen {
			out = append(out, int32(n+cold))
			cold = (cold + 1) % (5 * n)
		}
	}
	return out[:length]
}
