package backends_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/CloudyKit/jet/v6"
	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
	"github.com/fragcache/fragcache/internal/testservers"
	"github.com/fragcache/fragcache/jettag"
	"github.com/fragcache/fragcache/pongo2tag"
)

// benchUWSGI starts a server with uWSGI's default item size and returns a
// backend for it.
func benchUWSGI(b *testing.B, opts backends.UWSGIOptions) *backends.UWSGI {
	b.Helper()
	srv := testservers.UWSGI(b)
	opts.Addr, opts.Cache = srv.Addr, testservers.UWSGICacheName
	u, err := backends.NewUWSGI(opts)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// BenchmarkUWSGI measures single operations against a real uWSGI server on
// loopback: each opens and closes a TCP connection. "namespaced" keys are in
// a declared namespace whose token the backend has cached (the default);
// "token_every_op" reads the token on every operation.
func BenchmarkUWSGI(b *testing.B) {
	ctx := context.Background()
	sizes := []int{100, 4 << 10}
	variants := []struct {
		name string
		opts backends.UWSGIOptions
		key  string
	}{
		{"plain", backends.UWSGIOptions{}, "key"},
		{"namespaced", backends.UWSGIOptions{Namespaces: []string{"ns:"}}, "ns:key"},
		{"token_every_op", backends.UWSGIOptions{Namespaces: []string{"ns:"}, NamespaceRefresh: -1}, "ns:key"},
	}
	for _, v := range variants {
		u := benchUWSGI(b, v.opts)
		for _, size := range sizes {
			value := bytes.Repeat([]byte("v"), size)
			b.Run(fmt.Sprintf("Get/%s/%dB", v.name, size), func(b *testing.B) {
				if err := u.Set(ctx, v.key, value, 0); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, found, err := u.Get(ctx, v.key); err != nil || !found {
						b.Fatal(found, err)
					}
				}
			})
			b.Run(fmt.Sprintf("Set/%s/%dB", v.name, size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if err := u.Set(ctx, v.key, value, time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("GetParallel/plain/100B", func(b *testing.B) {
		u := benchUWSGI(b, backends.UWSGIOptions{})
		if err := u.Set(ctx, "key", make([]byte, 100), 0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, found, err := u.Get(ctx, "key"); err != nil || !found {
					b.Error(found, err)
					return
				}
			}
		})
	})
	b.Run("GetMany/plain/10x100B", func(b *testing.B) {
		u := benchUWSGI(b, backends.UWSGIOptions{})
		keys := make([]string, 10)
		for i := range keys {
			keys[i] = "key" + strconv.Itoa(i)
			if err := u.Set(ctx, keys[i], make([]byte, 100), 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := u.GetMany(ctx, keys); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The fragment page workload of the engine packages' BenchmarkPage/AllHit:
// a page of 10 cache blocks, each a loop over 50 items printing the item's
// name and the user's name, every block a hit, here served by uWSGI.
const (
	uwsgiPageFragments = 10
	uwsgiPageItems     = 50
)

type uwsgiPageItem struct{ Name string }
type uwsgiPageUser struct{ Name string }

func uwsgiPageData() ([]uwsgiPageItem, uwsgiPageUser) {
	items := make([]uwsgiPageItem, uwsgiPageItems)
	for i := range items {
		items[i] = uwsgiPageItem{Name: "item-" + strconv.Itoa(i)}
	}
	return items, uwsgiPageUser{Name: "alice"}
}

// uwsgiPage returns a page of uwsgiPageFragments blocks, each block(i).
func uwsgiPage(block func(i int) string) string {
	var b strings.Builder
	for i := range uwsgiPageFragments {
		b.WriteString(block(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// BenchmarkUWSGIPage renders the fragment page workload with every block a
// hit in uWSGI, in each template engine; the page's blocks are fetched one
// after another, so a page costs about ten round trips.
func BenchmarkUWSGIPage(b *testing.B) {
	items, user := uwsgiPageData()
	engines := []struct {
		name  string
		setup func(b *testing.B, fc *fragment.Cache) func(w io.Writer) error
	}{
		{"htmltemplate", func(b *testing.B, fc *fragment.Cache) func(w io.Writer) error {
			const body = `<ul>{{ range .Items }}<li>{{ .Name }} {{ $.User.Name }}</li>{{ end }}</ul>`
			src := uwsgiPage(func(i int) string { return `{{ cache 300 "frag-` + strconv.Itoa(i) + `" }}` + body + `{{ endcache }}` })
			tpl, err := htmltemplate.New("page.html", fc).Parse(src)
			if err != nil {
				b.Fatal(err)
			}
			data := struct {
				Items []uwsgiPageItem
				User  uwsgiPageUser
			}{items, user}
			return func(w io.Writer) error { return tpl.Execute(w, data) }
		}},
		{"jet", func(b *testing.B, fc *fragment.Cache) func(w io.Writer) error {
			const body = `<ul>{{ range _, it := items }}<li>{{ it.Name }} {{ user.Name }}</li>{{ end }}</ul>`
			views := jet.NewInMemLoader()
			views.Set("/page.jet", uwsgiPage(func(i int) string { return fmt.Sprintf(`{{ cache 300, "frag-%d" }}%s{{ endcache }}`, i, body) }))
			set, err := jettag.New(fc, jettag.Options{}).NewSet(views)
			if err != nil {
				b.Fatal(err)
			}
			tpl, err := set.GetTemplate("/page.jet")
			if err != nil {
				b.Fatal(err)
			}
			vars := jet.VarMap{}.Set("items", items).Set("user", user)
			return func(w io.Writer) error { return tpl.Execute(w, vars, nil) }
		}},
		{"pongo2", func(b *testing.B, fc *fragment.Cache) func(w io.Writer) error {
			const body = `<ul>{% for it in items %}<li>{{ it.Name }} {{ user.Name }}</li>{% endfor %}</ul>`
			if err := pongo2tag.Register(pongo2tag.Options{}); err != nil {
				b.Fatal(err)
			}
			set := pongo2.NewSet(b.Name(), pongo2.MustNewLocalFileSystemLoader(""))
			pongo2tag.Bind(set, fc)
			tpl, err := set.FromString(uwsgiPage(func(i int) string {
				return `{% cache 300, "frag-` + strconv.Itoa(i) + `" %}` + body + `{% endcache %}`
			}))
			if err != nil {
				b.Fatal(err)
			}
			data := pongo2.Context{"items": items, "user": user}
			return func(w io.Writer) error { return tpl.ExecuteWriter(data, w) }
		}},
	}
	for _, e := range engines {
		b.Run(e.name+"/AllHit", func(b *testing.B) {
			store := backends.New(benchUWSGI(b, backends.UWSGIOptions{}), backends.Options{})
			fc := fragment.New(store, fragment.Options{})
			render := e.setup(b, fc)
			var page bytes.Buffer
			if err := render(&page); err != nil { // fills the cache
				b.Fatal(err)
			}
			b.SetBytes(int64(page.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if err := render(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			if st := fc.Stats(); st.Renders != uwsgiPageFragments || st.BackendErrors != 0 {
				b.Fatalf("%d renders and %d backend errors, want %d and 0 (every iteration must hit)", st.Renders, st.BackendErrors, uwsgiPageFragments)
			}
		})
	}
}
