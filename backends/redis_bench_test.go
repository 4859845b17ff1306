package backends_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CloudyKit/jet/v6"
	"github.com/flosch/pongo2/v6"
	"github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
	"github.com/fragcache/fragcache/internal/testservers"
	"github.com/fragcache/fragcache/jettag"
	"github.com/fragcache/fragcache/pongo2tag"
)

// redisBenchValue is the size of a typical stored fragment: one block of
// the page workload below is about 1.2 KB.
const redisBenchValue = 1200

// redisBenchKeys is how many keys GetMany reads: the blocks of one page.
const redisBenchKeys = 10

// redisBenchOps returns each operation through fragcache (a backends.Cache
// over NewRedis) and as the equivalent raw go-redis call, on one client
// against one real server, so that a pair differs only by fragcache's own
// work: the key prefix, the value envelope and the Backend call.
func redisBenchOps(b *testing.B) []redisBenchPair {
	srv := testservers.Redis(b)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	cache := backends.New(backends.NewRedis(client), backends.Options{KeyPrefix: "p:", DefaultTimeout: 300 * time.Second})
	value := bytes.Repeat([]byte("x"), redisBenchValue)
	keys := make([]string, redisBenchKeys)
	rawKeys := make([]string, redisBenchKeys)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		rawKeys[i] = "p:" + keys[i]
		if err := cache.Set(ctx, keys[i], value); err != nil {
			b.Fatal(err)
		}
	}
	return []redisBenchPair{
		{"Get",
			func() error {
				v, err := cache.GetValue(ctx, keys[0])
				if err == nil && !v.Found() {
					err = fmt.Errorf("miss")
				}
				return err
			},
			func() error { _, err := client.Get(ctx, rawKeys[0]).Bytes(); return err }},
		{"Set",
			func() error { return cache.Set(ctx, keys[1], value) },
			func() error { return client.Set(ctx, rawKeys[1], value, 300*time.Second).Err() }},
		{"GetMany",
			func() error { _, err := cache.GetMany(ctx, keys...); return err },
			func() error { _, err := client.MGet(ctx, rawKeys...).Result(); return err }},
	}
}

type redisBenchPair struct {
	name               string
	fragcache, goRedis func() error
}

// benchParallelism is how many goroutines per CPU the Parallel benchmarks
// run: a web server renders many pages at once, each mostly waiting on the
// network.
const benchParallelism = 8

// BenchmarkRedis runs each operation pair as separate benchmarks: Serial
// on one goroutine (latency), Parallel with b.RunParallel and
// benchParallelism goroutines per CPU (throughput, where CPU overhead shows
// more).
func BenchmarkRedis(b *testing.B) {
	pairs := redisBenchOps(b)
	run := func(b *testing.B, parallel bool, op func() error) {
		b.ReportAllocs()
		if parallel {
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"Serial", "Parallel"} {
		for _, p := range pairs {
			b.Run(mode+"/"+p.name+"/fragcache", func(b *testing.B) { run(b, mode == "Parallel", p.fragcache) })
			b.Run(mode+"/"+p.name+"/go-redis", func(b *testing.B) { run(b, mode == "Parallel", p.goRedis) })
		}
	}
}

// BenchmarkRedisOverhead alternates the two sides of each pair in one loop
// and times each side, so that load from elsewhere on the machine falls on
// both alike; it reports each side's ns per call and fragcache's overhead
// in percent. ns/op is the pair.
func BenchmarkRedisOverhead(b *testing.B) {
	for _, p := range redisBenchOps(b) {
		b.Run(p.name, func(b *testing.B) {
			var fc, raw time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := p.fragcache(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := p.goRedis(); err != nil {
					b.Fatal(err)
				}
				fc, raw = fc+t1.Sub(t0), raw+time.Since(t1)
			}
			b.ReportMetric(float64(fc.Nanoseconds())/float64(b.N), "fragcache-ns/call")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "go-redis-ns/call")
			b.ReportMetric(100*(float64(fc)/float64(raw)-1), "overhead-%")
		})
	}
}

// The fragment page workload of the engine packages' benchmarks, mirrored
// here because their helpers live in their own test packages: a page of 10
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
		return func(w io.Writer) error { return tpl.ExecuteWriter(data, w) }
	}},
	{"jet", func(b *testing.B, fc *fragment.Cache) func(io.Writer) error {
		views := jet.NewInMemLoader()
		views.Set("/page.jet", pageSource(func(i int) string {
			return `{{ cache 300, "frag-` + strconv.Itoa(i) + `" }}<ul>{{ range _, it := items }}<li>{{ it.Name }} {{ user.Name }}</li>{{ end }}</ul>{{ endcache }}`
		}))
		set, err := jettag.New(fc, jettag.Options{}).NewSet(views)
		if err != nil {
			b.Fatal(err)
		}
		tpl, err := set.GetTemplate("/page.jet")
		if err != nil {
			b.Fatal(err)
		}
		vars := jet.VarMap{}.Set("items", pageItemList()).Set("user", pageUser{Name: "alice"})
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

// BenchmarkRedisPage renders the 10-fragment page with every block a hit,
// per engine: on Redis serially (ten GET round trips per page) and in
// parallel (benchParallelism goroutines per CPU), and on SimpleCache for
// comparison in the same run.
func BenchmarkRedisPage(b *testing.B) {
	srv := testservers.Redis(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	stores := []struct {
		name    string
		backend backends.Backend
	}{
		{"Simple", backends.NewSimple(0)},
		{"Redis", backends.NewRedis(client)},
	}
	for _, e := range pageEngines {
		for _, st := range stores {
			for _, parallel := range []bool{false, true} {
				mode := "Serial"
				if parallel {
					mode = "Parallel"
				}
				b.Run(e.name+"/"+st.name+"/AllHit/"+mode, func(b *testing.B) {
					if err := st.backend.Clear(context.Background(), ""); err != nil {
						b.Fatal(err)
					}
					fc := fragment.New(backends.New(st.backend, backends.Options{}), fragment.Options{})
					render := e.prepare(b, fc)
					var first bytes.Buffer
					if err := render(&first); err != nil { // fills the cache
						b.Fatal(err)
					}
					b.SetBytes(int64(first.Len()))
					b.ReportAllocs()
					if parallel {
						b.SetParallelism(benchParallelism)
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
					if s := fc.Stats(); s.Renders != pageFragments {
						b.Fatalf("%d renders, want %d (every block after the first page must hit)", s.Renders, pageFragments)
					}
				})
			}
		}
	}
}
