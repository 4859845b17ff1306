package enginebench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragcache/fragcache/internal/benchreport"
)

var (
	reportFlag = flag.Bool("report", false, "run TestReport: every cell, interleaved by round, as markdown")
	roundsFlag = flag.Int("rounds", 5, "rounds of TestReport")
	cellFlag   = flag.Duration("cell", 100*time.Millisecond, "time spent in each cell of each round of TestReport")
	clockFlag  = flag.String("clock", "cpu", "what TestReport measures: cpu (the process's CPU time, robust to a shared machine) or wall")
	flaskFlag  = flag.Float64("flask", 0, "Flask-Caching's all-hit page in µs (anchor_flask_fragments.py, run back to back), for the ratio column")
)

// cell is one measured thing: a variant of one page of one engine.
type cell struct {
	engine, workload, variant string
	run                       func(w *bytes.Buffer) error
	setup                     func() // before each call, untimed; nil for none
}

// cells builds every cell of every engine, checking on the way that each
// page's variants print the same text.
func cells(tb testing.TB) []cell {
	tb.Helper()
	var out []cell
	for _, e := range engines {
		out = append(out, engineCells(tb, e)...)
	}
	return out
}

// engineCells builds the cells of one engine.
func engineCells(tb testing.TB, e engine) []cell {
	tb.Helper()
	var out []cell
	{
		p := e.page(tb)
		checkSame(tb, e.name+" page", p)
		reset := func() {
			if err := p.fc.Store().Clear(context.Background()); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out,
			cell{e.name, "page", "plain", p.plain, nil},
			cell{e.name, "page", "floor", p.floor, nil},
			cell{e.name, "page", "hit", p.cached, nil},
			cell{e.name, "page", "miss", p.cached, reset},
		)
		if p.store != nil {
			out = append(out, cell{e.name, "page", "store", p.store, reset})
		}
		for _, size := range fragmentSizes {
			o := e.one(tb, size)
			w := sizeName(size)
			checkSame(tb, e.name+" "+w, o)
			out = append(out,
				cell{e.name, w, "floor", o.floor, nil},
				cell{e.name, w, "hit", o.cached, nil},
			)
		}
	}
	return out
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// checkSame fails unless the page's variants print the same text,
// and leaves its cache warm.
func checkSame(tb testing.TB, what string, p *page) {
	tb.Helper()
	var plain, floor, miss, hit bytes.Buffer
	for _, r := range []struct {
		w  *bytes.Buffer
		fn func(*bytes.Buffer) error
	}{{&plain, p.plain}, {&floor, p.floor}, {&miss, p.cached}, {&hit, p.cached}} {
		if err := r.fn(r.w); err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
	}
	if plain.String() != floor.String() || plain.String() != miss.String() || plain.String() != hit.String() {
		tb.Fatalf("%s: variants differ:\nplain %q\nfloor %q\nmiss  %q\nhit   %q", what,
			head(plain.String()), head(floor.String()), head(miss.String()), head(hit.String()))
	}
	if p.store != nil {
		var store bytes.Buffer
		if err := p.store(&store); err != nil {
			tb.Fatalf("%s: store: %v", what, err)
		}
		if store.String() != plain.String() {
			tb.Fatalf("%s: the store variant differs:\nplain %q\nstore %q", what, head(plain.String()), head(store.String()))
		}
	}
	if st := p.fc.Stats(); st.Hits == 0 {
		tb.Fatalf("%s: the second render did not hit: %+v", what, st)
	}
}

func head(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestVariantsAgree is the check the report relies on: every variant of
// every page prints the same text, and a second render hits.
func TestVariantsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1 MB pages")
	}
	cells(t)
}

// now is the clock TestReport measures with (-clock).
func now() time.Duration {
	if *clockFlag == "wall" {
		return time.Duration(time.Now().UnixNano())
	}
	return benchreport.CPUClock()
}

// measure returns the nanoseconds per call of c.run, timing only the
// calls: about d of them in all.
func measure(tb testing.TB, c cell, w *bytes.Buffer, d time.Duration) float64 {
	call := func() {
		w.Reset()
		if err := c.run(w); err != nil {
			tb.Fatalf("%s %s %s: %v", c.engine, c.workload, c.variant, err)
		}
	}
	if c.setup != nil {
		var total time.Duration
		n := 0
		for total < d {
			c.setup()
			t0 := now()
			call()
			total += now() - t0
			n++
		}
		return float64(total.Nanoseconds()) / float64(n)
	}
	// One timed batch, sized from a short probe, so the clock is read
	// twice per batch rather than per call.
	n := 1
	for {
		t0 := now()
		for range n {
			call()
		}
		el := now() - t0
		if el >= d/2 {
			return float64(el.Nanoseconds()) / float64(n)
		}
		if el >= d/10 {
			m := max(int(float64(n)*float64(d)/float64(el)), 1)
			t0 = now()
			for range m {
				call()
			}
			return float64((now() - t0).Nanoseconds()) / float64(m)
		}
		n *= 4
	}
}

