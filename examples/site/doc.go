// Command site is fragcache's demo: a small shop whose pages are rendered
// by three template engines — pongo2 (package pongo2tag), Jet (package
// jettag) and html/template (package htmltemplate) — from the same data,
// each caching parts of its pages with a `cache` block:
//
//	pongo2:        {% cache 300, "pongo2-sidebar" %}…{% endcache %}
//	Jet:           {{ cache 300, "jet-sidebar" }}…{{ endcache }}
//	html/template: {{ cache 300 "html-sidebar" }}…{{ endcache }}
//
// Run it and open http://127.0.0.1:8080/:
//
//	go run ./examples/site
//	go run ./examples/site -addr 127.0.0.1:9000 -delay 100ms
//
// Every query of the shop's data source sleeps for -delay (40 ms by
// default), so a cold page takes a visible while and a warm one, whose
// fragments come from the cache without running their queries, well under
// a millisecond. Each fragment carries a badge saying what its block found
// in the cache for this request — HIT, MISS, STALE HIT… — and prints when
// it was rendered. The badges come from the fragment cache's Observer hook
// (fragment.Options.Observer), which records each block's outcome in the
// request's context; they are added to the page after it is rendered, so
// they are never part of a stored fragment. Each page also shows the
// fragment cache's counters (fragment.Cache.Stats: hits, misses, renders,
// waits, backend errors), how many stored fragments the invalidate buttons
// deleted, the number of slow queries run so far and its own render time. The home page caches the
// category sidebar, the product list (vary_on the category) and the
// signed-in user's recommendations (vary_on the user's ID); the product page
// caches the product with its reviews (vary_on the product ID). Switch user
// in the header to see a per-user fragment; follow the engine links to see
// the same page rendered by another engine.
//
// The invalidate buttons show how app code drops a fragment after the data
// behind it changed: the handler computes the key the template stored the
// fragment under with keys.MakeTemplateFragmentKey — the block's name and
// vary_on values — and deletes it from the backends.Cache:
//
//	store.Delete(ctx, keys.MakeTemplateFragmentKey("jet-product", "3"))
//
// The next request misses, renders the fragment and stores it again: its
// badge says MISS, every other fragment's says HIT.
//
// Two more pages use the other caches over the same store: /memoize shows
// a memoize.Func result (MISS on the call that ran the function, HIT on
// the calls that read its stored result), /httpcache fetches a JSON
// endpoint wrapped by the httpcache middleware and shows its X-Cache
// header (`curl -i http://127.0.0.1:8080/api/bestsellers.json` shows it
// too). GET /metrics serves every cache's metrics in Prometheus' format
// (package metrics/prommetrics): per fragment (hits, misses, renders,
// render time, bytes) and per backend (operations, errors, latency,
// circuit breaker state); GET /stats the counters as JSON.
//
// Fragments are stored in the in-memory SimpleCache unless CACHE_*
// environment variables (Flask-Caching's settings, read by
// backends.FromEnv) choose another backend. Unlike Flask, whose default
// CACHE_TYPE is "null", the demo defaults to SimpleCache: with caching off
// it would have nothing to show. For example:
//
//	CACHE_TYPE=FileSystemCache CACHE_DIR=/tmp/fc go run ./examples/site
//
// Redis mode — fragments, memoized results and HTTP responses in a Redis
// server, shared by every demo process pointed at it, behind a circuit
// breaker (stop the server to see pages keep working uncached, and
// fragcache_backend_breaker_state flip to open):
//
//	redis-server --port 6379 --save '' &
//	CACHE_TYPE=RedisCache CACHE_REDIS_URL=redis://127.0.0.1:6379/0 \
//	  CACHE_KEY_PREFIX=demo: go run ./examples/site
//
// An unknown or misconfigured backend stops the server at startup with an
// error naming the setting. SIGINT or SIGTERM shut it down gracefully,
// letting requests in flight finish.
package main
