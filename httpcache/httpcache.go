package httpcache

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/failopen"
)

// DefaultMaxBodySize is the largest body stored when Options.MaxBodySize
// is 0. Larger responses are served but not stored.
const DefaultMaxBodySize = 8 << 20

// maxAttempts bounds how often one request looks the cache up again after
// waiting for a response it could not use (another variant, or a leader
// whose client left) before it runs the handler itself.
const maxAttempts = 3

// Options configure a [Cache]. The zero value caches 200 responses to GET
// and HEAD under "view/" + scheme + host + path + query, with the backend
// cache's default timeout and an X-Cache header.
type Options struct {
	// KeyPrefix starts every default key; "" means "view/".
	KeyPrefix string
	// Key replaces the default key (Flask's make_cache_key): it receives
	// the request and returns the key within the backend cache's prefix.
	// It must tell apart every two requests whose handlers may answer
	// differently: the default key's scheme and host among them. An error
	// makes the request bypass the cache, and is logged. For methods other
	// than GET and HEAD the method is put in front of the key whatever Key
	// returns, so a POST can never be served a GET's response; a response
	// with a Vary header is stored under Key's key and the varying request
	// headers.
	Key func(r *http.Request) (string, error)
	// IgnoreQuery leaves the query string out of the default key, as Flask
	// does by default: /search?q=a and /search?q=b then share one entry.
	// By default the key covers the query arguments, sorted by name with
	// each name's values in their order: the order of different names does
	// not matter, that of one name's values does (r.URL.Query().Get reads
	// the first).
	IgnoreQuery bool
	// TrustForwarded reports whether a request came through a proxy that
	// sets (not merely appends to) the Forwarded or X-Forwarded-Host,
	// X-Forwarded-Proto and X-Forwarded-Port headers; for such requests the
	// key's scheme and host are the ones these headers name. All of them
	// must name one scheme and one host (X-Forwarded-Port the port of a
	// host that names one), or the request bypasses the cache: a proxy
	// that sets X-Forwarded-Host passes a client's Forwarded on, and the
	// handler may read either. Nil trusts no
	// request: the key's scheme is the connection's and its host the Host
	// header's, and a request carrying any of these headers is keyed on
	// their values too, so a forged one fills only an entry that no honest
	// request reads.
	TrustForwarded func(r *http.Request) bool
	// KeyHeaders are request headers whose values the default key holds
	// too: headers that code in front of the cache or the handler takes
	// anything in the response from (the host or scheme it writes links
	// with, a tenant). The key always covers the Host header and the
	// forwarded headers common frameworks read (see the package doc), but
	// no list knows every application's, and a request header outside the
	// key that changes the response lets one request store, for every
	// visitor, a page made from the value it sent. A handler that knows
	// what it reads can send Vary instead. A request with another value,
	// or without the header, is another entry; Delete reaches the entries
	// of requests without any of these headers, DeleteRequest any. Names
	// may be given in any capitalisation; New panics on one that is not a
	// token. A custom Key replaces this with the rest of the default key.
	KeyHeaders []string
	// Timeout is how long responses live: 0 means the backend cache's
	// default timeout, backends.NoExpiry never expires; any other
	// negative value is invalid. A handler can choose its own response's with SetTimeout.
	Timeout time.Duration
	// Unless, when it returns true, makes the request bypass the cache: the
	// handler runs and nothing is read or stored (Flask's unless).
	Unless func(r *http.Request) bool
	// ForcedUpdate, when it returns true, skips the lookup: the handler
	// runs and its response, if storable, replaces the stored one.
	ForcedUpdate func(r *http.Request) bool
	// ResponseFilter, when set, is asked about every response that passed
	// the built-in rules; returning false keeps it out of the cache. It
	// cannot make a response the rules refuse storable, and must not
	// modify the response.
	ResponseFilter func(r *http.Request, resp *Response) bool
	// Methods are the request methods served from and stored in the cache;
	// nil means GET and HEAD. Other methods bypass the cache.
	Methods []string
	// Statuses are the response statuses that may be stored; nil means
	// 200 only.
	Statuses []int
	// HitHeader names the header set to "HIT" on responses served without
	// running the handler and "MISS" on responses the handler produced;
	// "" means "X-Cache". Bypassed requests get none.
	HitHeader string
	// NoHitHeader leaves the hit header out.
	NoHitHeader bool
	// MaxBodySize is the largest body stored, and so the most a response
	// is held back in memory before it streams to its client instead; 0
	// means DefaultMaxBodySize, negative means no limit.
	MaxBodySize int64
	// WriteTimeout, when positive, bounds how long the cache spends writing
	// a response it holds in memory to its client: a hit, a response shared
	// with the requests that waited for it, and the buffered response of
	// the request that ran the handler. When the cache starts writing, it
	// sets the connection's write deadline to now + WriteTimeout
	// (http.ResponseController.SetWriteDeadline), replacing the one
	// http.Server.WriteTimeout set, so keep it shorter than that; a client
	// that has not taken the response by then loses its connection.
	// Responses that stream as the handler writes them are not affected.
	// 0 sets no deadline.
	//
	// It bounds the memory slow clients hold. Every hit read from a remote
	// store (Redis, memcached, FileSystem) is a copy of the body of its
	// own, kept until its client has taken all but the socket buffers'
	// worth: N clients that read slowly, or not at all, hold N bodies of up
	// to MaxBodySize (SimpleCache's hits share the stored bytes).
	// http.Server.WriteTimeout bounds that too, but also cuts off the
	// streams (server-sent events, long polls) a server may serve.
	WriteTimeout time.Duration
	// AddETag gives a stored 200 response without an ETag a strong one, a
	// hash of its body, so that clients can revalidate with If-None-Match
	// and be answered 304 from the cache.
	AddETag bool
	// CacheAuthorized serves and stores responses to requests that carry
	// an Authorization header. By default they bypass the cache, since
	// what they get is usually for one user alone (RFC 9111 §3.5).
	CacheAuthorized bool
	// Logger receives backend error reports; nil means slog.Default().
	Logger *slog.Logger
	// LogInterval is the least time between two error reports; errors in
	// between are counted and summarised in the next report. 0 means 10 s.
	LogInterval time.Duration
}

