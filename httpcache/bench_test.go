package httpcache

import (
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/redis" // RedisCache
	"github.com/fragcache/fragcache/internal/testservers"
)

// listing stands for a typical uncached page: an html/template render of
// 50 products, about 5 KiB of HTML.
var listing = template.Must(template.New("list").Parse(
	`<html><body><h1>{{.Title}}</h1><ul>{{range .Items}}<li><a href="/p/{{.ID}}">{{.Name}}</a> {{printf "%.2f" .Price}}</li>{{end}}</ul></body></html>`))

type product struct {
	ID    int
	Name  string
	Price float64
}

func listingHandler() http.Handler {
	items := make([]product, 50)
	for i := range items {
		items[i] = product{ID: i, Name: fmt.Sprintf("Product <%d>", i), Price: float64(i) * 1.25}
	}
	data := struct {
		Title string
		Items []product
	}{"Lamps", items}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := listing.Execute(w, data); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
}

// discard is a ResponseWriter that throws the response away, so the
// benchmarks measure the handler and the cache, not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func benchServe(b *testing.B, h http.Handler) {
	req := httptest.NewRequest("GET", "/lamps?page=2&sort=price", nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req) // fill the cache
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

func BenchmarkHandler(b *testing.B) {
	b.Run("uncached", func(b *testing.B) { benchServe(b, listingHandler()) })

	simple := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	b.Run("hit/simple", func(b *testing.B) { benchServe(b, New(simple, Options{}).Middleware(listingHandler())) })

	srv := testservers.Redis(b)
	redis, err := backends.Open(backends.Config{Type: "RedisCache", Settings: map[string]any{"CACHE_REDIS_URL": "redis://" + srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = redis.Close() })
	b.Run("hit/redis", func(b *testing.B) { benchServe(b, New(redis, Options{}).Middleware(listingHandler())) })

	b.Run("hit/simple/parallel", func(b *testing.B) {
		h := New(simple, Options{}).Middleware(listingHandler())
		req := httptest.NewRequest("GET", "/lamps", nil)
		h.ServeHTTP(&discard{h: http.Header{}}, req)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &discard{h: http.Header{}}
			for pb.Next() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	})
}
