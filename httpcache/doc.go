// Package httpcache caches whole HTTP responses — status, headers and
// body — in a backends.Cache: the Go form of Flask-Caching's
// @cache.cached view decorator, as net/http middleware, made to stand in
// front of public traffic.
//
//	views := httpcache.New(cache, httpcache.Options{Timeout: time.Minute})
//	mux.Handle("GET /products/{id}", views.Middleware(productHandler))
//
// # Keys
//
// A response is stored under Options.KeyPrefix ("view/") + scheme + "://"
// + host + escaped path + "?" + query, such as
// "view/https://shop.example/products/7?page=2". The scheme is https on a
// TLS connection; the host is the Host header, lower-cased and without the
// scheme's default port (a request without a valid host bypasses the
// cache); the query, unless Options.IgnoreQuery, is sorted by parameter
// name with each name's values kept in their order, since handlers read
// the first. Forwarded, X-Forwarded-Host, X-Forwarded-Proto and
// X-Forwarded-Port give the scheme and host only when
// Options.TrustForwarded says the request came through a proxy that sets
// them, and only when they all agree (a client can send the one the proxy
// does not set); otherwise a request carrying one of them, or another
// header that frameworks and proxies take the scheme, host, path or method
// from (X-Forwarded-Ssl, X-Url-Scheme, X-Original-URL,
// X-HTTP-Method-Override, …), is keyed on its values too, so a forged
// header fills only an entry no honest request reads. No such list can be
// complete: Options.KeyHeaders names the request headers an application
// takes anything in its responses from, and the key holds their values
// too. A response with a Vary header is stored per value of the request
// headers it names (see below). Every part of a key can be read back from
// it, so two requests their handlers can tell apart never share one.
//
// # What is stored
//
// Only GET and HEAD requests are cached (HEAD is answered from GET's
// entry and never stored, since a handler may write no body for it);
// requests carrying an Authorization header bypass the cache; and a
// response is stored only when its status is 200 (Options.Statuses), it
// sets no cookie, its Cache-Control says neither private, no-store nor
// no-cache, it has no Vary: *, no trailers, is not an event stream, has a
// body within Options.MaxBodySize that matches its Content-Length, and the
// request was not cancelled while the handler ran. Header names are
// matched in any capitalisation: handlers may write into the header map
// directly, and net/http sends what they wrote. Only the header fields the
// wrapped handler set are stored — not those middleware outside the cache
// set before it (a request ID), though the rules above see those too —
// with Vary, which says what the entry is keyed on, kept whoever set it
// (rs/cors sets Vary: Origin before the handler runs); and of them not
// the hop-by-hop ones, Date, Content-Length or Set-Cookie;
// a hit gets a fresh Date, an exact Content-Length and an Age. The key does
// not include cookies, so a handler whose page depends on who asks must
// say Cache-Control: private, Vary: Cookie, or be excluded with
// Options.Unless.
//
// Entries are stored in a format of their own, not through the backend
// cache's codec, and every one is checked when read: a status of 200–599,
// header names that are tokens, values without control characters, none
// of the fields above that are never stored, lengths within the bytes read.
// A value that fails is a miss: it is counted (Stats.BadEntries), logged
// and deleted.
//
// # Misses
//
// Concurrent misses of one key run the handler once. Its response goes
// into a buffer, not to its client, and every request that waited for it
// is served from the finished buffer, the one that ran it too: a client
// that reads slowly, or not at all, holds up no one but itself. A response
// that cannot be shared goes to its own client as it is written, and the
// requests that waited are released at once to run the handler themselves:
// one refused by the rules when its status is sent, an event stream, one
// that flushes (it is still stored if it ends within the rules), one that
// grows past MaxBodySize. For a minute after that, requests for the key
// do not wait for one another, so that responses that are known to be
// unshareable only when they end (a long poll) do not queue up. Backend
// errors never fail a request: they are counted, logged at most once per
// interval, and the handler runs uncached. Entries go through the
// backend's circuit breaker (backends.Breaker): while it is open, requests
// skip the backend at once, counted in Stats.Skips.
// Options.WriteTimeout bounds how long a client that does not read keeps
// its copy of a response the cache writes from memory.
//
// # HTTP caching beyond Flask-Caching
//
// Vary: the stored response's Vary header names the request headers its
// variants are keyed on (a marker under the key lists them); Vary: * is
// never stored. Conditional requests: If-None-Match and If-Modified-Since
// are answered 304 from the cache when the stored response has an ETag or
// Last-Modified; the handler that runs for a miss never sees them, so it
// makes the whole response, and Options.AddETag gives responses without
// an ETag a hash of their body. Age: hits say how long ago the response
// was stored. Request Cache-Control: no-store is honoured — nothing of the
// response to a miss is stored, though a stored response still serves the
// request (RFC 9111 §5.2.1.5); no-cache, max-age=0 and Pragma: no-cache
// are ignored, as Flask-Caching ignores request headers: RFC 9111 makes
// them a preference of the client, and honouring them would let any client
// run the handler on every request for the busiest page, which is what
// the cache is there to prevent.
package httpcache