// Response is a response about to be stored, as ResponseFilter sees it:
// the status, the header fields that will be stored, and the body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Stats counts what a Cache did.
type Stats struct {
	Hits          uint64 // responses served from the cache
	Misses        uint64 // requests that found nothing stored (or were forced)
	Runs          uint64 // handler executions for a miss
	Waits         uint64 // misses served another request's response
	Bypasses      uint64 // requests not eligible for the cache (method, Unless, Authorization, bad query, host or key)
	NotStored     uint64 // responses the rules or ResponseFilter kept out of the cache
	BackendErrors uint64 // backend failures; the request was served uncached
	BadEntries    uint64 // stored values that were not valid responses: treated as misses and deleted
	// Skips counts backend calls skipped because the backend's circuit
	// breaker was open (not counted in BackendErrors, and not logged: the
	// breaker logs its state changes); the request was served uncached.
	Skips uint64
	// Breaker is the state of the backend's circuit breaker
	// (backends.Cache.Breaker); BreakerClosed when it has none.
	Breaker backends.BreakerState
}

// Cache caches responses of the handlers its Middleware wraps. One Cache
// can wrap any number of handlers; it is safe for concurrent use.
type Cache struct {
	store     *backends.Cache
	opts      Options
	methods   []string
	statuses  []int
	hitHeader string
	fills     fills

	// keyed and keyedTrusted are the request headers the default key
	// holds the values of, without and with TrustForwarded.
	keyed, keyedTrusted []string

	hits, misses, runs, waits, bypasses, notStored, badEntries atomic.Uint64
	failures                                                   *failopen.Reporter
}

