package httpcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/flight"
)

// NoExpiry as Options.Timeout or a SetTimeout argument stores responses
// that never expire; only Delete and the store's eviction remove them.
const NoExpiry time.Duration = -1

// DefaultMaxBodySize is the largest body stored when Options.MaxBodySize
// is 0. Larger responses are served but not stored.
const DefaultMaxBodySize = 8 << 20

// Options configure a [Cache]. The zero value caches 200 responses to GET
// and HEAD under "view/" + path + query digest, with the backend cache's
// default timeout and an X-Cache header.
type Options struct {
	// KeyPrefix starts every default key; "" means "view/". A slash
	// ending the prefix and the one starting the path are written once:
	// "/shop" is stored under "view/shop", where Flask writes
	// "view//shop".
	KeyPrefix string
	// Key replaces the default key (Flask's make_cache_key): it receives
	// the request and returns the key within the backend cache's prefix.
	// An error makes the request bypass the cache, and is logged. For
	// methods other than GET and HEAD the method is put in front of the key
	// whatever Key returns, so a POST can never be served a GET's response.
	Key func(r *http.Request) (string, error)
	// IgnoreQuery leaves the query string out of the default key, as Flask
	// does by default: /search?q=a and /search?q=b then share one entry.
	// By default the key covers the query arguments in a canonical order:
	// their order in the URL does not matter, and repeats count.
	IgnoreQuery bool
	// Timeout is how long responses live: 0 means the backend cache's
	// default timeout, NoExpiry never expires; any other negative value is
	// invalid. A handler can choose its own response's with SetTimeout.
	Timeout time.Duration
	// Unless, when it returns true, makes the request bypass the cache: the
	// handler runs and nothing is read or stored (Flask's unless).
	Unless func(r *http.Request) bool
	// ForcedUpdate, when it returns true, skips the lookup: the handler
	// runs and its response, if storable, replaces the stored one.
	ForcedUpdate func(r *http.Request) bool
	// ResponseFilter, when set, is asked about every response that passed
	// the built-in rules; returning false keeps it out of the cache. It
	// cannot make a response the rules refuse storable.
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
	// MaxBodySize is the largest body stored; 0 means DefaultMaxBodySize,
	// negative means no limit.
	MaxBodySize int64
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

// Response is a stored response, as ResponseFilter sees it.
type Response struct {
	Status int         `msgpack:"s" json:"s"`
	Header http.Header `msgpack:"h" json:"h"`
	Body   []byte      `msgpack:"b" json:"b"`
}

// Stats counts what a Cache did.
type Stats struct {
	Hits          uint64 // responses served from the cache
	Misses        uint64 // requests that found nothing stored (or were forced)
	Runs          uint64 // handler executions for a miss
	Waits         uint64 // misses served another request's response
	Bypasses      uint64 // requests not eligible for the cache (method, Unless, Authorization, bad query or key)
	NotStored     uint64 // responses the rules or ResponseFilter kept out of the cache
	BackendErrors uint64 // backend failures; the request was served uncached
}

// Cache caches responses of the handlers its Middleware wraps. One Cache
// can wrap any number of handlers; it is safe for concurrent use.
type Cache struct {
	store     *backends.Cache
	opts      Options
	methods   []string
	statuses  []int
	hitHeader string
	group     flight.Group[*outcome]

	hits, misses, runs, waits, bypasses, notStored, backendErrors atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed uint64
}

// New returns a Cache storing into store. It panics, as for a programming
// error, if store is nil or opts.Timeout is negative other than NoExpiry.
func New(store *backends.Cache, opts Options) *Cache {
	if store == nil {
		panic("httpcache: nil *backends.Cache")
	}
	if opts.Timeout < 0 && opts.Timeout != NoExpiry {
		panic(fmt.Sprintf("httpcache: negative Timeout %v (use NoExpiry for responses that never expire)", opts.Timeout))
	}
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "view/"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogInterval == 0 {
		opts.LogInterval = 10 * time.Second
	}
	if opts.MaxBodySize == 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	c := &Cache{store: store, opts: opts, methods: opts.Methods, statuses: opts.Statuses, hitHeader: opts.HitHeader}
	if c.methods == nil {
		c.methods = []string{http.MethodGet, http.MethodHead}
	}
	if c.statuses == nil {
		c.statuses = []int{http.StatusOK}
	}
	if c.hitHeader == "" {
		c.hitHeader = "X-Cache"
	}
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
		BackendErrors: c.backendErrors.Load(),
	}
}

