// Package pagebench is the fragment page workload the backend families'
// benchmarks share: the same page of ten cached blocks in each template
// engine (pongo2, Jet, html/template), rendered all-hit over a given
// backend. It exists so that the backends packages' own tests need not
// import fragment or an engine; it may import backends, fragment and the
// engine packages, and is imported only by tests.
package pagebench

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/CloudyKit/jet/v6"
	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
	"github.com/fragcache/fragcache/jettag"
	"github.com/fragcache/fragcache/pongo2tag"
)

// Parallelism is how many goroutines per CPU the Parallel benchmarks
// run: a web server renders many pages at once, each mostly waiting on the
// network.
const Parallelism = 8

// The fragment page workload of the engine packages' benchmarks, mirrored
// here (their helpers live in their own test packages) so that every
// backend's benchmark renders the same pages: a page of 10
// blocks named "frag-i", timeout 300, each a loop over 50 items printing the
// item's name and the user's name.
const (
	pageFragments = 10
	pageItems     = 50
)

type pageItem struct{ Name string }
type pageUser struct{ Name string }

func pageItemList() []pageItem {
	items := make([]pageItem, pageItems)
	for i := range items {
		items[i] = pageItem{Name: "item-" + strconv.Itoa(i)}
	}
	return items
}

// pageSource returns the page: blocks made by block(i), one per line.
func pageSource(block func(i int) string) string {
	var b strings.Builder
	for i := range pageFragments {
		b.WriteString(block(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// pageEngine renders the all-hit page in one template engine over fc.
type pageEngine struct {
	name    string
	prepare func(b *testing.B, fc *fragment.Cache) (render func(w io.Writer) error)
}

var registerPongo2 = sync.OnceValue(func() error { return pongo2tag.Register(pongo2tag.Options{}) })

var pageEngines = []pageEngine{
	{"pongo2", func(b *testing.B, fc *fragment.Cache) func(io.Writer) error {
		if err := registerPongo2(); err != nil {
			b.Fatal(err)
		}
		set := pongo2.NewSet(b.Name(), pongo2.MustNewLocalFileSystemLoader(""))
		pongo2tag.Bind(set, fc)
		tpl, err := set.FromString(pageSource(func(i int) string {
			return `{% cache 300, "frag-` + strconv.Itoa(i) + `" %}<ul>{% for it in items %}<li>{{ it.Name }} {{ user.Name }}</li>{% endfor %}</ul>{% endcache %}`
		}))
		if err != nil {
			b.Fatal(err)
		}
		data := pongo2.Context{"items": pageItemList(), "user": pageUser{Name: "alice"}}
		if fc.Batches() {
			return func(w io.Writer) error { return pongo2tag.Execute(context.Background(), fc, tpl, data, w) }
		}
		return func(w io.Writer) error { return tpl.ExecuteWriter(data, w) }
	}},
	{"jet", func(b *testing.B, fc *fragment.Cache) func(io.Writer) error {
		views := jet.NewInMemLoader()
		views.Set("/page.jet", pageSource(func(i int) string {
			return `{{ cache 300, "frag-` + strconv.Itoa(i) + `" }}<ul>{{ range _, it := items }}<li>{{ it.Name }} {{ user.Name }}</li>{{ end }}</ul>{{ endcache }}`
		}))
		tags := jettag.New(fc, jettag.Options{})
		set, err := tags.NewSet("views", views)
		if err != nil {
			b.Fatal(err)
		}
		tpl, err := set.GetTemplate("/page.jet")
		if err != nil {
			b.Fatal(err)
		}
		vars := jet.VarMap{}.Set("items", pageItemList()).Set("user", pageUser{Name: "alice"})
		if fc.Batches() {
			return func(w io.Writer) error { return tags.Execute(context.Background(), tpl, w, vars, nil) }
		}
		return func(w io.Writer) error { return tpl.Execute(w, vars, nil) }
	}},
	{"html-template", func(b *testing.B, fc *fragment.Cache) func(io.Writer) error {
		tpl, err := htmltemplate.New("page.html", fc).Parse(pageSource(func(i int) string {
			return `{{ cache 300 "frag-` + strconv.Itoa(i) + `" }}<ul>{{ range .Items }}<li>{{ .Name }} {{ $.User.Name }}</li>{{ end }}</ul>{{ endcache }}`
		}))
		if err != nil {
			b.Fatal(err)
		}
		data := struct {
			Items []pageItem
			User  pageUser
		}{pageItemList(), pageUser{Name: "alice"}}
		return func(w io.Writer) error { return tpl.Execute(w, data) }
	}},
}

// Run renders the page of every engine over backend with every block
// a hit: serially, and with parallel also from Parallelism goroutines
// per CPU. Sub-benchmarks are named engine/label/AllHit/Serial|Parallel.
func Run(b *testing.B, label string, backend backends.Backend, parallel bool) {
	modes := []bool{false}
	if parallel {
		modes = append(modes, true)
	}
	for _, e := range pageEngines {
		for _, parallel := range modes {
			mode := "Serial"
			if parallel {
				mode = "Parallel"
			}
			b.Run(e.name+"/"+label+"/AllHit/"+mode, func(b *testing.B) {
				if err := backend.Clear(context.Background(), ""); err != nil {
					b.Fatal(err)
				}
				fc := fragment.New(backends.New(backend, backends.CacheOptions{}), fragment.Options{})
				render := e.prepare(b, fc)
				var first bytes.Buffer
				if err := render(&first); err != nil { // fills the cache
					b.Fatal(err)
				}
				b.SetBytes(int64(first.Len()))
				b.ReportAllocs()
				if parallel {
					b.SetParallelism(Parallelism)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := render(io.Discard); err != nil {
								b.Error(err)
								return
							}
						}
					})
				} else {
					for b.Loop() {
						if err := render(io.Discard); err != nil {
							b.Fatal(err)
						}
					}
				}
				if s := fc.Stats(); s.Renders != pageFragments || s.BackendErrors != 0 {
					b.Fatalf("%d renders and %d backend errors, want %d and 0 (every block after the first page must hit)",
						s.Renders, s.BackendErrors, pageFragments)
				}
			})
		}
	}
}

// RunBatching renders the page of every engine over backend serially, with
// every block a hit (AllHit) and with every block a miss (AllMiss: the
// store is cleared before each page, outside the timer), with the blocks
// looking themselves up (Direct, fragment.BatchOff) and through
// fragment.Cache.Page (Batched, fragment.BatchOn). Sub-benchmarks are
// named label/engine/AllHit|AllMiss/Direct|Batched. roundTrips, if not nil,
// returns the round trips made since its last call (a go-redis hook's
// count), reported per page; clearing the store must cost one.
func RunBatching(b *testing.B, label string, backend backends.Backend, roundTrips func() int) {
	for _, e := range pageEngines {
		for _, hit := range []bool{true, false} {
			for _, mode := range []struct {
				name  string
				batch fragment.BatchMode
			}{{"Direct", fragment.BatchOff}, {"Batched", fragment.BatchOn}} {
				state := "AllHit"
				if !hit {
					state = "AllMiss"
				}
				b.Run(label+"/"+e.name+"/"+state+"/"+mode.name, func(b *testing.B) {
					ctx := context.Background()
					if err := backend.Clear(ctx, ""); err != nil {
						b.Fatal(err)
					}
					fc := fragment.New(backends.New(backend, backends.CacheOptions{}), fragment.Options{Batch: mode.batch})
					render := e.prepare(b, fc)
					var first bytes.Buffer
					if err := render(&first); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(first.Len()))
					b.ReportAllocs()
					if roundTrips != nil {
						roundTrips()
					}
					for b.Loop() {
						if !hit {
							b.StopTimer()
							if err := backend.Clear(ctx, ""); err != nil {
								b.Fatal(err)
							}
							b.StartTimer()
						}
						if err := render(io.Discard); err != nil {
							b.Fatal(err)
						}
					}
					if roundTrips != nil {
						n := roundTrips()
						if !hit {
							n -= b.N // the Clear before each page
						}
						b.ReportMetric(float64(n)/float64(b.N), "roundtrips/page")
					}
					if s := fc.Stats(); s.BackendErrors != 0 {
						b.Fatalf("%d backend errors", s.BackendErrors)
					}
				})
			}
		}
	}
}

// Renderer returns the all-hit page of the engine named engine ("pongo2",
// "jet" or "html-template") over fc, for benchmarks that time renders
// themselves (interleaving several backends in one loop).
func Renderer(b *testing.B, engine string, fc *fragment.Cache) func(w io.Writer) error {
	for _, e := range pageEngines {
		if e.name == engine {
			return e.prepare(b, fc)
		}
	}
	b.Fatalf("pagebench: no engine %q", engine)
	return nil
}