// New returns a Cache storing into store. It panics, as for a programming
// error, if store is nil or opts.Timeout is negative other than
// backends.NoExpiry.
func New(store *backends.Cache, opts Options) *Cache {
	if store == nil {
		panic("httpcache: nil *backends.Cache")
	}
	if opts.Timeout < 0 && opts.Timeout != backends.NoExpiry {
		panic(fmt.Sprintf("httpcache: negative Timeout %v (use backends.NoExpiry for responses that never expire)", opts.Timeout))
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "view/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodySize == 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	c := &Cache{store: store, opts: opts, methods: opts.Methods, statuses: opts.Statuses, hitHeader: opts.HitHeader,
		failures: failopen.New(opts.Logger, opts.LogInterval, "fragcache: httpcache: serving uncached")}
	if c.methods == nil {
		c.methods = []string{http.MethodGet, http.MethodHead}
	}
	if c.statuses == nil {
		c.statuses = []int{http.StatusOK}
	}
	if c.hitHeader == "" {
		c.hitHeader = "X-Cache"
	}
	c.keyed, c.keyedTrusted = keyedHeaders(opts.KeyHeaders)
	return c
}

// Store returns the backends.Cache responses are stored in.
func (c *Cache) Store() *backends.Cache { return c.store }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:          c.hits.Load(),
		Misses:        c.misses.Load(),
		Runs:          c.runs.Load(),
		Waits:         c.waits.Load(),
		Bypasses:      c.bypasses.Load(),
		NotStored:     c.notStored.Load(),
		BackendErrors: c.failures.Errors(),
		BadEntries:    c.badEntries.Load(),
		Skips:         c.failures.Skips(),
		Breaker:       c.breakerState(),
	}
}

func (c *Cache) breakerState() backends.BreakerState {
	if br := c.store.Breaker(); br != nil {
		return br.State()
	}
	return backends.BreakerClosed
}

// Key returns the key (within the backend cache's prefix) that r's
// response is stored under, or, for a response with a Vary header, the
// key its variants are found from. HEAD shares GET's key. A request
// without a valid host has no default key.
func (c *Cache) Key(r *http.Request) (string, error) {
	var key string
	var err error
	if c.opts.Key != nil {
		key, err = c.opts.Key(r)
	} else {
		key, err = c.defaultKey(r)
	}
	if err != nil {
		return "", fmt.Errorf("httpcache: key of %s %s: %w", r.Method, r.URL.Path, err)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		key = r.Method + " " + key
	}
	return key, nil
}

// Delete removes the stored response for a GET of target, an absolute URL
// ("https://shop.example/products/7?page=2": the scheme and host are part
// of the key), with all its variants, and reports whether there was one.
// A custom Options.Key receives a request with that URL and no headers.
// Responses stored for requests with headers that are part of their key
// (see Options.TrustForwarded) are removed with DeleteRequest.
func (c *Cache) Delete(ctx context.Context, target string) (bool, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, fmt.Errorf("httpcache: delete %q: %w", target, err)
	}
	if r.URL.Scheme == "https" {
		r.TLS = &tls.ConnectionState{}
	}
	return c.DeleteRequest(ctx, r)
}

// DeleteRequest removes the stored response r would be served, with all
// its variants, and reports whether there was one.
func (c *Cache) DeleteRequest(ctx context.Context, r *http.Request) (bool, error) {
	key, err := c.Key(r)
	if err != nil {
		return false, err
	}
	deleted, err := c.store.Delete(ctx, key)
	if err != nil {
		return false, fmt.Errorf("httpcache: delete %s: %w", r.URL, err)
	}
	return deleted, nil
}

// Middleware returns next wrapped in the cache.
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.serveHTTP(w, r, next)
	})
}

