package pongo2tag

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// The workload shared by the pongo2, Jet and html/template benchmarks: a
// page of 10 fragments, each a loop over 50 items printing the item's name
// and the user's name.
const benchFragments = 10

type benchItem struct{ Name string }
type benchUser struct{ Name string }

func benchData() pongo2.Context {
	items := make([]benchItem, 50)
	for i := range items {
		items[i] = benchItem{Name: "item-" + strconv.Itoa(i)}
	}
	return pongo2.Context{"items": items, "user": benchUser{Name: "alice"}}
}

const benchBody = `<ul>{% for it in items %}<li>{{ it.Name }} {{ user.Name }}</li>{% endfor %}</ul>`

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
	return `{% cache 300, "frag-` + strconv.Itoa(i) + `" %}` + benchBody + `{% endcache %}`
}
func inlineBlock(int) string  { return benchBody }
func floorBlock(i int) string { return `{% ` + floorTag + ` ` + strconv.Itoa(i) + ` %}` }

// floorTag is pongo2's cheapest way to print a constant: a custom tag whose
// node writes a string fixed at parse time. floorText[i] is what block i
// prints, set before the floor pages are parsed.
const floorTag = "fragcachebenchfloor"

var (
	floorText     []string
	registerFloor = sync.OnceValue(func() error { return pongo2.RegisterTag(floorTag, parseFloor) })
)

type floorNode struct{ s string }

func (n floorNode) Execute(_ *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	w.WriteString(n.s)
	return nil
}

func parseFloor(_ *pongo2.Parser, _ *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	t := args.MatchType(pongo2.TokenNumber)
	i, err := strconv.Atoi(t.Val)
	if err != nil || i >= len(floorText) {
		return nil, args.Error("bad floor index", t)
	}
	return floorNode{floorText[i]}, nil
}

// benchPages parses the page variants; fc is bound to the set.
func benchPages(b *testing.B, fc *fragment.Cache, n int) (cached, inline, floor *pongo2.Template) {
	b.Helper()
	if err := registerOnce(); err != nil {
		b.Fatal(err)
	}
	if err := registerFloor(); err != nil {
		b.Fatal(err)
	}
	set := pongo2.NewSet(b.Name(), pongo2.MustNewLocalFileSystemLoader(""))
	Bind(set, fc)
	parse := func(src string) *pongo2.Template {
		tpl, err := set.FromString(src)
		if err != nil {
			b.Fatal(err)
		}
		return tpl
	}
	body, err := parse(benchBody).Execute(benchData())
	if err != nil {
		b.Fatal(err)
	}
	floorText = make([]string, n)
	for i := range floorText {
		floorText[i] = body
	}
	return parse(benchPage(n, cachedBlock)), parse(benchPage(n, inlineBlock)), parse(benchPage(n, floorBlock))
}

