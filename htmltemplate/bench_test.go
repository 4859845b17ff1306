package htmltemplate

import (
	"bytes"
	"context"
	"html/template"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// The workload shared by the pongo2, Jet and html/template benchmarks: a
// page of 10 fragments, each a loop over 50 items printing the item's name
// and the user's name.
const benchFragments = 10

type benchItem struct{ Name string }
type benchUser struct{ Name string }
type benchPageData struct {
	Items []benchItem
	User  benchUser
}

func benchData() *benchPageData {
	d := &benchPageData{Items: make([]benchItem, 50), User: benchUser{Name: "alice"}}
	for i := range d.Items {
		d.Items[i] = benchItem{Name: "item-" + strconv.Itoa(i)}
	}
	return d
}

// benchBody reaches the user through $, as Go templates do inside a range;
// the cached variants therefore pass $ to the hoisted body.
const benchBody = `<ul>{{ range .Items }}<li>{{ .Name }} {{ $.User.Name }}</li>{{ end }}</ul>`

// benchPage returns the page with n blocks, each made by block(i).
func benchPage(n int, block func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(block(i))
		b.WriteByte('\n')
	}
	return b.String()
}

func cachedBlock(i int) string {
	return `{{ cache 300 "frag-` + strconv.Itoa(i) + `" }}` + benchBody + `{{ endcache }}`
}
func inlineBlock(int) string { return benchBody }

// floorBlock is html/template's cheapest way to print a constant HTML
// string: a FuncMap function without arguments returning a precomputed
// template.HTML. floorCallBlock calls a function of the same shape as a
// block whose body uses $ ((dot, $) → (template.HTML, error)), so hit minus
// floorCall is what the fragment cache itself costs.
func floorBlock(i int) string     { return `{{ floor` + strconv.Itoa(i) + ` }}` }
func floorCallBlock(i int) string { return `{{ floorCall` + strconv.Itoa(i) + ` . $ }}` }

// floorFuncs returns the floor functions of n blocks, each printing text.
func floorFuncs(n int, text string) template.FuncMap {
	fm := template.FuncMap{}
	html := template.HTML(text)
	for i := range n {
		fm["floor"+strconv.Itoa(i)] = func() template.HTML { return html }
		fm["floorCall"+strconv.Itoa(i)] = func(_, _ any) (template.HTML, error) { return html, nil }
	}
	return fm
}

func newBenchCache() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
}

// benchTemplate parses src with the floor functions of n blocks.
func benchTemplate(b *testing.B, fc *fragment.Cache, n int, src string) *Template {
	b.Helper()
	var body bytes.Buffer
	if err := template.Must(template.New("body").Parse(benchBody)).Execute(&body, benchData()); err != nil {
		b.Fatal(err)
	}
	tpl, err := New("page.html", fc).Funcs(floorFuncs(n, body.String())).Parse(src)
	if err != nil {
		b.Fatal(err)
	}
	return tpl
}

func render(b *testing.B, tpl *Template, data any) string {
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, data); err != nil {
		b.Fatal(err)
	}
	return buf.String()
}

func execute(b *testing.B, tpl *Template, data any) {
	if err := tpl.Execute(io.Discard, data); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPage renders the 10-fragment page. AllMiss clears the store
// before each iteration, outside the timer, so every block misses, renders
// and stores.
func BenchmarkPage(b *testing.B) {
	ctx := context.Background()
	data := benchData()
	uncachedPage := func(b *testing.B) string {
		return render(b, benchTemplate(b, nil, benchFragments, benchPage(benchFragments, inlineBlock)), data)
	}
	cases := []struct {
		name  string
		block func(int) string
	}{
		{"Uncached", inlineBlock},
		{"Floor", floorBlock},
		{"FloorCall", floorCallBlock},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			tpl := benchTemplate(b, nil, benchFragments, benchPage(benchFragments, tc.block))
			if got := render(b, tpl, data); got != uncachedPage(b) {
				b.Fatalf("page differs from the uncached one:\n%s", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				execute(b, tpl, data)
			}
		})
	}
	b.Run("AllHit", func(b *testing.B) {
		fc := newBenchCache()
		tpl := benchTemplate(b, fc, benchFragments, benchPage(benchFragments, cachedBlock))
		if got := render(b, tpl, data); got != uncachedPage(b) {
			b.Fatalf("cached page differs from the uncached one:\n%s", got)
		}
		b.ReportAllocs()
		for b.Loop() {
			execute(b, tpl, data)
		}
		if st := fc.Stats(); st.Renders != benchFragments {
			b.Fatalf("%d renders, want %d (every iteration must hit)", st.Renders, benchFragments)
		}
	})
	b.Run("AllMiss", func(b *testing.B) {
		fc := newBenchCache()
		tpl := benchTemplate(b, fc, benchFragments, benchPage(benchFragments, cachedBlock))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := fc.Store().Clear(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			execute(b, tpl, data)
		}
		if st := fc.Stats(); st.Hits != 0 {
			b.Fatalf("%d hits, want 0", st.Hits)
		}
	})
}

// BenchmarkHitPerFragment renders a page with one block: OneHit with a
// cache block that hits, OneFloor and OneFloorCall with the floor functions
// printing the same text. OneHit minus OneFloor is the cost of one fragment
// hit; OneHit minus OneFloorCall leaves out what html/template spends on
// calling a function of the block's shape.
func BenchmarkHitPerFragment(b *testing.B) {
	data := benchData()
	cases := []struct{ name, args string }{
		{"named", `300 "frag-0"`},
		{"named_vary_on", `300 "frag-0" .User.Name 1000`},
		{"unnamed", `300`},
	}
	for _, tc := range cases {
		b.Run("OneHit/"+tc.name, func(b *testing.B) {
			fc := newBenchCache()
			tpl := benchTemplate(b, fc, 1, `{{ cache `+tc.args+` }}`+benchBody+`{{ endcache }}`)
			execute(b, tpl, data)
			b.ReportAllocs()
			for b.Loop() {
				execute(b, tpl, data)
			}
			if st := fc.Stats(); st.Renders != 1 {
				b.Fatalf("%d renders, want 1", st.Renders)
			}
		})
	}
	b.Run("OneFloor", func(b *testing.B) {
		tpl := benchTemplate(b, nil, 1, floorBlock(0))
		b.ReportAllocs()
		for b.Loop() {
			execute(b, tpl, data)
		}
	})
	b.Run("OneFloorCall", func(b *testing.B) {
		tpl := benchTemplate(b, nil, 1, floorCallBlock(0))
		b.ReportAllocs()
		for b.Loop() {
			execute(b, tpl, data)
		}
	})
}
