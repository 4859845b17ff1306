package jettag_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/CloudyKit/jet/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/jettag"
)

// The workload shared by the three engines' benchmarks: a page of
// benchFragments blocks, each a loop over 50 items printing the item's name
// and the user's name; block i is named "frag-i", timeout 300, no vary_on.
const (
	benchFragments = 10
	benchItems     = 50
	benchBody      = `<ul>{{ range _, it := items }}<li>{{ it.Name }} {{ user.Name }}</li>{{ end }}</ul>`
)

type benchItem struct{ Name string }
type benchUser struct{ Name string }

func benchVars() jet.VarMap {
	items := make([]benchItem, benchItems)
	for i := range items {
		items[i] = benchItem{Name: fmt.Sprintf("item-%d", i)}
	}
	return jet.VarMap{}.Set("items", items).Set("user", benchUser{Name: "alice"})
}

// benchPage returns a page of n blocks, each written by block(i).
func benchPage(n int, block func(i int) string) string {
	var b strings.Builder
	b.WriteString("<html><body>\n")
	for i := range n {
		b.WriteString(block(i))
		b.WriteString("\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

func cachedBlock(i int) string {
	return fmt.Sprintf(`{{ cache 300, "frag-%d" }}%s{{ endcache }}`, i, benchBody)
}

func inlineBlock(int) string { return benchBody }

func floorBlock(i int) string { return fmt.Sprintf(`{{ floor(%d) }}`, i) }

type benchSetup struct {
	store *backends.Cache
	fc    *fragment.Cache
	set   *jet.Set
	vars  jet.VarMap
}

func newBenchSetup(b testing.TB, pages map[string]string) *benchSetup {
	b.Helper()
	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	fc := fragment.New(store, fragment.Options{})
	views := jet.NewInMemLoader()
	for p, src := range pages {
		views.Set(p, src)
	}
	set, err := jettag.New(fc, jettag.Options{}).NewSet("views", views)
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSetup{store: store, fc: fc, set: set, vars: benchVars()}

	// The floor construct: a global function writing a precomputed
	// fragment (the block's real output) straight to the output, the
	// cheapest way Jet has to print a constant per block.
	var fragment bytes.Buffer
	one, err := jet.NewSet(jet.NewInMemLoader()).Parse("/one.jet", benchBody)
	if err != nil {
		b.Fatal(err)
	}
	if err := one.Execute(&fragment, s.vars, nil); err != nil {
		b.Fatal(err)
	}
	precomputed := fragment.Bytes()
	set.AddGlobalFunc("floor", func(a jet.Arguments) reflect.Value {
		a.Runtime().Writer.Write(precomputed)
		return reflect.Value{}
	})
	return s
}

func (s *benchSetup) run(b *testing.B, path string, each func()) {
	b.Helper()
	tpl, err := s.set.GetTemplate(path)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, s.vars, nil); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.SetBytes(int64(out.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if each != nil {
			each()
		}
		out.Reset()
		if err := tpl.Execute(&out, s.vars, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPage renders the shared workload. AllMiss clears the store
// before each iteration, outside the timer. OneBlockHit and OneBlockFloor
// are a page of one block: their difference is our cost per fragment hit
// beyond Jet's own cost of printing a constant; OneBlockFloor minus
// NoBlock is Jet's cost of that constant. RenderHit is the part of a hit
// spent in fragment.Cache.Render and the store, without Jet.
func BenchmarkPage(b *testing.B) {
	pages := map[string]string{
		"/uncached.jet":  benchPage(benchFragments, inlineBlock),
		"/cached.jet":    benchPage(benchFragments, cachedBlock),
		"/floor.jet":     benchPage(benchFragments, floorBlock),
		"/one-hit.jet":   benchPage(1, cachedBlock),
		"/one-floor.jet": benchPage(1, floorBlock),
		"/none.jet":      benchPage(0, nil),
	}
	b.Run("Uncached", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/uncached.jet", nil) })
	b.Run("AllHit", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/cached.jet", nil) })
	b.Run("AllMiss", func(b *testing.B) {
		s := newBenchSetup(b, pages)
		s.run(b, "/cached.jet", func() {
			b.StopTimer()
			if err := s.store.Clear(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		})
	})
	b.Run("Floor", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/floor.jet", nil) })
	b.Run("OneBlockHit", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/one-hit.jet", nil) })
	b.Run("OneBlockFloor", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/one-floor.jet", nil) })
	b.Run("NoBlock", func(b *testing.B) { newBenchSetup(b, pages).run(b, "/none.jet", nil) })
	b.Run("RenderHit", func(b *testing.B) {
		s := newBenchSetup(b, pages)
		ctx := context.Background()
		call := fragment.Call{Site: &fragment.Site{Path: "one-hit.jet", Line: 2, Col: 1}, Timeout: float64(300), Name: "frag-0"}
		body := func(w io.Writer) error { _, err := io.WriteString(w, "fragment"); return err }
		var out bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			if err := s.fc.Render(ctx, call, &out, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRewrite rewrites a large template (1000 cache blocks among
// 3000 other actions, no comments): the scan must stay linear.
func BenchmarkRewrite(b *testing.B) {
	tags := jettag.New(fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{}), jettag.Options{})
	src := benchPage(1000, func(i int) string {
		return fmt.Sprintf("{{ if x }}%s{{ end }}{{ y }}", cachedBlock(i))
	})
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tags.Rewrite("/big.jet", src); err != nil {
			b.Fatal(err)
		}
	}
}