func (c *Cache) serveHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !c.eligible(r) {
		c.bypasses.Add(1)
		next.ServeHTTP(w, r)
		return
	}
	primary, err := c.Key(r)
	if err != nil {
		c.bypasses.Add(1)
		c.report("key", err)
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	forced := c.opts.ForcedUpdate != nil && c.opts.ForcedUpdate(r)
	for attempt := range maxAttempts {
		e, key, m, err := c.find(ctx, primary, r)
		offline := err != nil
		if offline {
			// The backend failed (down, or its breaker open): the handler
			// still runs once for concurrent requests, since an outage of
			// the cache is when it needs that most, but nothing is stored.
			c.backendError("get", err)
		}
		if e != nil && !forced {
			c.hits.Add(1)
			c.serveEntry(w, r, e, false)
			return
		}
		if attempt == 0 && !offline {
			c.misses.Add(1)
		}
		if r.Method == http.MethodHead || requestNoStore(r) {
			// A handler may write headers alone for HEAD: storing that
			// under GET's key would serve empty pages to GET requests. And
			// nothing of a response to a no-store request may be stored.
			break
		}
		f, how, err := c.fills.join(key, time.Now())
		if err != nil {
			break // waiting would deadlock: the handler runs for this request alone
		}
		if how != wait {
			c.lead(w, r, next, primary, key, m, f, offline)
			return
		}
		out, err := c.fills.wait(ctx, f)
		if err != nil {
			return // our client is gone; nothing to write
		}
		if out.e != nil && c.waiterKey(primary, out, r) == out.key {
			c.waits.Add(1)
			c.serveEntry(w, r, out.e, true)
			return
		}
		if out.e == nil && !out.retry {
			// The handler we waited for panicked, or produced a response
			// that is not for everyone: run it for this request alone.
			break
		}
		// Another variant was stored, or the leader's client left before
		// its response was done: look again.
	}
	c.runs.Add(1)
	c.setHit(w.Header(), "MISS")
	next.ServeHTTP(w, r)
}

// waiterKey is the key under which r would find the response out holds.
func (c *Cache) waiterKey(primary string, out outcome, r *http.Request) string {
	if out.m == nil {
		return primary
	}
	return variantKey(primary, out.m, r)
}

// lead runs the handler for r, the first request to miss key, into a
// recorder; stores the response if the rules allow (and the lookup did
// not fail: offline); hands it to the requests waiting on f (nil when
// none may wait) and serves it to r.
func (c *Cache) lead(w http.ResponseWriter, r *http.Request, next http.Handler, primary, key string, m *marker, f *fill, offline bool) {
	if !offline { // as before the lookup failed, an offline run is counted in BackendErrors only
		c.runs.Add(1)
	}
	leave := func(reason string) {
		c.fills.release(f, outcome{})
		if hintable(reason) {
			c.fills.hint(key, time.Now())
		}
	}
	req := withoutConditions(r) // the cache answers them: the handler makes the whole response
	rec := newRecorder(w, r, c, leave)
	finished := false
	defer func() {
		if !finished { // the handler panicked: release the waiters, let the panic go on
			c.fills.release(f, outcome{})
		}
	}()
	next.ServeHTTP(rec, req)
	finished = true

	rec.commit(http.StatusOK) // a handler that wrote nothing sent an empty 200
	if !rec.recording() {
		return // sent as written; the waiters were released when that was decided
	}
	reason := c.endRefusal(r, rec)
	var resp *Response
	var buf []byte
	if reason == "" {
		resp, buf, reason = c.entryOf(req, rec)
	}
	if reason != "" {
		c.refused(r, reason)
		c.fills.release(f, outcome{retry: r.Context().Err() != nil})
		if hintable(reason) {
			c.fills.hint(key, time.Now())
		}
		if rec.state == buffering {
			c.serveRecorded(w, r, rec, "")
		}
		return
	}
	e := &entry{created: time.Now(), status: resp.Status, header: resp.Header, body: resp.Body}
	storedKey, stored := c.variant(primary, m, req, rec)
	if !offline {
		if err := c.save(r.Context(), primary, storedKey, stored, rec, buf); err != nil {
			c.backendError("set", err)
		}
	}
	c.fills.unhint(key)
	c.fills.release(f, outcome{e: e, key: storedKey, m: stored})
	if rec.state == buffering {
		c.serveRecorded(w, r, rec, resp.Header.Get("Etag"))
	}
}