// Key returns the key (within the backend cache's prefix) that r's
// response is stored under. HEAD shares GET's key.
func (c *Cache) Key(r *http.Request) (string, error) {
	var key string
	if c.opts.Key != nil {
		k, err := c.opts.Key(r)
		if err != nil {
			return "", fmt.Errorf("httpcache: key of %s %s: %w", r.Method, r.URL.Path, err)
		}
		key = k
	} else {
		key = joinPrefix(c.opts.KeyPrefix, r.URL.EscapedPath())
		if !c.opts.IgnoreQuery && r.URL.RawQuery != "" {
			q, err := url.ParseQuery(r.URL.RawQuery)
			if err != nil {
				// A handler might read the malformed pairs url.Query
				// drops, so two such URLs may not share a response.
				return "", fmt.Errorf("httpcache: query of %s: %w", r.URL.Path, err)
			}
			key += "?" + queryDigest(q)
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		key = r.Method + " " + key
	}
	return key, nil
}

func joinPrefix(prefix, path string) string {
	if strings.HasSuffix(prefix, "/") && strings.HasPrefix(path, "/") {
		return prefix + path[1:]
	}
	return prefix + path
}

// queryDigest hashes the query arguments in a canonical order, as Flask
// sorts them before hashing. It is not Flask's key (md5 of a Python tuple's repr):
// Flask pickles whole Response objects, which Go cannot read, so the two
// could never share entries anyway.
func queryDigest(q url.Values) string {
	pairs := make([]string, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	slices.Sort(pairs) // any canonical order will do: the key must not depend on the URL's
	sum := sha256.Sum256([]byte(strings.Join(pairs, "&")))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Delete removes the stored response for a GET of target, a path with an
// optional query ("/products/7?page=2"), and reports whether there was
// one. A custom Options.Key receives a request with that URL and no
// headers.
func (c *Cache) Delete(ctx context.Context, target string) (bool, error) {
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, fmt.Errorf("httpcache: delete %q: %w", target, err)
	}
	key, err := c.Key(r)
	if err != nil {
		return false, err
	}
	deleted, err := c.store.Delete(ctx, key)
	if err != nil {
		return false, fmt.Errorf("httpcache: delete %q: %w", target, err)
	}
	return deleted, nil
}

// Middleware returns next wrapped in the cache.
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.serveHTTP(w, r, next)
	})
}

// outcome is what a flight hands its waiters: the response, if it may be
// shared, and whether the leader found it stored (so it has yet to write
// it) rather than producing it.
type outcome struct {
	resp      *Response
	shareable bool
	found     bool
}

