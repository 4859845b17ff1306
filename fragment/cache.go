package fragment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/failopen"
	"github.com/fragcache/fragcache/internal/flight"
	"github.com/fragcache/fragcache/internal/stalecopy"
	"github.com/fragcache/fragcache/internal/xfetch"
	"github.com/fragcache/fragcache/keys"
)

// Options configure a fragment Cache. The zero value keeps Flask-Caching's
// exact keys and the backend cache's default timeout, and fails open.
type Options struct {
	// DefaultTimeout is the TTL of blocks whose timeout is nil. 0 means the
	// backends.Cache's own default, backends.NoExpiry never expires; any
	// other negative value is invalid.
	DefaultTimeout time.Duration
	// KeyPrefix is prepended to every fragment key, after the backend
	// cache's own prefix. Leave it empty to keep keys equal to
	// keys.MakeTemplateFragmentKey, so app code can delete fragments with it.
	// It may not start with "fragcache-lock:" (with Version, KeyPrefix +
	// Version + ":" may not): that is where Lock's keys live.
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
	// UnambiguousKeys escapes "%" and "_" in names and vary_on values
	// (as "%25" and "%5F") and names unnamed blocks "path:line", so that
	// two different blocks or vary_on lists never share a key. Flask's
	// key runs them together with "_": name "sidebar" with vary_on "admin"
	// is name "sidebar_admin", so a vary_on value a client chooses can
	// read or poison another block's fragment. Keys then differ from
	// Flask's where a part holds "_" or "%": use Key and Delete, not
	// keys.MakeTemplateFragmentKey, to reach them.
	UnambiguousKeys bool
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

	// StaleWhileRevalidate is a grace period: a fragment stays stored
	// that much longer than its timeout, and once its timeout has passed
	// one render per process (the first request that finds it stale)
	// re-renders it while every other request is served the stale copy.
	// The refreshing request renders the body itself: an engine's
	// execution state lives only as long as its page, so a block cannot be
	// re-rendered after its page is done. While the backend cannot be
	// reached (its circuit breaker open, or a call failing), fragments
	// this process keeps in memory (StaleCopyBytes) are served until their
	// grace period ends. 0 turns all of this off, and fragments are stored
	// exactly as rendered, as Flask-Caching stores them; otherwise they
	// are stored behind a 14-byte header (see stale.go). Fragments that
	// never expire (timeout 0) have no grace period.
	StaleWhileRevalidate time.Duration
	// EarlyRefresh turns on probabilistic early refresh ("XFetch") with
	// this β: a read re-renders a fragment before its timeout with a
	// probability that rises as the timeout nears and with how long the
	// fragment took to render, so hot fragments are refreshed about once,
	// shortly before they expire, and never by all readers at once. 1 is
	// the paper's recommendation, larger refreshes earlier; 0 is off. It
	// stores fragments behind the header too.
	EarlyRefresh float64
	// StaleCopyBytes bounds the fragments kept in memory, with
	// StaleWhileRevalidate, to serve while the backend cannot be reached.
	// Each costs its bytes, its key's (vary_on values can be the
	// client's) and 160 bytes of bookkeeping, which also bounds how many
	// are kept. 0 means 8 MiB; negative keeps none.
	StaleCopyBytes int
	// Lock, when positive, makes a cold fragment render once across the
	// processes sharing the backend: the first render takes a lock on the
	// key for at most this long, through the backend's atomic Add (Redis
	// SET NX PX, memcached add), and the other processes wait for its
	// fragment (see lock.go). Make it longer than the slowest render.
	Lock time.Duration
	// LockWait bounds how long a render waits for another process's
	// render of the same fragment before rendering it itself. 0 means
	// Lock.
	LockWait time.Duration
	// Batch says whether Page batches the lookups and stores of a page's
	// blocks (see batch.go); the zero value, BatchAuto, does on networked
	// backends.
	Batch BatchMode
	// Observer, when set, is told each block's outcome and each render,
	// for metrics (see Observer, and the packages under metrics/). Nil
	// costs a nil check per block.
	Observer Observer
}

