package httpcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/httpcache"
)

// get serves one GET through h, as a client would see it.
func get(h http.Handler, target string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	fmt.Printf("%s %s: %q\n", target, rec.Header().Get("X-Cache"), rec.Body.String())
}

// The middleware wraps any handler. The first request for a URL runs the
// handler and stores its response; later ones are served from the cache.
func ExampleCache_Middleware() {
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	views := httpcache.New(cache, httpcache.Options{Timeout: time.Minute})

	runs := 0
	product := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		fmt.Fprintf(w, "product %s (render %d)", r.PathValue("id"), runs)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /products/{id}", views.Middleware(product))

	get(mux, "/products/7")
	get(mux, "/products/7")
	get(mux, "/products/7?ref=mail") // the query is part of the key
	get(mux, "/products/8")
	// Output:
	// /products/7 MISS: "product 7 (render 1)"
	// /products/7 HIT: "product 7 (render 1)"
	// /products/7?ref=mail MISS: "product 7 (render 2)"
	// /products/8 MISS: "product 8 (render 3)"
}

// A handler chooses how long its own response is stored, Flask's
// CachedResponse: here a sold-out page for a minute only.
func ExampleSetTimeout() {
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	views := httpcache.New(cache, httpcache.Options{Timeout: time.Hour})

	h := views.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sku") == "lamp" {
			httpcache.SetTimeout(w, time.Minute)
			io.WriteString(w, "sold out")
			return
		}
		io.WriteString(w, "in stock")
	}))
	get(h, "/stock?sku=lamp")
	get(h, "/stock?sku=lamp")
	// Output:
	// /stock?sku=lamp MISS: "sold out"
	// /stock?sku=lamp HIT: "sold out"
}

// Responses that belong to one user are never stored: here the handler
// sets a cookie, so every request runs it.
func ExampleCache_Middleware_private() {
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	views := httpcache.New(cache, httpcache.Options{})

	visits := 0
	h := views.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		visits++
		http.SetCookie(w, &http.Cookie{Name: "visit", Value: fmt.Sprint(visits)})
		fmt.Fprintf(w, "welcome, visitor %d", visits)
	}))
	get(h, "/welcome")
	get(h, "/welcome")
	fmt.Printf("%+v\n", views.Stats())
	// Output:
	// /welcome MISS: "welcome, visitor 1"
	// /welcome MISS: "welcome, visitor 2"
	// {Hits:0 Misses:2 Runs:2 Waits:0 Bypasses:0 NotStored:2 BackendErrors:0 BadEntries:0 Skips:0 Breaker:closed}
}

// After the data behind a page changes, Delete removes its stored
// response. The scheme and host are part of the key; the query arguments
// may come in any order of names.
func ExampleCache_Delete() {
	cache := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{})
	views := httpcache.New(cache, httpcache.Options{})

	price := "9.99"
	h := views.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "price %s", price)
	}))
	get(h, "/price?sku=lamp&cur=EUR")
	price = "7.99"
	get(h, "/price?sku=lamp&cur=EUR")
	if _, err := views.Delete(context.Background(), "http://example.com/price?cur=EUR&sku=lamp"); err != nil {
		fmt.Println(err)
	}
	get(h, "/price?sku=lamp&cur=EUR")
	// Output:
	// /price?sku=lamp&cur=EUR MISS: "price 9.99"
	// /price?sku=lamp&cur=EUR HIT: "price 9.99"
	// /price?sku=lamp&cur=EUR MISS: "price 7.99"
}
