package fragment_test

import (
	"context"
	"io"
	"testing"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// benchBody is what a block's body writes; a hit must not call it.
var benchBody = []byte("<ul><li>one</li><li>two</li><li>three</li></ul>")

// Vary values as a template engine holds them after evaluating a block's
// arguments: already in interfaces, and in variables so that the compiler
// cannot fold them into constants.
var (
	benchUserID any = 1000
	benchLang   any = "en"
)

// BenchmarkRenderHit measures a block served from a SimpleCache. Each
// iteration builds its Call and vary_on slice, as an engine does per
// execution, so allocs/op is what a hit costs an engine.
func BenchmarkRenderHit(b *testing.B) {
	site := &fragment.Site{Path: "bench.html", Line: 3, Col: 1}
	cases := []struct {
		name   string
		varyOn func() []any
	}{
		{"named", func() []any { return nil }},
		{"named_vary_int", func() []any { return []any{benchUserID} }},
		{"named_vary_int_string", func() []any { return []any{benchUserID, benchLang} }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
			body := func(w io.Writer) error { _, err := w.Write(benchBody); return err }
			call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar", VaryOn: tc.varyOn()}
			if err := fc.Render(ctx, call, io.Discard, body); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar", VaryOn: tc.varyOn()}
				if err := fc.Render(ctx, call, io.Discard, body); err != nil {
					b.Fatal(err)
				}
			}
			if s := fc.Stats(); s.Renders != 1 {
				b.Fatalf("body rendered %d times, want 1", s.Renders)
			}
		})
	}
}

// BenchmarkRenderHitParallel is BenchmarkRenderHit/named on every P at
// once, as a server's requests render one block: with perfect scaling its
// ns/op is BenchmarkRenderHit's divided by GOMAXPROCS. What keeps it from
// that is the cache lines a hit writes, which move between cores.
func BenchmarkRenderHitParallel(b *testing.B) {
	site := &fragment.Site{Path: "bench.html", Line: 3, Col: 1}
	ctx := context.Background()
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	body := func(w io.Writer) error { _, err := w.Write(benchBody); return err }
	call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar"}
	if err := fc.Render(ctx, call, io.Discard, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fc.Render(ctx, call, io.Discard, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	if s := fc.Stats(); s.Renders != 1 {
		b.Fatalf("body rendered %d times, want 1", s.Renders)
	}
}

// BenchmarkRenderMiss measures a block whose key is new every time: lookup,
// render into a buffer, store, write.
func BenchmarkRenderMiss(b *testing.B) {
	ctx := context.Background()
	site := &fragment.Site{Path: "bench.html", Line: 3, Col: 1}
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	body := func(w io.Writer) error { _, err := w.Write(benchBody); return err }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar", VaryOn: []any{i}}
		if err := fc.Render(ctx, call, io.Discard, body); err != nil {
			b.Fatal(err)
		}
	}
	if s := fc.Stats(); s.Hits != 0 {
		b.Fatalf("%d hits, want none", s.Hits)
	}
}