// Stats counts what a fragment Cache did.
type Stats struct {
	Hits          uint64 // blocks served from the cache
	Misses        uint64 // blocks not found in the cache
	Renders       uint64 // bodies rendered for a miss (at most Misses - Waits)
	Waits         uint64 // misses served by another goroutine's render of the same key
	Waiting       uint64 // misses waiting right now for another goroutine's render
	DelBlocks     uint64 // executions of blocks with timeout "del" (app code's deletions are not counted)
	BackendErrors uint64 // backend failures, whether failed open or returned
	// Skips counts backend calls skipped because the backend's circuit
	// breaker was open (not counted in BackendErrors, and not logged: the
	// breaker logs its state changes).
	Skips uint64
	// Breaker is the state of the backend's circuit breaker
	// (backends.Cache.Breaker); BreakerClosed when it has none.
	Breaker backends.BreakerState
	// StaleHits counts blocks served a stale fragment: expired, within
	// the grace period, while another render refreshed it, or kept in
	// memory while the backend could not be reached.
	StaleHits uint64
	// Refreshes counts renders of a fragment that was stale or drawn for
	// early refresh (included in Renders).
	Refreshes uint64
	// LockWaits counts renders that waited for another process's render
	// of a locked key.
	LockWaits uint64
}

// Cache renders cache blocks over a backends.Cache. One Cache serves any
// number of templates and engines; it is safe for concurrent use.
type Cache struct {
	store  *backends.Cache
	opts   Options
	prefix string // KeyPrefix and Version, prepended to every key
	// self identifies the Cache to the key heads sites keep (see
	// appendKey) without keeping it alive: a site outlives the Caches that
	// rendered it when templates are parsed once.
	self  weak.Pointer[Cache]
	group flight.Group[[]byte]

	hits, misses, renders, waits, deletes atomic.Uint64
	staleHits, refreshes, lockWaits       atomic.Uint64
	failures                              *failopen.Reporter

	headed    bool                      // store fragments behind a header
	inProcess bool                      // the backend is Simple or Null: a store never blocks
	copies    *stalecopy.Copies[[]byte] // fragments kept to serve while the backend fails; nil when off

	batch    bool         // Page batches lookups (batch.go)
	pending  pending      // fragments whose store a page holds back
	npending atomic.Int64 // entries in pending, read without its lock
	// histories remembers the keys of pages (page id → *pageHistory).
	histories  sync.Map
	nhistories atomic.Int64
	siteNames  *sync.Map // with an Observer: *Site → an unnamed block's name, "path:line"
}

// New returns a fragment Cache storing into store. It panics, as for a
// programming error, on negative options (see each) and on a key prefix
// that would make fragment keys lock keys.
func New(store *backends.Cache, opts Options) *Cache {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = time.Second
	}
	if opts.StaleWhileRevalidate < 0 || opts.EarlyRefresh < 0 || opts.Lock < 0 || opts.LockWait < 0 {
		panic("fragment.New: negative StaleWhileRevalidate, EarlyRefresh, Lock or LockWait")
	}
	if opts.DefaultTimeout < 0 && opts.DefaultTimeout != backends.NoExpiry {
		panic(fmt.Sprintf("fragment.New: negative DefaultTimeout %v (use backends.NoExpiry for fragments that never expire)", opts.DefaultTimeout))
	}
	if opts.LockWait == 0 {
		opts.LockWait = opts.Lock
	}
	prefix := opts.KeyPrefix
	if opts.Version != "" {
		prefix += opts.Version + ":"
	}
	if strings.HasPrefix(prefix, lockPrefix) {
		// Its fragments would be stored under other Caches' lock keys.
		panic(fmt.Sprintf("fragment.New: key prefix %q would make fragment keys that are lock keys (prefix %q)", prefix, lockPrefix))
	}
	c := &Cache{store: store, opts: opts, prefix: prefix,
		failures: failopen.New(opts.Logger, opts.LogInterval, "fragcache: cache backend failed, rendering uncached")}
	if opts.Observer != nil {
		c.siteNames = new(sync.Map)
	}
	switch store.Backend().(type) {
	case *backends.Simple, *backends.Null:
		c.inProcess = true
	}
	c.self = weak.Make(c)
	c.headed = opts.StaleWhileRevalidate > 0 || opts.EarlyRefresh > 0
	c.batch = opts.Batch == BatchOn || (opts.Batch == BatchAuto && store.Batches())
	if opts.StaleWhileRevalidate > 0 && opts.StaleCopyBytes >= 0 {
		n := opts.StaleCopyBytes
		if n == 0 {
			n = 8 << 20
		}
		c.copies = stalecopy.New(n, func(b []byte) int { return len(b) }, bytes.Clone)
	}
	return c
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
		DelBlocks:     c.deletes.Load(),
		BackendErrors: c.failures.Errors(),
		Skips:         c.failures.Skips(),
		Breaker:       c.breakerState(),
		StaleHits:     c.staleHits.Load(),
		Refreshes:     c.refreshes.Load(),
		LockWaits:     c.lockWaits.Load(),
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
// Version, and without UnambiguousKeys, it equals
// keys.MakeTemplateFragmentKey(name, varyOn...).
func (c *Cache) Key(name string, varyOn ...string) string {
	if !c.opts.UnambiguousKeys {
		return c.prefix + keys.MakeTemplateFragmentKey(name, varyOn...)
	}
	b := append([]byte(c.prefix), keys.TemplateFragmentPrefix...)
	b, _ = c.appendPart(b, name) // a string always has a text form
	for _, v := range varyOn {
		b = append(b, '_')
		b, _ = c.appendPart(b, v)
	}
	return string(b)
}