// refused counts a response kept out of the cache.
func (c *Cache) refused(r *http.Request, reason string) {
	c.notStored.Add(1)
	c.opts.Logger.Debug("fragcache: httpcache: response not stored", "path", r.URL.Path, "reason", reason)
}

// hintable reports whether a refusal is a property of the endpoint rather
// than of one response (a failure, a cancelled request), so that later
// requests for the key should not wait for one another.
func hintable(reason string) bool {
	switch reason {
	case "request cancelled while the handler ran", "writing to the client failed":
		return false
	}
	if s, ok := strings.CutPrefix(reason, "status "); ok {
		code, _ := strconv.Atoi(s)
		return code < 500 && code != http.StatusTooManyRequests
	}
	return true
}

// entryOf builds the stored form of the recorded response, or names the
// rule that keeps it out. buf is the entry's stored bytes, whose body
// resp.Body shares.
func (c *Cache) entryOf(req *http.Request, rec *recorder) (resp *Response, buf []byte, refusal string) {
	h := storedHeader(rec.header, rec.before, c.hitHeader)
	body := rec.body()
	if c.opts.AddETag && rec.status == http.StatusOK && h.Get("Etag") == "" {
		h.Set("Etag", bodyETag(body))
	}
	resp = &Response{Status: rec.status, Header: h, Body: body}
	if c.opts.ResponseFilter != nil && !c.opts.ResponseFilter(req, resp) {
		return nil, nil, "ResponseFilter"
	}
	buf, extra := rec.buf, headerSize(h)
	if cap(buf) >= 2*(len(buf)+extra) {
		// Grown far past its body: an in-process store would keep the
		// unused capacity for as long as it keeps the entry.
		buf = append(startEntry(len(body), extra), body...)
	}
	buf, err := finishEntry(buf, time.Now(), rec.status, h)
	if err != nil {
		return nil, nil, err.Error()
	}
	resp.Body = buf[entryPrefix : entryPrefix+len(body) : entryPrefix+len(body)]
	return resp, buf, ""
}

// save stores buf, the entry of rec's response, with the handler's
// timeout or the configured one: under primary, or for a response with a
// Vary header under key, its variant key (see variant), with the vary
// marker m under primary.
func (c *Cache) save(ctx context.Context, primary, key string, m *marker, rec *recorder, buf []byte) error {
	timeout := c.opts.Timeout
	if rec.timeoutSet {
		timeout = rec.timeout
	}
	ttl := timeout // positive or backends.NoExpiry
	if ttl == 0 {
		ttl = c.store.DefaultTimeout()
	}
	if m == nil {
		return c.set(ctx, primary, buf, ttl)
	}
	if err := c.set(ctx, key, buf, ttl); err != nil {
		return err
	}
	return c.set(ctx, primary, encodeMarker(m), ttl)
}

// variant returns the key rec's response for req goes under, and the vary
// marker stored under primary for it (nil without Vary): found, the marker
// the lookup found, if it names the same request headers, else a new one.
func (c *Cache) variant(primary string, found *marker, req *http.Request, rec *recorder) (string, *marker) {
	if len(rec.vary) == 0 {
		return primary, nil
	}
	m := found
	if m == nil || !slices.Equal(m.names, rec.vary) {
		id := make([]byte, markerIDSize)
		_, _ = rand.Read(id) // never fails (crypto/rand)
		m = &marker{id: string(id), names: rec.vary}
	}
	return variantKey(primary, m, req), m
}

