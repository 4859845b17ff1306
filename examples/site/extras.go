package main

import (
	"context"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/httpcache"
	"github.com/fragcache/fragcache/memoize"
)

// extras are the pages that show the two other caches over the same
// store: memoize (a function's results by argument) and httpcache (whole
// responses, with an X-Cache header).
type extras struct {
	shop   *Shop
	logger *slog.Logger

	top     *memoize.Memoized[int, Bestsellers] // the n most expensive products
	runs    atomic.Uint64                       // executions of the memoized function
	views   *httpcache.Cache
	apiRuns atomic.Uint64 // executions of the cached JSON handler
}

// Bestsellers is what the memoized function returns: it survives the
// cache's codec, so only exported fields.
type Bestsellers struct {
	Products   []Product
	ComputedAt string
}

// bestsellersPath is the JSON endpoint the httpcache middleware caches.
const bestsellersPath = "/api/bestsellers.json"

func newExtras(shop *Shop, store *backends.Cache, logger *slog.Logger) *extras {
	x := &extras{shop: shop, logger: logger}
	x.top = memoize.Func(store, x.bestsellers, memoize.Options{Name: "demo.bestsellers", Timeout: 5 * time.Minute})
	x.views = httpcache.New(store, httpcache.Options{Timeout: 5 * time.Minute})
	return x
}

// ranKey marks a request's context so the memoized function can tell the
// page it ran for this request (a miss).
type ranKey struct{}

// bestsellers runs the slow products query and keeps the n most expensive.
func (x *extras) bestsellers(ctx context.Context, n int) (Bestsellers, error) {
	x.runs.Add(1)
	if ran, ok := ctx.Value(ranKey{}).(*atomic.Bool); ok {
		ran.Store(true)
	}
	ps := x.shop.Products(ctx, "")
	slices.SortFunc(ps, func(a, b Product) int { return b.PriceCents - a.PriceCents })
	return Bestsellers{Products: ps[:min(n, len(ps))], ComputedAt: time.Now().Format("15:04:05.000")}, nil
}

func (x *extras) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /memoize", x.memoizePage)
	mux.HandleFunc("POST /memoize/forget", x.memoizeForget)
	mux.HandleFunc("GET /httpcache", x.httpcachePage)
	mux.HandleFunc("POST /httpcache/purge", x.httpcachePurge)
	mux.Handle("GET "+bestsellersPath, x.views.Middleware(http.HandlerFunc(x.bestsellersJSON)))
}

var memoizeTmpl = template.Must(template.New("memoize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>memoize · fragcache shop</title>
<link rel="stylesheet" href="/static/site.css"></head><body>
<header><a class="brand" href="/">fragcache shop</a><nav class="extras"><a href="/memoize">memoize</a> <a href="/httpcache">httpcache</a> <a href="/metrics">/metrics</a></nav></header>
<div class="layout"><main>
<h1>memoize</h1>
<p>The three most expensive products come from <code>memoize.Func(store, bestsellers, memoize.Options{Name: "demo.bestsellers", Timeout: 5 * time.Minute})</code>:
the first call runs the slow query and stores the result; later calls, in any process sharing the store, read it.</p>
<div class="fragment" data-cache="{{ .State }}"><span class="cache-badge" id="memoize-state">{{ .Badge }}</span>
  <ol>{{ range .Result.Products }}<li>{{ .Name }} {{ .Price }}</li>{{ end }}</ol>
  <p class="rendered">computed at <span id="memoize-computed">{{ .Result.ComputedAt }}</span>; the function has run {{ .Runs }} time(s)</p>
</div>
<form method="post" action="/memoize/forget"><button>Forget every result (DeleteMemoized)</button></form>
</main></div></body></html>
`))

func (x *extras) memoizePage(w http.ResponseWriter, r *http.Request) {
	var ran atomic.Bool
	ctx := context.WithValue(r.Context(), ranKey{}, &ran)
	res, err := x.top.Call(ctx, 3)
	if err != nil {
		x.logger.Error("memoized call failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	state, badge := "hit", "HIT"
	if ran.Load() {
		state, badge = "miss", "MISS"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = memoizeTmpl.Execute(w, map[string]any{"State": state, "Badge": badge, "Result": res, "Runs": x.runs.Load()})
}

func (x *extras) memoizeForget(w http.ResponseWriter, r *http.Request) {
	if err := x.top.DeleteMemoized(r.Context()); err != nil {
		x.logger.Error("forget failed", "err", err)
		http.Error(w, "cache backend error", http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, "/memoize", http.StatusSeeOther)
}

var httpcacheTmpl = template.Must(template.New("httpcache").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>httpcache · fragcache shop</title>
<link rel="stylesheet" href="/static/site.css"></head><body>
<header><a class="brand" href="/">fragcache shop</a><nav class="extras"><a href="/memoize">memoize</a> <a href="/httpcache">httpcache</a> <a href="/metrics">/metrics</a></nav></header>
<div class="layout"><main>
<h1>httpcache</h1>
<p><code>{{ .Path }}</code> is wrapped by <code>httpcache.New(store, httpcache.Options{Timeout: 5 * time.Minute}).Middleware</code>:
the first request runs the handler and stores the whole response; later ones are served from the cache with <code>X-Cache: HIT</code>.
Try <code>curl -i http://HOST{{ .Path }}</code>, or:</p>
<p><button id="fetch">GET {{ .Path }}</button> X-Cache: <span class="xcache" id="xcache">–</span>, generated at <span id="generated">–</span></p>
<form method="post" action="/httpcache/purge"><button>Purge the stored response</button></form>
<script>
document.getElementById("fetch").addEventListener("click", async () => {
  const r = await fetch({{ .Path }}, {cache: "no-store"});
  document.getElementById("xcache").textContent = r.headers.get("X-Cache") || "(none)";
  document.getElementById("generated").textContent = (await r.json()).generated_at;
});
</script>
</main></div></body></html>
`))

func (x *extras) httpcachePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = httpcacheTmpl.Execute(w, map[string]any{"Path": bestsellersPath})
}

func (x *extras) httpcachePurge(w http.ResponseWriter, r *http.Request) {
	// The key holds the scheme and host the response was requested with.
	if _, err := x.views.Delete(r.Context(), "http://"+r.Host+bestsellersPath); err != nil {
		x.logger.Error("purge failed", "err", err)
		http.Error(w, "cache backend error", http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, "/httpcache", http.StatusSeeOther)
}

// bestsellersJSON is the handler httpcache caches: it runs the slow query
// on every execution, so a HIT is visibly faster.
func (x *extras) bestsellersJSON(w http.ResponseWriter, r *http.Request) {
	x.apiRuns.Add(1)
	ps := x.shop.Products(r.Context(), "")
	slices.SortFunc(ps, func(a, b Product) int { return b.PriceCents - a.PriceCents })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"generated_at": time.Now().Format("15:04:05.000"),
		"products":     ps[:min(3, len(ps))],
	})
}