// Delete removes the fragment stored for name and vary_on values, as a block
// with timeout "del" would; deleted reports whether one was there.
func (c *Cache) Delete(ctx context.Context, name string, varyOn ...string) (deleted bool, err error) {
	return c.store.Delete(ctx, c.Key(name, varyOn...))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// noHeader holds a header's place in a render buffer.
var noHeader [headerLen]byte

// Render executes one block: it writes the stored fragment on a hit, and
// on a miss calls body to render it into a buffer, stores the result and
// writes it. A stored value that is not text (an integer or a codec-encoded
// value app code wrote under the key) is a miss and gets overwritten. Errors
// about the call itself (a bad timeout or key value, a re-entered fragment)
// are *SiteError naming the block's position; an error from body is
// returned as body returned it, and nothing is stored.
func (c *Cache) Render(ctx context.Context, call Call, w io.Writer, body func(io.Writer) error) error {
	frag, err := c.execute(ctx, call, w, body)
	if err != nil || len(frag) == 0 {
		return err
	}
	_, err = w.Write(frag)
	return err
}

// Fragment is Render for an engine that prints a block's output as a
// value rather than writing it (html/template's functions return
// template.HTML): it returns the block's output. On a hit the slice is
// the stored value itself, not a copy; after a render it is the fragment
// just stored. It must not be modified, and nothing modifies it later (a
// backends.Backend never changes a value it returned, and fragment never
// reuses one), so an engine may hand it on as a string without copying it.
// Errors are Render's.
func (c *Cache) Fragment(ctx context.Context, call Call, body func(io.Writer) error) ([]byte, error) {
	return c.execute(ctx, call, nil, body)
}

// execute runs one block for Render and Fragment. It returns the block's
// output when it has it as an immutable slice (a stored value, a stale
// copy, a render it stored). A block rendered without the cache (a backend
// failure, "del", a cycle of blocks) is written straight into w, and
// execute returns a nil slice; with a nil w (Fragment) it is rendered into
// a buffer of its own, which execute returns.
func (c *Cache) execute(ctx context.Context, call Call, w io.Writer, body func(io.Writer) error) ([]byte, error) {
	mode, ttl, err := parseTimeout(call.Timeout)
	if err != nil {
		return nil, &SiteError{Site: call.Site, Err: err}
	}
	var buf [keyBufLen]byte
	kb, err := c.appendKey(buf[:0], call)
	if err != nil {
		return nil, &SiteError{Site: call.Site, Err: err}
	}
	p := c.pageOf(ctx)
	if p == nil && mode != deleteKey {
		// The common case, a block looked up on its own: the key stays in
		// buf unless the block misses or its fragment is kept in memory.
		// (With early refresh, whether a fragment is fresh is drawn at
		// random: lookedUp draws once.)
		v, err := c.store.GetValueBytes(ctx, kb)
		if err == nil && c.opts.EarlyRefresh == 0 {
			if frag, m, ok := c.fragmentOf(v); ok && (c.copies == nil || m.stale == 0) && m.freshness(0) == xfetch.Fresh {
				c.hits.Add(1)
				if c.opts.Observer != nil {
					c.opts.Observer.ObserveLookup(ctx, c.block(call), Hit, len(frag))
				}
				return frag, nil
			}
		}
		return c.lookedUp(ctx, call, nil, c.keyString(kb, call), mode, ttl, v, err, w, body)
	}
	key := c.keyString(kb, call)
	if mode == deleteKey {
		c.deletes.Add(1)
		if p != nil && !p.firstDelete(key) {
			return uncached(w, body)
		}
		if _, err := c.store.Delete(ctx, key); err != nil {
			if err := c.backendError(call.Site, "delete", err); err != nil {
				return nil, err
			}
		}
		c.lookup(ctx, call, Delete, 0)
		return uncached(w, body)
	}

	v, frag, served, err := c.get(ctx, p, key)
	if served {
		return frag, err
	}
	return c.lookedUp(ctx, call, p, key, mode, ttl, v, err, w, body)
}

// lookedUp goes on with a block of page p (nil outside a batched page)
// once its key was looked up: v is the stored value (zero for a miss), err
// the lookup's failure.
func (c *Cache) lookedUp(ctx context.Context, call Call, p *page, key string, mode timeoutMode, ttl time.Duration, v backends.Value, err error, w io.Writer, body func(io.Writer) error) ([]byte, error) {
	if err != nil {
		if err := c.backendError(call.Site, "get", err); err != nil {
			return nil, err
		}
		if frag, ok := c.copies.Get(key, time.Now().UnixMilli()); ok {
			c.staleHits.Add(1)
			c.lookup(ctx, call, StaleHit, len(frag))
			return frag, nil
		}
		c.lookup(ctx, call, Uncached, 0)
		return c.renderOffline(ctx, call, key, w, body)
	}
	if frag, m, ok := c.fragmentOf(v); ok {
		switch m.freshness(c.opts.EarlyRefresh) {
		case xfetch.Fresh:
			c.hits.Add(1)
			if c.copies != nil && m.stale != 0 {
				c.copies.Keep(key, m.stale, m.stale+c.opts.StaleWhileRevalidate.Milliseconds(), frag)
			}
			if c.opts.Observer != nil {
				c.opts.Observer.ObserveLookup(ctx, c.block(call), Hit, len(frag))
			}
			return frag, nil
		case xfetch.Early:
			return c.refresh(ctx, call, key, mode, ttl, w, body, frag, false)
		case xfetch.Stale:
			return c.refresh(ctx, call, key, mode, ttl, w, body, frag, true)
		}
	}
	if _, isText := v.Text(); v.Found() && !isText {
		c.notText(call.Site, key, v)
	}
	c.misses.Add(1)
	c.lookup(ctx, call, Miss, 0)

	servedByOther := false
	out, shared, err := c.group.Do(ctx, key, func() ([]byte, error) {
		// Another goroutine's render of key may have been stored between
		// the lookup above and the start of this flight: look once more
		// rather than render twice. (A failed lookup here just renders.)
		if frag, ok := c.getAgain(ctx, p, key); ok {
			servedByOther = true
			return bytes.Clone(frag), nil
		}
		out, other, err := c.fill(ctx, call, key, mode, ttl, body, false)
		servedByOther = other
		return out, err
	})
	if shared || servedByOther {
		c.waits.Add(1)
	}
	if err != nil {
		return c.flightError(err, call, w, body)
	}
	if p != nil {
		p.rendered(key, out)
	}
	return out, nil
}

// uncached renders a block without the cache: into w, or, when w is nil,
// into a buffer it returns.
func uncached(w io.Writer, body func(io.Writer) error) ([]byte, error) {
	if w != nil {
		return nil, body(w)
	}
	var buf bytes.Buffer
	if err := body(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// errServeStale is fill's answer when another process holds the lock of a
// stale fragment: serve the stale copy.
var errServeStale = errors.New("another process refreshes the fragment")

// refresh re-renders a stale fragment (or one drawn for early refresh)
// once per process: the caller that gets the flight renders it and returns
// the new fragment; any other, and any render whose refresh another
// process holds the lock of, returns old, the stored fragment.
func (c *Cache) refresh(ctx context.Context, call Call, key string, mode timeoutMode, ttl time.Duration, w io.Writer, body func(io.Writer) error, old []byte, expiredCopy bool) ([]byte, error) {
	serveOld := func() ([]byte, error) {
		if expiredCopy {
			c.staleHits.Add(1)
			c.lookup(ctx, call, StaleHit, len(old))
		} else {
			c.hits.Add(1)
			c.lookup(ctx, call, Hit, len(old))
		}
		return old, nil
	}
	out, ran, err := c.group.TryDo(ctx, key, func() ([]byte, error) {
		out, _, err := c.fill(ctx, call, key, mode, ttl, body, true)
		return out, err
	})
	switch {
	case err == errServeStale, err == nil && !ran:
		return serveOld()
	case err != nil:
		return c.flightError(err, call, w, body)
	}
	if p := c.pageOf(ctx); p != nil {
		p.rendered(key, out)
	}
	c.lookup(ctx, call, Refresh, 0)
	return out, nil
}

// fill is a flight's work for key: take the cross-process lock when asked
// to (waiting for another process's fragment instead, or, refreshing,
// leaving it to that process), render body, store the fragment, and return
// it; other reports a fragment another process rendered.
func (c *Cache) fill(ctx context.Context, call Call, key string, mode timeoutMode, ttl time.Duration, body func(io.Writer) error, refreshing bool) (out []byte, other bool, err error) {
	if c.opts.Lock > 0 {
		held, taken := c.lock(ctx, key)
		switch {
		case held:
			defer c.unlock(ctx, key)
		case taken && refreshing:
			return nil, false, errServeStale
		case taken:
			if frag, ok := c.waitForOther(ctx, key); ok {
				return frag, true, nil
			}
		}
	}
	c.renders.Add(1)
	if refreshing {
		c.refreshes.Add(1)
	}
	// The body renders behind room for what the backend stores ahead of
	// it (the []byte envelope, and the header when fragments have one),
	// so that the stored value is one copy of the buffer: append's copy,
	// which does not zero the memory it fills. out, what the block prints,
	// is that value's tail; neither ever changes (see Fragment).
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	lead := len(backends.BytesEnvelope)
	buf.WriteString(backends.BytesEnvelope)
	if c.headed {
		lead += headerLen
		buf.Write(noHeader[:]) // written once the render is done
	}
	// The clock is read only for what needs the render's duration.
	timed := c.headed || c.opts.Observer != nil
	var began time.Time
	if timed {
		began = time.Now()
	}
	p := c.pageOf(ctx)
	var unknown int
	if p != nil {
		unknown = p.unknown
	}
	err = body(buf)
	var took time.Duration
	if timed {
		took = time.Since(began)
	}
	if err == nil && p != nil && p.unknown > unknown {
		// A batched pass that met blocks not looked up yet: not a render
		// of its own (the next pass renders the body again), so not observed.
		return nil, false, errIncomplete
	}
	if c.opts.Observer != nil {
		c.opts.Observer.ObserveRender(ctx, c.block(call), took, buf.Len()-lead, err)
	}
	if err != nil {
		return nil, false, err
	}
	var m meta
	if c.headed {
		if life := c.lifetime(mode, ttl); life > 0 {
			m.stale = time.Now().Add(life).UnixMilli()
		}
		m.render = xfetch.Micros(took)
	}
	var raw []byte
	if b := buf.Bytes(); c.headed || !needsHeader(b[lead:], false) {
		if c.headed {
			putHeader(b[len(backends.BytesEnvelope):], m)
		}
		raw = append([]byte(nil), b...)
	} else {
		// Rare: a fragment that starts with the header mark is stored
		// behind a header, which the buffer has no room for.
		raw = append([]byte(backends.BytesEnvelope), encodeValue(b[lead:], false, m)...)
	}
	raw = raw[:len(raw):len(raw)]              // an append to out reallocates
	value := raw[len(backends.BytesEnvelope):] // what Set would have been given
	out = raw[len(raw)-(buf.Len()-lead):]      // the fragment is the tail
	if p != nil && c.opts.Lock == 0 {
		p.deferStore(key, value, mode, ttl, out)
	} else if err := c.storeDetached(ctx, call.Site, key, raw, mode, ttl); err != nil {
		return nil, false, err
	}
	if c.copies != nil && m.stale != 0 {
		c.copies.Keep(key, m.stale, m.stale+c.opts.StaleWhileRevalidate.Milliseconds(), out)
	}
	return out, false, nil
}

// flightError handles an error of the flight group or of a flight; a
// block it renders uncached goes where uncached puts it.
func (c *Cache) flightError(err error, call Call, w io.Writer, body func(io.Writer) error) ([]byte, error) {
	switch err {
	case errIncomplete:
		// The page runs again with the nested blocks looked up; this
		// pass's output is thrown away.
		return nil, nil
	case flight.ErrCycle:
		// Another goroutine renders this key and waits, through blocks
		// nested the other way round on another page, for this one:
		// render this block uncached rather than deadlock or fail the
		// page.
		c.renders.Add(1)
		return uncached(w, body)
	case ErrRecursive:
		// Only the group's own refusal names this block; an ErrRecursive
		// inside a body's error already names the block that re-entered.
		return nil, &SiteError{Site: call.Site, Err: err}
	}
	return nil, err
}

// fragmentOf returns the fragment a stored value holds and its header; ok
// is false for a value no block could have stored.
func (c *Cache) fragmentOf(v backends.Value) (frag []byte, m meta, ok bool) {
	b, ok := v.Text()
	if !ok {
		return nil, meta{}, false
	}
	return decodeValue(b)
}

// notText logs a value under a block's key that no block could have stored
// (an integer or a codec value app code wrote, a pickle Flask-Caching
// wrote): it counts as absent, and the render overwrites it, so the report
// comes once per such value.
func (c *Cache) notText(site *Site, key string, v backends.Value) {
	var s string
	err := v.Decode(&s)
	if err == nil {
		err = errors.New("the stored value is an integer")
	}
	c.opts.Logger.Warn("fragcache: value under a fragment's key is not a fragment, rendering over it",
		"site", site.String(), "key", key, "err", err)
}

// ttl resolves the TTL a fragment is stored with: positive, or
// backends.NoExpiry.
func (c *Cache) ttl(mode timeoutMode, ttl time.Duration) time.Duration {
	switch {
	case mode == useTTL:
		return ttl
	case c.opts.DefaultTimeout != 0:
		return c.opts.DefaultTimeout
	}
	return c.store.DefaultTimeout()
}

// lifetime is how long a fragment stored with the block's timeout stays
// fresh; 0 means forever.
func (c *Cache) lifetime(mode timeoutMode, ttl time.Duration) time.Duration {
	return max(c.ttl(mode, ttl), 0)
}

// set stores a rendered fragment with the TTL its block asked for, plus
// the grace period of stale-while-revalidate. raw is the stored value,
// backends.BytesEnvelope included, so the backends.Cache does not copy it
// once more.
func (c *Cache) set(ctx context.Context, key string, raw []byte, mode timeoutMode, ttl time.Duration) error {
	ttl = c.ttl(mode, ttl)
	if grace := c.opts.StaleWhileRevalidate; grace > 0 && ttl > 0 {
		ttl = min(ttl, math.MaxInt64-grace) + grace
	}
	return c.store.SetRaw(ctx, key, raw, ttl)
}

// storeDetached stores a rendered fragment (raw, as set takes it) on a
// context that keeps ctx's values but not its cancellation, bounded by
// StoreTimeout, and waits for it only as long as ctx lives: a render that
// outlived its request's deadline is still stored, and a slow store does
// not hold the request past its deadline. The error is the backend's, in
// strict mode, when the store finished while the request waited.
func (c *Cache) storeDetached(ctx context.Context, site *Site, key string, raw []byte, mode timeoutMode, ttl time.Duration) error {
	if c.inProcess {
		// An in-process store returns at once: it needs neither a
		// timeout (a timer per miss) nor a goroutine, only to outlive
		// the request's cancellation, if it has one.
		sctx := ctx
		if ctx.Done() != nil {
			sctx = context.WithoutCancel(ctx)
		}
		if err := c.set(sctx, key, raw, mode, ttl); err != nil {
			return c.backendError(site, "set", err)
		}
		return nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.StoreTimeout)
	if ctx.Done() == nil { // nothing to detach from: no goroutine needed
		defer cancel()
		if err := c.set(sctx, key, raw, mode, ttl); err != nil {
			return c.backendError(site, "set", err)
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- c.set(sctx, key, raw, mode, ttl)
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

// keyBufLen is the size of the buffer on the stack a block's key is built
// in; a longer key is built on the heap.
const keyBufLen = 128

// keyHead is the start of a block's keys, up to and including its name,
// for one Cache and one string name: the prefixes and the name, escaped as
// the Cache escapes it.
type keyHead struct {
	cache weak.Pointer[Cache]
	name  string
	b     []byte
}

// appendKey appends the key of a call (within the backend cache's prefix)
// to b.
func (c *Cache) appendKey(b []byte, call Call) ([]byte, error) {
	var err error
	start := len(b)
	name, isString := call.Name.(string)
	h, ok := call.Site.head.Load().(*keyHead)
	reuse := ok && isString && h.cache == c.self && h.name == name
	if reuse {
		// The common block, named by a literal, skips both prefixes and
		// the name's conversion and escaping.
		b = append(b, h.b...)
	} else {
		b = append(b, c.prefix...)
		b = append(b, keys.TemplateFragmentPrefix...)
		if call.Name != nil {
			if b, err = c.appendPart(b, call.Name); err != nil {
				return nil, err
			}
		} else if b, err = c.appendUnnamed(b, call.Site); err != nil {
			return nil, err
		}
	}
	headEnd := len(b)
	for _, v := range call.VaryOn {
		b = append(b, '_')
		if b, err = c.appendPart(b, v); err != nil {
			return nil, err
		}
	}
	// A head is kept once the whole key is built, for a site's first
	// string name and the first Cache that renders it, until that Cache is
	// collected: a name that changes from call to call, or a site rendered
	// through several Caches in turn (pongo2 binds one per render), would
	// otherwise allocate a head each time. The head keeps a copy of the
	// name: it lives as long as the template, and the name may be a slice
	// of a far larger string. (Its own Cache is compared first: a name that
	// changes per call then costs no weak pointer read.)
	if !reuse && isString && (!ok || (h.cache != c.self && h.cache.Value() == nil)) {
		call.Site.head.Store(&keyHead{cache: c.self, name: strings.Clone(name), b: bytes.Clone(b[start:headEnd])})
	}
	return b, nil
}

// keyString returns the key appendKey built as a string, for the paths
// that keep it (a miss, a page's lookups, a kept copy).
func (c *Cache) keyString(b []byte, call Call) string {
	if len(call.VaryOn) > 0 {
		return string(b)
	}
	// A block without vary_on values (a named sidebar, a menu) usually has
	// the same key on every render: reuse the last one instead of allocating.
	if last, ok := call.Site.lastKey.Load().(string); ok && last == string(b) {
		return last
	}
	key := string(b)
	call.Site.lastKey.Store(key)
	return key
}

// backendError counts a backend failure and, in strict mode, returns it;
// otherwise it logs it (at most once per LogInterval) and returns nil so the
// block renders uncached.
func (c *Cache) backendError(site *Site, op string, err error) error {
	skipped := c.failures.Count(err)
	if c.opts.Strict {
		return &SiteError{Site: site, Err: err}
	}
	if !skipped { // a skip is not logged: the breaker logged that it opened
		c.failures.Report(err, "op", op, "site", site.String())
	}
	return nil
}