func allocs(c cell, w *bytes.Buffer) float64 {
	return testing.AllocsPerRun(20, func() {
		if c.setup != nil {
			c.setup()
		}
		w.Reset()
		_ = c.run(w)
	})
}

// TestReport measures every cell -rounds times, interleaved (each round
// runs every cell once, in an order rotated by round), and prints medians,
// ranges, and the ratios issue 17 sets targets for, each taken within a
// round. It is skipped unless -report is given.
func TestReport(t *testing.T) {
	if !*reportFlag {
		t.Skip("run with -report to print the tables")
	}
	cs := cells(t)
	key := func(c cell) string { return c.engine + "|" + c.workload + "|" + c.variant }
	ns := map[string][]float64{}
	al := map[string]float64{}
	bufs := make([]bytes.Buffer, len(cs))
	for i, c := range cs {
		al[key(c)] = allocs(c, &bufs[i])
	}
	for r := range *roundsFlag {
		for j := range cs {
			i := (j + r*len(cs) / *roundsFlag) % len(cs)
			c := cs[i]
			ns[key(c)] = append(ns[key(c)], measure(t, c, &bufs[i], *cellFlag))
		}
		fmt.Fprintf(os.Stderr, "round %d done %s\n", r+1, time.Now().Format(time.TimeOnly))
	}
	ratio := func(a, b string) []float64 {
		x, y := ns[a], ns[b]
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] / y[i]
		}
		return out
	}
	us := func(k string) string {
		v := slices.Clone(ns[k])
		for i := range v {
			v[i] /= 1000
		}
		return benchreport.Summary(v, "%.2f")
	}
	var out strings.Builder
	fmt.Fprintf(&out, "Clock: %s. Page of %d fragments (vary_on the user) × %d items, µs per page: median [min–max] of %d interleaved rounds; ratios taken per round. allocs per page in parentheses.\n\n", *clockFlag, pageFragments, pageItems, *roundsFlag)
	fmt.Fprintf(&out, "| engine | plain | floor | all-hit | all-miss | hit ÷ floor | miss ÷ plain | Flask hit ÷ ours |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, e := range engines {
		k := func(v string) string { return e.name + "|page|" + v }
		flask := "–"
		if *flaskFlag > 0 {
			inv := slices.Clone(ns[k("hit")])
			for i := range inv {
				inv[i] = *flaskFlag * 1000 / inv[i]
			}
			flask = benchreport.Summary(inv, "%.1f")
		}
		fmt.Fprintf(&out, "| %s | %s (%.0f) | %s (%.0f) | %s (%.0f) | %s (%.0f) | %s | %s | %s |\n", e.name,
			us(k("plain")), al[k("plain")], us(k("floor")), al[k("floor")], us(k("hit")), al[k("hit")], us(k("miss")), al[k("miss")],
			benchreport.Summary(ratio(k("hit"), k("floor")), "%.2f"), benchreport.Summary(ratio(k("miss"), k("plain")), "%.3f"), flask)
	}
	for _, e := range engines {
		k := func(v string) string { return e.name + "|page|" + v }
		if _, ok := ns[k("store")]; ok {
			fmt.Fprintf(&out, "\n%s's store floor (each block rendered into a buffer by a function and a copy kept in a Go map, the least a miss can cost): %s µs (%.0f allocs); store ÷ plain %s, miss ÷ store %s.\n",
				e.name, us(k("store")), al[k("store")], benchreport.Summary(ratio(k("store"), k("plain")), "%.3f"), benchreport.Summary(ratio(k("miss"), k("store")), "%.3f"))
		}
	}
	fmt.Fprintf(&out, "\nOne fragment hit next to the engine's constant of the same size, µs per page (allocs):\n\n")
	fmt.Fprintf(&out, "| engine | size | floor | hit | hit ÷ floor |\n|---|---|---:|---:|---:|\n")
	for _, e := range engines {
		for _, size := range fragmentSizes {
			k := func(v string) string { return e.name + "|" + sizeName(size) + "|" + v }
			fmt.Fprintf(&out, "| %s | %s | %s (%.0f) | %s (%.0f) | %s |\n", e.name, sizeName(size),
				us(k("floor")), al[k("floor")], us(k("hit")), al[k("hit")], benchreport.Summary(ratio(k("hit"), k("floor")), "%.2f"))
		}
	}
	fmt.Print(out.String())
}

// BenchmarkCells runs each cell as a benchmark, for profiling one of them
// (-bench 'Cells/jet/page/hit' -cpuprofile …); only the engines selected
// are built.
func BenchmarkCells(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) { benchCells(b, engineCells(b, e)) })
	}
}

func benchCells(b *testing.B, cs []cell) {
	for _, c := range cs {
		b.Run(strings.ReplaceAll(c.workload, " ", "")+"/"+c.variant, func(b *testing.B) {
			var w bytes.Buffer
			b.ReportAllocs()
			for b.Loop() {
				if c.setup != nil {
					b.StopTimer()
					c.setup()
					b.StartTimer()
				}
				w.Reset()
				if err := c.run(&w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
