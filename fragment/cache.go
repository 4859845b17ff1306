package fragment

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/flight"
	"github.com/fragcache/fragcache/keys"
)

// Options configure a fragment Cache. The zero value keeps Flask-Caching's
// exact keys and the backend cache's default timeout, and fails open.
type Options struct {
	// DefaultTimeout is the TTL of blocks whose timeout is nil. 0 means the
	// backends.Cache's own default (itself possibly "never").
	DefaultTimeout time.Duration
	// KeyPrefix is prepended to every fragment key, after the backend
	// cache's own prefix. Leave it empty to keep keys equal to
	// keys.MakeTemplateFragmentKey, so app code can delete fragments with it.
	KeyPrefix string
	// Version, when set, is added to every key (KeyPrefix + Version + ":" +
	// fragment key); changing it on deploy invalidates every fragment at once.
	Version string
	// Strict returns backend errors from Render (Flask-Caching's debug
	// behaviour) instead of rendering uncached.
	Strict bool
	// SourceDigest adds the body's source digest to the names of unnamed
	// fragments, so editing a block's body changes its key. Named fragments
	// keep exact Flask keys.
	SourceDigest bool
	// Logger receives backend error reports; nil means slog.Default().
	Logger *slog.Logger
	// LogInterval is the least time between two backend error reports;
	// errors in between are counted and summarised in the next report.
	// 0 means 10 s.
	LogInterval time.Duration
	// StoreTimeout bounds the store after a render. The store runs on a
	// context detached from the request's cancellation (a fragment that
	// took longer than its request's deadline to render is still worth
	// keeping), so this is its only bound besides the backend's own
	// timeouts. The request waits for the store at most until its own
	// context ends; the store goes on without it. 0 means 1 s.
	StoreTimeout time.Duration
}

// Stats counts what a fragment Cache did.
type Stats struct {
	Hits          uint64 // blocks served from the cache
	Misses        uint64 // blocks not found in the cache
	Renders       uint64 // bodies rendered for a miss (at most Misses - Waits)
	Waits         uint64 // misses served by another goroutine's render of the same key
	Waiting       uint64 // misses waiting right now for another goroutine's render
	Deletes       uint64 // blocks with timeout "del"
	BackendErrors uint64 // backend failures, whether failed open or returned
	// Skips counts backend calls skipped because the backend's circuit
	// breaker was open (not counted in BackendErrors, and not logged: the
	// breaker logs its state changes).
	Skips uint64
	// Breaker is the state of the backend's circuit breaker
	// (backends.Cache.Breaker); BreakerClosed when it has none.
	Breaker backends.BreakerState
}

// Cache renders cache blocks over a backends.Cache. One Cache serves any
// number of templates and engines; it is safe for concurrent use.
type Cache struct {
	store  *backends.Cache
	opts   Options
	prefix string // KeyPrefix and Version, prepended to every key
	group  flight.Group[[]byte]

	lastKeys sync.Map // *Site → the key of its last render without vary_on

	hits, misses, renders, waits, deletes, backendErrors, skips atomic.Uint64

	logMu      sync.Mutex
	lastLog    time.Time
	suppressed uint64
}

// New returns a fragment Cache storing into store.
func New(store *backends.Cache, opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogInterval == 0 {
		opts.LogInterval = 10 * time.Second
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = time.Second
	}
	prefix := opts.KeyPrefix
	if opts.Version != "" {
		prefix += opts.Version + ":"
	}
	return &Cache{store: store, opts: opts, prefix: prefix}
}

// Store returns the backends.Cache fragments are stored in.
func (c *Cache) Store() *backends.Cache { return c.store }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:          c.hits.Load(),
		Misses:        c.misses.Load(),
		Renders:       c.renders.Load(),
		Waits:         c.waits.Load(),
		Waiting:       uint64(c.group.Waiting()),
		Deletes:       c.deletes.Load(),
		BackendErrors: c.backendErrors.Load(),
		Skips:         c.skips.Load(),
		Breaker:       c.breakerState(),
	}
}

