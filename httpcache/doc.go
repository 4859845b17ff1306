// Package httpcache caches whole HTTP responses — status, headers and
// body — in a backends.Cache: the Go form of Flask-Caching's
// @cache.cached view decorator, as net/http middleware.
//
//	views := httpcache.New(cache, httpcache.Options{Timeout: time.Minute})
//	mux.Handle("GET /products/{id}", views.Middleware(productHandler))
//
// A response is stored under Options.KeyPrefix ("view/") followed by the
// request's path and, unless Options.IgnoreQuery, a digest of its sorted
// query arguments; a handler can choose its own response's timeout with
// [SetTimeout]. Hits carry an "X-Cache: HIT" header, responses the handler
// produced "X-Cache: MISS".
//
// The middleware errs on the side of never serving one user's page to
// another. Only GET and HEAD requests are cached (HEAD is answered from
// GET's entry and never stored, since a handler may write no body for it);
// requests carrying an Authorization header bypass the cache; and a
// response is stored only when its status is 200 (Options.Statuses), it
// sets no cookie, its Cache-Control says neither private, no-store nor
// no-cache, it has no Vary header (the key cannot vary with request
// headers), no trailers, a body within Options.MaxBodySize that matches
// its Content-Length, and the request was not cancelled while the handler
// ran. Only the header fields the wrapped handler set are stored — not
// those middleware outside the cache set before it (a request ID), though
// the rules above see those too — and of them not the hop-by-hop ones,
// Date or Content-Length; a hit gets a fresh Date and an exact
// Content-Length. The key does not include
// cookies, so a handler whose page depends on who asks must say
// Cache-Control: private or be excluded with Options.Unless.
//
// The handler's response streams to its client as it is written (Flush
// works); it is buffered alongside and stored when the handler returns, and
// hits are served whole. Concurrent misses of one key run the handler
// once: the other requests wait and are served the same response if it
// could be stored, or run the handler themselves if it could not. Backend
// errors never fail a request: they are counted, logged at most once per
// interval, and the handler runs uncached.
package httpcache
