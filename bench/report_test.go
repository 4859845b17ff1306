package bench

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fragcache/fragcache/internal/benchreport"
)

var (
	hitRoundsFlag = flag.Int("hitrounds", 3, "rounds of the hit-ratio replays in TestReport")
	clockFlag     = flag.String("clock", "wall", "what TestReport's speed table measures: wall (elapsed time per op) or cpu (process CPU time per op, both goroutines and background work included; steadier on a shared machine)")
)

// TestReport runs every measurement of this package in one process and
// prints markdown tables: the speed cases interleaved (in each round every
// contender runs each case once, in an order rotated by round), repeated
// -rounds times, with the median, the range and each contender's ratio to
// otter computed per round. It is skipped unless -report is given.
func TestReport(t *testing.T) {
	if !*reportFlag {
		t.Skip("run with -report to print the comparison tables")
	}
	keyNames()
	type cell struct {
		op string
		n  int
		c  string
	}
	ns := map[cell][]float64{}
	allocs := map[cell]int64{}
	ops := []struct {
		name   string
		filled func(contender, int) store
		run    func(*testing.B, store, []int32)
	}{
		{"Get", filledForGet, benchGet},
		{"Set", filledForSet, benchSet},
	}
	for r := range *roundsFlag {
		for _, op := range ops {
			for _, n := range benchSizes {
				trace := cachedZipfTrace(n, benchZipfS, benchTraceLen, benchSeed)
				for i := range contenders {
					c := contenders[(i+r)%len(contenders)]
					s := op.filled(c, n)
					res := testing.Benchmark(func(b *testing.B) { op.run(b, s, trace) })
					s.Close()
					k := cell{op.name, n, c.name}
					if *clockFlag == "cpu" {
						ns[k] = append(ns[k], lastCPU)
					} else {
						ns[k] = append(ns[k], float64(res.T.Nanoseconds())/float64(res.N))
					}
					allocs[k] = res.AllocsPerOp()
				}
			}
		}
		fmt.Fprintf(os.Stderr, "round %d done %s\n", r+1, time.Now().Format(time.TimeOnly))
	}

	var out strings.Builder
	fmt.Fprintf(&out, "Speed (clock: %s): ns/op, median [min–max] of %d interleaved rounds; ratio = contender ÷ otter per round, median [min–max].\n\n", *clockFlag, *roundsFlag)
	fmt.Fprintf(&out, "| op | keys | contender | ns/op | allocs/op | ÷ otter |\n|---|---:|---|---:|---:|---:|\n")
	for _, op := range ops {
		for _, n := range benchSizes {
			for _, c := range contenders {
				k := cell{op.name, n, c.name}
				o := ns[cell{op.name, n, "otter"}]
				ratios := make([]float64, len(o))
				for i := range o {
					ratios[i] = ns[k][i] / o[i]
				}
				fmt.Fprintf(&out, "| %s | %s | %s | %s | %d | %s |\n", op.name, sizeName(n), c.name,
					benchreport.Summary(ns[k], "%.1f"), allocs[k], benchreport.Summary(ratios, "%.2f"))
			}
		}
	}

	fmt.Fprintf(&out, "\nMemory at 1M entries (keys \"key:<i>\", 8-byte values; live heap after GC ÷ entries held):\n\n")
	fmt.Fprintf(&out, "| contender | B/entry | entries held |\n|---|---:|---:|\n")
	for _, c := range contenders {
		per, held := bytesPerEntry(c, 1_000_000)
		fmt.Fprintf(&out, "| %s | %.1f | %d |\n", c.name, per, held)
	}

	fmt.Fprintf(&out, "\nHit ratio %%, capacity 10 %% of %d keys, %d requests, median [min–max] of %d replays:\n\n", hitKeys, hitLen, *hitRoundsFlag)
	header := "| contender |"
	for _, tr := range hitTraces {
		header += " " + tr.name + " |"
	}
	fmt.Fprintf(&out, "%s\n|---|%s\n", header, strings.Repeat("---:|", len(hitTraces)))
	for _, c := range contenders {
		if !c.bounded {
			continue
		}
		row := "| " + c.name + " |"
		for _, tr := range hitTraces {
			trace := tr.trace()
			var rs []float64
			for range *hitRoundsFlag {
				rs = append(rs, 100*hitRatio(c, trace))
			}
			row += " " + benchreport.Summary(rs, "%.2f") + " |"
		}
		fmt.Fprintln(&out, row)
	}
	fmt.Print(out.String())
}