// find looks up r's response under primary: the entry stored there, or,
// when a vary marker is stored there, the variant r selects. It returns
// the key a miss is filled under and the marker, if any. A stored value
// that is not valid is a miss: it is counted, logged and deleted.
func (c *Cache) find(ctx context.Context, primary string, r *http.Request) (*entry, string, *marker, error) {
	b, ok, err := c.get(ctx, primary)
	if err != nil || !ok {
		return nil, primary, nil, err
	}
	if len(b) >= len(markerMagic) && string(b[:len(markerMagic)]) == markerMagic {
		m, err := decodeMarker(b)
		if err != nil {
			c.badEntry(ctx, primary, err)
			return nil, primary, nil, nil
		}
		key := variantKey(primary, m, r)
		b, ok, err := c.get(ctx, key)
		if err != nil || !ok {
			return nil, key, m, err
		}
		e, err := decodeEntry(b)
		if err == nil {
			err = checkVary(e, m)
		}
		if err != nil {
			c.badEntry(ctx, key, err)
			return nil, key, m, nil
		}
		return e, key, m, nil
	}
	e, err := decodeEntry(b)
	if err == nil {
		err = checkVary(e, nil)
	}
	if err != nil {
		c.badEntry(ctx, primary, err)
		return nil, primary, nil, nil
	}
	return e, primary, nil, nil
}

// checkVary reports an entry found under marker m (nil for none) whose
// Vary does not name the request headers m does. Every entry this package
// writes carries the Vary its response was sent with (see storedHeader),
// and the marker is made from it, so the two always agree.
func checkVary(e *entry, m *marker) error {
	vary, refusal := varyNames(e.header["Vary"])
	switch {
	case refusal != "":
		return fmt.Errorf("%w: %s", errBadEntry, refusal)
	case m == nil && len(vary) > 0:
		return fmt.Errorf("%w: Vary %q without a marker", errBadEntry, vary)
	case m != nil && !slices.Equal(vary, m.names):
		return fmt.Errorf("%w: Vary %q under a marker for %q", errBadEntry, vary, m.names)
	}
	return nil
}

// badEntry counts, reports and deletes a stored value that is not valid.
func (c *Cache) badEntry(ctx context.Context, key string, err error) {
	c.badEntries.Add(1)
	c.report("decode", fmt.Errorf("httpcache: value under %q: %w", key, err))
	if _, err := c.store.Delete(ctx, key); err != nil {
		c.backendError("delete", err)
	}
}

// get and set reach the backend without the backend cache's value
// envelope, since entries are stored in their own format (see entry.go),
// but through its key prefix and circuit breaker.
func (c *Cache) get(ctx context.Context, key string) ([]byte, bool, error) {
	return c.store.GetRaw(ctx, key)
}

func (c *Cache) set(ctx context.Context, key string, b []byte, ttl time.Duration) error {
	return c.store.SetRaw(ctx, key, b, ttl)
}

// eligible reports whether r may be served from and stored in the cache.
func (c *Cache) eligible(r *http.Request) bool {
	if !slices.Contains(c.methods, r.Method) {
		return false
	}
	if !c.opts.CacheAuthorized && r.Header.Get("Authorization") != "" {
		return false
	}
	return c.opts.Unless == nil || !c.opts.Unless(r)
}

func (c *Cache) setHit(h http.Header, v string) {
	if !c.opts.NoHitHeader {
		h.Set(c.hitHeader, v)
	}
}

// serveEntry writes a stored response, with its age. The header's values
// are copied when waiters share the entry.
func (c *Cache) serveEntry(w http.ResponseWriter, r *http.Request, e *entry, shared bool) {
	c.setWriteDeadline(w)
	h := w.Header()
	for k := range h {
		// Middleware outside the cache may have set a stored field under
		// another capitalisation (h["vary"]): the stored one replaces it,
		// rather than going out beside it.
		if !isCanonical(k) {
			if _, ok := e.header[http.CanonicalHeaderKey(k)]; ok {
				delete(h, k)
			}
		}
	}
	for k, v := range e.header {
		if shared {
			v = slices.Clone(v)
		}
		h[k] = v
	}
	c.setHit(h, "HIT")
	h.Set("Age", strconv.FormatInt(ageOf(e, time.Now()), 10))
	writeResponse(w, r, e.status, e.header, e.body)
}