func (c *Cache) serveHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !c.eligible(r) {
		c.bypasses.Add(1)
		next.ServeHTTP(w, r)
		return
	}
	key, err := c.Key(r)
	if err != nil {
		c.bypasses.Add(1)
		c.report("key", err)
		next.ServeHTTP(w, r)
		return
	}
	ctx := r.Context()
	forced := c.opts.ForcedUpdate != nil && c.opts.ForcedUpdate(r)
	if !forced {
		resp, err := c.lookup(ctx, key)
		if err != nil {
			c.backendError("get", err)
			c.setHit(w.Header(), "MISS")
			next.ServeHTTP(w, r)
			return
		}
		if resp != nil {
			c.hits.Add(1)
			c.serveStored(w, r, resp)
			return
		}
	}
	c.misses.Add(1)
	if r.Method == http.MethodHead {
		// A handler may write headers alone for HEAD; storing that under
		// GET's key would serve empty pages to GET requests.
		c.runs.Add(1)
		c.setHit(w.Header(), "MISS")
		next.ServeHTTP(w, r)
		return
	}

	out, shared, err := c.group.Do(ctx, key, func() (*outcome, error) {
		if !forced {
			// A concurrent request may have stored the response between the
			// lookup and the start of this flight.
			if resp, err := c.lookup(ctx, key); err == nil && resp != nil {
				return &outcome{resp: resp, shareable: true, found: true}, nil
			}
		}
		c.runs.Add(1)
		rec := newRecorder(w, c)
		next.ServeHTTP(rec, r)
		rec.commit(http.StatusOK) // a handler that wrote nothing sent an empty 200
		resp, ok := c.finish(r, rec)
		if ok {
			if err := c.save(ctx, key, resp, rec); err != nil {
				c.backendError("set", err)
			}
		}
		return &outcome{resp: resp, shareable: ok}, nil
	})
	switch {
	case err != nil && ctx.Err() != nil:
		return // our client is gone; nothing to write
	case err == nil && !shared && !out.found:
		return // this request ran the handler, which wrote the response
	case err != nil || !out.shareable:
		// The handler we waited for panicked, or produced a response that
		// is not for everyone: run it for this request alone.
		c.runs.Add(1)
		c.setHit(w.Header(), "MISS")
		next.ServeHTTP(w, r)
	default:
		c.waits.Add(1)
		c.serveStored(w, r, out.resp)
	}
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

// lookup reads key; a miss, or a value that is not a stored response, is
// nil.
func (c *Cache) lookup(ctx context.Context, key string) (*Response, error) {
	v, err := c.store.GetValue(ctx, key)
	if err != nil || !v.Found() {
		return nil, err
	}
	var resp Response
	if err := v.Decode(&resp); err != nil || resp.Status == 0 {
		c.report("decode", fmt.Errorf("httpcache: value under %q is not a stored response: %v", key, err))
		return nil, nil
	}
	return &resp, nil
}

// save stores resp with the handler's timeout, or the configured one.
func (c *Cache) save(ctx context.Context, key string, resp *Response, rec *recorder) error {
	timeout := c.opts.Timeout
	if rec.timeoutSet {
		timeout = rec.timeout
	}
	switch {
	case timeout == NoExpiry:
		return c.store.Set(ctx, key, resp, 0)
	case timeout > 0:
		return c.store.Set(ctx, key, resp, timeout)
	}
	return c.store.Set(ctx, key, resp)
}

func (c *Cache) setHit(h http.Header, v string) {
	if !c.opts.NoHitHeader {
		h.Set(c.hitHeader, v)
	}
}

// serveStored writes a stored response. Its header is copied, since
// waiters share one Response.
func (c *Cache) serveStored(w http.ResponseWriter, r *http.Request, resp *Response) {
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = slices.Clone(v)
	}
	c.setHit(h, "HIT")
	if bodyAllowed(resp.Status) {
		if _, ok := h["Content-Type"]; !ok && len(resp.Body) > 0 {
			// net/http would sniff it from the body, but not for HEAD.
			h.Set("Content-Type", http.DetectContentType(resp.Body))
		}
		h.Set("Content-Length", fmt.Sprint(len(resp.Body)))
	}
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead && bodyAllowed(resp.Status) {
		_, _ = w.Write(resp.Body) // a client that went away is not our error
	}
}

// bodyAllowed reports whether a response with status may have a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// backendError counts a backend failure and reports it; the request is
// served uncached.
func (c *Cache) backendError(op string, err error) {
	c.backendErrors.Add(1)
	c.report(op, err)
}

// report logs err at most once per LogInterval, counting the rest.
func (c *Cache) report(op string, err error) {
	c.logMu.Lock()
	now := time.Now()
	if now.Sub(c.lastLog) < c.opts.LogInterval {
		c.suppressed++
		c.logMu.Unlock()
		return
	}
	suppressed := c.suppressed
	c.lastLog, c.suppressed = now, 0
	c.logMu.Unlock()
	c.opts.Logger.Warn("fragcache: httpcache: serving uncached",
		"op", op, "err", err, "suppressed_since_last_report", suppressed)
}