func (c *Cache) breakerState() backends.BreakerState {
	if br := c.store.Breaker(); br != nil {
		return br.State()
	}
	return backends.BreakerClosed
}

// Key returns the key (within the backend cache's prefix) that a block named
// name with the given vary_on values stores under. With no KeyPrefix and
// Version it equals keys.MakeTemplateFragmentKey(name, varyOn...).
func (c *Cache) Key(name string, varyOn ...string) string {
	return c.prefix + keys.MakeTemplateFragmentKey(name, varyOn...)
}

// Delete removes the fragment stored for name and vary_on values, as a block
// with timeout "del" would; deleted reports whether one was there.
func (c *Cache) Delete(ctx context.Context, name string, varyOn ...string) (deleted bool, err error) {
	return c.store.Delete(ctx, c.Key(name, varyOn...))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render executes one block: it writes the stored fragment on a hit, and
// on a miss calls body to render it into a buffer, stores the result and
// writes it. A stored value that is not text (an integer or a codec-encoded
// value app code wrote under the key) is a miss and gets overwritten. Errors
// about the call itself (a bad timeout or key value, a re-entered fragment)
// are *SiteError naming the block's position; an error from body is
// returned as body returned it, and nothing is stored.
func (c *Cache) Render(ctx context.Context, call Call, w io.Writer, body func(io.Writer) error) error {
	mode, ttl, err := parseTimeout(call.Timeout)
	if err != nil {
		return &SiteError{Site: call.Site, Err: err}
	}
	key, err := c.blockKey(call)
	if err != nil {
		return &SiteError{Site: call.Site, Err: err}
	}
	if mode == deleteKey {
		c.deletes.Add(1)
		if _, err := c.store.Delete(ctx, key); err != nil {
			if err := c.backendError(call.Site, "delete", err); err != nil {
				return err
			}
		}
		return body(w)
	}

	v, err := c.store.GetValue(ctx, key)
	if err != nil {
		if err := c.backendError(call.Site, "get", err); err != nil {
			return err
		}
		return body(w)
	}
	if b, ok := storedText(v); ok {
		c.hits.Add(1)
		_, err := w.Write(b)
		return err
	}
	c.misses.Add(1)

	servedByOther := false
	out, shared, err := c.group.Do(ctx, key, func() ([]byte, error) {
		// Another goroutine's render of key may have been stored between
		// the lookup above and the start of this flight: look once more
		// rather than render twice. (A failed lookup here just renders.)
		if v, err := c.store.GetValue(ctx, key); err == nil {
			if b, ok := storedText(v); ok {
				servedByOther = true
				return bytes.Clone(b), nil
			}
		}
		c.renders.Add(1)
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer bufPool.Put(buf)
		if err := body(buf); err != nil {
			return nil, err
		}
		out := bytes.Clone(buf.Bytes())
		if err := c.storeDetached(ctx, call.Site, key, out, mode, ttl); err != nil {
			return nil, err
		}
		return out, nil
	})
	if shared || servedByOther {
		c.waits.Add(1)
	}
	if err != nil {
		switch err {
		case flight.ErrCycle:
			// Another goroutine renders this key and waits, through
			// blocks nested the other way round on another page, for
			// this one: render this block uncached rather than deadlock
			// or fail the page.
			c.renders.Add(1)
			return body(w)
		case ErrRecursive:
			// Only the group's own refusal names this block; an
			// ErrRecursive inside a body's error already names the block
			// that re-entered.
			return &SiteError{Site: call.Site, Err: err}
		}
		return err
	}
	_, err = w.Write(out)
	return err
}

// set stores a rendered fragment with the TTL its block asked for.
func (c *Cache) set(ctx context.Context, key string, value []byte, mode timeoutMode, ttl time.Duration) error {
	switch {
	case mode == useTTL:
		return c.store.Set(ctx, key, value, ttl)
	case c.opts.DefaultTimeout > 0:
		return c.store.Set(ctx, key, value, c.opts.DefaultTimeout)
	}
	return c.store.Set(ctx, key, value)
}

// storeDetached stores a rendered fragment on a context that keeps ctx's
// values but not its cancellation, bounded by StoreTimeout, and waits for
// it only as long as ctx lives: a render that outlived its request's
// deadline is still stored, and a slow store does not hold the request
// past its deadline. The error is the backend's, in strict mode, when the
// store finished while the request waited.
func (c *Cache) storeDetached(ctx context.Context, site *Site, key string, value []byte, mode timeoutMode, ttl time.Duration) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.StoreTimeout)
	if ctx.Done() == nil { // nothing to detach from: no goroutine needed
		defer cancel()
		if err := c.set(sctx, key, value, mode, ttl); err != nil {
			return c.backendError(site, "set", err)
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- c.set(sctx, key, value, mode, ttl)
	}()
	select {
	case err := <-done:
		if err != nil {
			return c.backendError(site, "set", err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			if err := <-done; err != nil {
				_ = c.backendError(site, "set", err) // nobody to return it to: counted and logged
			}
		}()
		return nil
	}
}

// storedText returns the fragment held in v. A value no block could have
// stored (an integer or a codec-encoded value that app code wrote under the
// key) counts as absent, so the render overwrites it.
func storedText(v backends.Value) ([]byte, bool) {
	b, ok := v.Bytes()
	if !ok || !v.Found() {
		return nil, false
	}
	if isDecimal(b) {
		// Bytes also gives a stored integer's decimal text. Only an
		// integer decodes into a float64; text is refused. This costs an
		// allocation, but only for fragments that are a bare number.
		var f float64
		if v.Decode(&f) == nil {
			return nil, false
		}
	}
	return b, true
}

// isDecimal reports whether b is an optionally negative run of digits, the
// form in which backends store integers.
func isDecimal(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// blockKey builds the backend key of a call in one allocation.
func (c *Cache) blockKey(call Call) (string, error) {
	var arr [128]byte
	b := append(arr[:0], c.prefix...)
	b = append(b, keys.TemplateFragmentPrefix...)
	var err error
	if call.HasName && call.Name != nil {
		if b, err = AppendKeyValue(b, call.Name); err != nil {
			return "", err
		}
	} else {
		b = append(b, call.Site.Path...) // keys.FragmentName, without its allocation
		b = strconv.AppendInt(b, int64(call.Site.Line), 10)
		if c.opts.SourceDigest && call.Site.Digest != "" {
			b = append(b, '@')
			b = append(b, call.Site.Digest...)
		}
	}
	for _, v := range call.VaryOn {
		b = append(b, '_')
		if b, err = AppendKeyValue(b, v); err != nil {
			return "", err
		}
	}
	if len(call.VaryOn) > 0 {
		return string(b), nil
	}
	// A block without vary_on values (a named sidebar, a menu) usually has
	// the same key on every render: reuse the last one instead of allocating.
	if last, ok := c.lastKeys.Load(call.Site); ok && last.(string) == string(b) {
		return last.(string), nil
	}
	key := string(b)
	c.lastKeys.Store(call.Site, key)
	return key, nil
}

// backendError counts a backend failure and, in strict mode, returns it;
// otherwise it logs it (at most once per LogInterval) and returns nil so the
// block renders uncached.
func (c *Cache) backendError(site *Site, op string, err error) error {
	if errors.Is(err, backends.ErrBreakerOpen) {
		c.skips.Add(1)
	} else {
		c.backendErrors.Add(1)
	}
	if c.opts.Strict {
		return &SiteError{Site: site, Err: err}
	}
	if errors.Is(err, backends.ErrBreakerOpen) {
		return nil // the breaker logged that it opened
	}
	c.logMu.Lock()
	now := time.Now()
	if now.Sub(c.lastLog) < c.opts.LogInterval {
		c.suppressed++
		c.logMu.Unlock()
		return nil
	}
	suppressed := c.suppressed
	c.lastLog, c.suppressed = now, 0
	c.logMu.Unlock()
	c.opts.Logger.Warn("fragcache: cache backend failed, rendering uncached",
		"op", op, "site", site.String(), "err", err, "suppressed_since_last_report", suppressed)
	return nil
}