// setWriteDeadline gives a response written from memory its
// Options.WriteTimeout. net/http clears the deadline when the handler
// returns, so it does not outlive the response.
func (c *Cache) setWriteDeadline(w http.ResponseWriter) {
	if c.opts.WriteTimeout > 0 {
		// A writer without deadlines (an httptest.ResponseRecorder, a
		// wrapper without Unwrap) has no client to wait for: nothing to do.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	}
}

// maxAge is the largest Age sent. RFC 9111 §1.2.2: a cache that receives
// a delta-seconds value it cannot represent, or whose calculations
// overflow, takes it to be 2147483648 (2^31), and never sends more.
const maxAge = 1 << 31

// ageOf is e's Age at now: the seconds since it was stored plus the Age
// the handler relayed, if any (a response that was already that old),
// within 0 and maxAge. Both parts come from stored bytes, so neither is
// trusted to be small.
func ageOf(e *entry, now time.Time) int64 {
	age := min(max(0, int64(now.Sub(e.created)/time.Second)), maxAge)
	if relayed, ok := deltaSeconds(e.header.Get("Age")); ok {
		age = min(age+relayed, maxAge)
	}
	return age
}

// deltaSeconds parses a delta-seconds value (RFC 9111 §1.2.2: 1*DIGIT,
// so no sign), saturating at maxAge however many digits it has.
func deltaSeconds(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int64(c-'0'), maxAge) // n*10 stays far from overflow: n <= 2^31
	}
	return n, true
}

// serveRecorded writes the response the leader's handler left in its
// buffer to the leader's own client, with the header as it was when the
// status was sent (and the ETag the cache gave it). Trailers the handler
// set after the status are sent as trailers, so the body goes without a
// Content-Length.
func (c *Cache) serveRecorded(w http.ResponseWriter, r *http.Request, rec *recorder, etag string) {
	c.setWriteDeadline(w)
	h := w.Header()
	trailers := http.Header{}
	for k, v := range h {
		if isTrailerKey(k) {
			trailers[k] = v
		}
	}
	clear(h)
	for k, v := range rec.header {
		// Canonical names, so that writeResponse finds the handler's
		// content-length in any case (HTTP names are case-insensitive).
		ck := http.CanonicalHeaderKey(k)
		h[ck] = append(h[ck], v...)
	}
	if etag != "" {
		h.Set("Etag", etag)
	}
	c.setHit(h, "MISS")
	if len(trailers) == 0 {
		writeResponse(w, r, rec.status, h, rec.body())
		return
	}
	w.WriteHeader(rec.status)
	if r.Method != http.MethodHead && bodyAllowed(rec.status) {
		_, _ = w.Write(rec.body())
	}
	for k, v := range trailers {
		h[k] = v
	}
}

// writeResponse sends status and body after the header already in w
// (under canonical names), answering 304 instead when the response, with
// validators in vh, is one r's conditions say the client has.
func writeResponse(w http.ResponseWriter, r *http.Request, status int, vh http.Header, body []byte) {
	if notModified(r, status, vh) {
		writeNotModified(w)
		return
	}
	h := w.Header()
	if bodyAllowed(status) {
		if _, ok := h["Content-Type"]; !ok && len(body) > 0 {
			// net/http would sniff it from the body, but not for HEAD.
			h.Set("Content-Type", http.DetectContentType(body))
		}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead && bodyAllowed(status) {
		_, _ = w.Write(body) // a client that went away is not our error
	}
}

// bodyAllowed reports whether a response with status may have a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// backendError counts a backend failure and reports it; the request is
// served uncached.
// A call the circuit breaker skipped is counted apart and not logged.
func (c *Cache) backendError(op string, err error) {
	if c.failures.Count(err) {
		return
	}
	c.report(op, err)
}

// report logs err at most once per LogInterval, counting the rest.
func (c *Cache) report(op string, err error) {
	c.failures.Report(err, "op", op)
}