func execute(b *testing.B, tpl *pongo2.Template, data pongo2.Context) {
	if err := tpl.ExecuteWriter(data, io.Discard); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPage renders the 10-fragment page. AllMiss clears the store
// before each iteration, outside the timer, so every block misses, renders
// and stores.
func BenchmarkPage(b *testing.B) {
	ctx := context.Background()
	data := benchData()
	newFC := func() *fragment.Cache {
		return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	}
	b.Run("Uncached", func(b *testing.B) {
		_, inline, _ := benchPages(b, newFC(), benchFragments)
		b.ReportAllocs()
		for b.Loop() {
			execute(b, inline, data)
		}
	})
	b.Run("AllHit", func(b *testing.B) {
		fc := newFC()
		cached, inline, _ := benchPages(b, fc, benchFragments)
		want, _ := inline.Execute(data)
		if got, _ := cached.Execute(data); got != want {
			b.Fatalf("cached page differs from the uncached one")
		}
		b.ReportAllocs()
		for b.Loop() {
			execute(b, cached, data)
		}
		if st := fc.Stats(); st.Renders != benchFragments {
			b.Fatalf("%d renders, want %d (every iteration must hit)", st.Renders, benchFragments)
		}
	})
	b.Run("AllMiss", func(b *testing.B) {
		fc := newFC()
		cached, _, _ := benchPages(b, fc, benchFragments)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := fc.Store().Clear(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			execute(b, cached, data)
		}
		if st := fc.Stats(); st.Hits != 0 {
			b.Fatalf("%d hits, want 0", st.Hits)
		}
	})
	b.Run("Floor", func(b *testing.B) {
		_, inline, floor := benchPages(b, newFC(), benchFragments)
		want, _ := inline.Execute(data)
		if got, _ := floor.Execute(data); got != want {
			b.Fatalf("floor page differs from the uncached one")
		}
		b.ReportAllocs()
		for b.Loop() {
			execute(b, floor, data)
		}
	})
}

// BenchmarkHitPerFragment renders a page with one block: OneHit with a
// cache block that hits, OneFloor with the floor tag printing the same
// text. OneHit minus OneFloor is the cost of one fragment hit.
func BenchmarkHitPerFragment(b *testing.B) {
	data := benchData()
	cases := []struct {
		name   string
		varyOn string
	}{
		{"named", ""},
		{"named_vary_on", ", user.Name, 1000"},
	}
	for _, tc := range cases {
		b.Run("OneHit/"+tc.name, func(b *testing.B) {
			fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
			_, _, _ = benchPages(b, fc, 1)
			set := pongo2.NewSet(b.Name(), pongo2.MustNewLocalFileSystemLoader(""))
			Bind(set, fc)
			tpl, err := set.FromString(`{% cache 300, "frag-0"` + tc.varyOn + ` %}` + benchBody + `{% endcache %}`)
			if err != nil {
				b.Fatal(err)
			}
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
		_, _, floor := benchPages(b, nil, 1)
		b.ReportAllocs()
		for b.Loop() {
			execute(b, floor, data)
		}
	})
}

// BenchmarkNode executes one block alone: Hit is a cache block that hits,
// Floor the floor tag's node printing the same text. Their difference is
// what a fragment hit costs beyond printing its text.
func BenchmarkNode(b *testing.B) {
	data := benchData()
	cases := []struct{ name, args string }{
		{"Hit/named", `300, "frag-0"`},
		{"Hit/named_vary_on", `300, "frag-0", user.Name, 1000`},
		{"Hit/unnamed", `300`},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
			n := parseNode(b, tc.args, benchBody)
			ctx := &pongo2.ExecutionContext{Public: pongo2.Context{ContextKey: fc}.Update(data), Private: pongo2.Context{}}
			var buf bytes.Buffer
			if err := n.Execute(ctx, &buf); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := n.Execute(ctx, &buf); err != nil {
					b.Fatal(err)
				}
			}
			if st := fc.Stats(); st.Renders != 1 {
				b.Fatalf("%d renders, want 1", st.Renders)
			}
		})
	}
	b.Run("Floor", func(b *testing.B) {
		body, err := pongo2.FromString(benchBody)
		if err != nil {
			b.Fatal(err)
		}
		text, err := body.Execute(data)
		if err != nil {
			b.Fatal(err)
		}
		var n pongo2.INode = floorNode{text}
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := n.Execute(nil, &buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPageBinding renders internal/enginebench's all-hit page (10
// blocks varying on a string user) the ways a render can bind the cache
// and the request's context, into a bytes.Buffer: each binding is a
// context key that pongo2 copies and checks on every page.
func BenchmarkPageBinding(b *testing.B) {
	ctx := context.Background()
	data := benchData()
	data["user"] = "alice"
	src := benchPage(benchFragments, func(i int) string {
		return `{% cache 300, "frag-` + strconv.Itoa(i) + `", user %}<ul>{% for it in items %}<li>{{ it.Name }} {{ user }}</li>{% endfor %}</ul>{% endcache %}`
	})
	if err := registerOnce(); err != nil {
		b.Fatal(err)
	}
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	parse := func(bind bool) *pongo2.Template {
		set := pongo2.NewSet(b.Name()+strconv.FormatBool(bind), pongo2.MustNewLocalFileSystemLoader(""))
		if bind {
			Bind(set, fc)
		}
		tpl, err := set.FromString(src)
		if err != nil {
			b.Fatal(err)
		}
		return tpl
	}
	bound, alone := parse(true), parse(false)
	cases := []struct {
		name   string
		render func(w *bytes.Buffer) error
	}{
		{"Bind+WithContext", func(w *bytes.Buffer) error { return bound.ExecuteWriterUnbuffered(WithContext(data, ctx), w) }},
		{"With", func(w *bytes.Buffer) error { return alone.ExecuteWriterUnbuffered(With(ctx, fc, data), w) }},
		{"Execute", func(w *bytes.Buffer) error { return Execute(ctx, fc, alone, data, w) }},
		// Any writer but a *bytes.Buffer (an http.ResponseWriter) gets the
		// page from a pooled buffer once it is complete: one more copy.
		{"Execute/io.Writer", func(w *bytes.Buffer) error { return Execute(ctx, fc, alone, data, struct{ io.Writer }{w}) }},
		{"Bind+Execute", func(w *bytes.Buffer) error { return Execute(ctx, fc, bound, data, w) }},
	}
	var want string
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var buf bytes.Buffer
			if err := tc.render(&buf); err != nil {
				b.Fatal(err)
			}
			if want == "" {
				want = buf.String()
			} else if buf.String() != want {
				b.Fatal("the page differs from the first case's")
			}
			renders := fc.Stats().Renders
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				if err := tc.render(&buf); err != nil {
					b.Fatal(err)
				}
			}
			if fc.Stats().Renders != renders {
				b.Fatal("a block missed")
			}
		})
	}
}
