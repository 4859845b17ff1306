package fragment

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/flight"
	"github.com/fragcache/fragcache/internal/xfetch"
)

// Page batching. On a networked backend every block lookup is a round
// trip, so a page of ten blocks waits for ten. Cache.Page renders a page so
// that the lookups of all the blocks it reaches go out in one GetMany, and
// the stores of the fragments it renders in one SetItems pipeline, with no
// change to templates and the same code on every engine.
//
// It does so in passes over the whole page, because no engine lets a block
// be rendered later with the state it had when it was reached (Jet's scopes
// are private and recycled, pongo2's for-loop reuses one context across
// iterations). A pass runs the template as usual, into a buffer; a block
// whose key the page has not looked up yet records the key, writes nothing
// and skips its body; a block whose key it has looked up is served as
// usual from the looked-up value (a hit writes the fragment, a miss renders
// the body through the flight gate). A pass that met no new key is the
// page: it is written to w. Otherwise the new keys are fetched with one
// GetMany and the page runs again. So
//
//   - a page whose blocks all hit costs one GetMany, and a loop of blocks
//     (collection caching) one GetMany for the whole loop;
//   - a page whose blocks all miss costs one GetMany per level of nesting
//     plus one pipelined store: 1 + depth + 1 round trips;
//   - a missed body whose nested blocks are all known renders once, for
//     real, and is kept in the page, so later passes write it without
//     running it; a missed body that reached a block not looked up yet is
//     an incomplete render: it is not stored and runs again in the next
//     pass (the flight gate's waiters take over rather than share it).
//
// Pages remember their keys: a page (identified by its template) whose
// last two renders looked up the same keys looks them up before its first
// pass, so in the steady state a page whose keys do not depend on the
// request runs once after one GetMany. A page whose keys change (a user id
// in vary_on) is not guessed for, since a wrong guess costs a round trip;
// a guess that misses a key only adds a pass.
//
// The cost is that the template outside blocks runs once per pass: twice
// for a flat page that is not remembered (once to collect the keys, once
// for real), and once more per level of nested misses; a missed outer
// body runs once per level of nested blocks below it that were not looked
// up yet. Side effects of a
// template (functions with effects, counters) happen once per pass. Stores
// are held back until the page is done; meanwhile the fragments are served
// from the process (Cache.pending) to every other render that misses them,
// so the flight gate's one render per key holds as before. With
// Options.Lock the store is not held back (the lock must go only once the
// fragment is stored). Statistics count a block once per pass that served
// it.

// BatchMode says whether Cache.Page batches the lookups of a page.
type BatchMode uint8

const (
	// BatchAuto batches when the backend is a backends.Batcher (Redis,
	// memcached): a round trip there costs tens of microseconds, far more
	// than a second pass over a page. In-process backends render directly.
	BatchAuto BatchMode = iota
	// BatchOff never batches: Page renders the page once, every block
	// looking itself up.
	BatchOff
	// BatchOn always batches, even on an in-process backend (for tests
	// and measurements).
	BatchOn
)

// maxLookups bounds the GetMany calls of one page: a template that reaches
// new keys on every pass (a key made from the time, a random value) gets
// a last pass in which unknown keys are looked up one by one.
const maxLookups = 8

type pageCtxKey struct{}

// page is the state of one Cache.Page call. A page is rendered by one
// goroutine at a time, so it needs no lock.
type page struct {
	c      *Cache
	known  map[string]lookup
	want   []string // keys met in this pass that are not known
	wanted map[string]struct{}
	// unknown counts the blocks met that were not known, repeats included:
	// a render during which it grew is incomplete, even when the keys it
	// met were wanted already.
	unknown int
	direct  bool // last pass: unknown keys are looked up one by one
	deleted map[string]bool
	stores  []backends.Item
	// reached are the keys the pass reached that the page had looked up,
	// in order: what the page looks up, for Page's history.
	reached    []string
	reachedSet map[string]struct{}
}

// lookup is what the page knows about a key: the looked-up value (or the
// error looking it up), or the fragment a render of this page produced.
type lookup struct {
	v        backends.Value
	err      error
	frag     []byte
	rendered bool
}

// errIncomplete is a render that reached blocks not looked up yet.
var errIncomplete = fmt.Errorf("fragment: render left nested blocks to the next pass: %w", flight.ErrAbandon)

// Batches reports whether Page batches lookups for this cache.
func (c *Cache) Batches() bool {
	return c.batch
}

// Page renders one page through render, which executes the template into
// the writer it is given with the context it is given (the engine packages
// pass that context to their blocks: pongo2tag.Execute, jettag's
// Tags.Execute, htmltemplate's ExecuteContext). When the cache batches
// (Options.Batch), the blocks' lookups go out in one GetMany per level of
// nesting and the stores in one pipeline, and render runs more than once
// (see batch.go); the output is buffered and written to w once complete.
// Otherwise render runs once, straight into w. An error from render is
// returned, and nothing is written to w in batched mode.
//
// id identifies the page, typically its template (a comparable value; nil,
// or a value that is not comparable, for none). A page whose last two renders with that id looked up the
// same keys looks them up before its first pass: in the steady state such
// a page runs once, after one GetMany. Keys are remembered for up to
// maxRemembered ids, of pages of up to maxRememberedKeys keys.
func (c *Cache) Page(ctx context.Context, w io.Writer, id any, render func(ctx context.Context, w io.Writer) error) error {
	if !c.batch || ctx.Value(pageCtxKey{}) != nil { // a page inside a page renders as part of it
		return render(ctx, w)
	}
	p := &page{c: c, known: make(map[string]lookup)}
	pctx := context.WithValue(ctx, pageCtxKey{}, p)
	h := c.history(id)
	if keys := h.stableKeys(); len(keys) > 0 {
		for _, k := range keys {
			p.need(k)
		}
		p.fetch(ctx)
		p.unknown = 0
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}()
	defer p.dropStores() // a failed or panicking page stores nothing
	for lookups := 0; ; lookups++ {
		buf.Reset()
		p.want, p.direct = p.want[:0], lookups == maxLookups
		p.reached = p.reached[:0]
		clear(p.reachedSet)
		if err := render(pctx, buf); err != nil {
			return err
		}
		if len(p.want) == 0 {
			break
		}
		p.fetch(ctx)
	}
	h.remember(p.reached)
	_, werr := w.Write(buf.Bytes())
	serr := p.flush(ctx)
	if werr != nil {
		return werr
	}
	return serr
}

func (c *Cache) pageOf(ctx context.Context) *page {
	if !c.batch {
		return nil
	}
	p, _ := ctx.Value(pageCtxKey{}).(*page)
	if p != nil && p.c != c {
		return nil // another Cache's page: this cache's blocks look up directly
	}
	return p
}

// need records key as wanted by this pass.
func (p *page) need(key string) {
	p.unknown++
	if p.wanted == nil {
		p.wanted = make(map[string]struct{})
	}
	if _, ok := p.wanted[key]; !ok {
		p.wanted[key] = struct{}{}
		p.want = append(p.want, key)
	}
}

// reach records a looked-up key the pass reached.
func (p *page) reach(key string) {
	if p.reachedSet == nil {
		p.reachedSet = make(map[string]struct{})
	}
	if _, ok := p.reachedSet[key]; !ok {
		p.reachedSet[key] = struct{}{}
		p.reached = append(p.reached, key)
	}
}

// fetch looks up every wanted key in one GetMany. A failure is every
// key's: the blocks then handle it as a failed lookup of their own
// (fail-open, stale copies, strict mode).
func (p *page) fetch(ctx context.Context) {
	vals, err := p.c.store.GetMany(ctx, p.want...)
	for i, k := range p.want {
		if err != nil {
			p.known[k] = lookup{err: err}
		} else {
			p.known[k] = lookup{v: vals[i]}
		}
	}
	clear(p.wanted)
}

// firstDelete reports whether a "del" block is the first of the page to
// delete key: later passes need not delete it again.
func (p *page) firstDelete(key string) bool {
	if p.deleted == nil {
		p.deleted = make(map[string]bool)
	}
	if p.deleted[key] {
		return false
	}
	p.deleted[key] = true
	return true
}

// rendered keeps a fragment rendered (or received from another render)
// during the page, so later passes write it without rendering it again.
func (p *page) rendered(key string, frag []byte) {
	p.known[key] = lookup{frag: frag, rendered: true}
}

// deferStore holds back the store of a rendered fragment until the page is
// done, serving it meanwhile from the process to other renders that miss.
func (p *page) deferStore(key string, value []byte, mode timeoutMode, ttl time.Duration, frag []byte) {
	p.stores = append(p.stores, backends.Item{Key: key, Value: value, Timeout: p.c.storeTTL(mode, ttl)})
	p.c.pend(key, frag)
}

// flush stores the page's fragments in one SetItems on a context detached
// from ctx's cancellation, bounded by StoreTimeout, waiting for it only as
// long as ctx lives (as storeDetached does for one fragment).
func (p *page) flush(ctx context.Context) error {
	if len(p.stores) == 0 {
		return nil
	}
	c, items := p.c, p.stores
	p.stores = nil
	store := func(sctx context.Context) error {
		defer c.unpend(items)
		return c.store.SetItems(sctx, items)
	}
	report := func(err error) error {
		if err == nil {
			return nil
		}
		return c.backendError(&Site{Path: "(page)"}, "set items", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.StoreTimeout)
	if ctx.Done() == nil {
		defer cancel()
		return report(store(sctx))
	}
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- store(sctx)
	}()
	select {
	case err := <-done:
		return report(err)
	case <-ctx.Done():
		go func() { _ = report(<-done) }()
		return nil
	}
}

// dropStores forgets the stores of a page that failed: its fragments
// rendered fine, but a failed page's renders are not trusted to be what a
// good page would have stored, and nothing waits for them.
func (p *page) dropStores() {
	p.c.unpend(p.stores)
	p.stores = nil
}

// storeTTL is the timeout set passes for a block's timeout, as a
// backends.Item carries it.
func (c *Cache) storeTTL(mode timeoutMode, ttl time.Duration) time.Duration {
	ttl = c.ttl(mode, ttl)
	if grace := c.opts.StaleWhileRevalidate; grace > 0 && ttl > 0 {
		ttl = min(ttl, math.MaxInt64-grace) + grace
	}
	return ttl
}

// pending holds the fragments rendered by pages whose stores are held back
// until the page is done, so that other renders missing them meanwhile
// (the flight gate's second look) take them instead of rendering again.
type pending struct {
	mu sync.Mutex
	m  map[string]pendingFrag
}

type pendingFrag struct {
	frag []byte
	refs int // pages holding a store of the key back
}

func (c *Cache) pend(key string, frag []byte) {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	if c.pending.m == nil {
		c.pending.m = make(map[string]pendingFrag)
	}
	pf := c.pending.m[key]
	c.pending.m[key] = pendingFrag{frag: frag, refs: pf.refs + 1}
	c.npending.Add(1)
}

func (c *Cache) unpend(items []backends.Item) {
	if len(items) == 0 {
		return
	}
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	for _, it := range items {
		pf, ok := c.pending.m[it.Key]
		if !ok {
			continue
		}
		c.npending.Add(-1)
		if pf.refs <= 1 {
			delete(c.pending.m, it.Key)
		} else {
			pf.refs--
			c.pending.m[it.Key] = pf
		}
	}
}

// pendingFrag returns a fragment rendered by a page whose store is held
// back.
func (c *Cache) pendingFrag(key string) ([]byte, bool) {
	if c.npending.Load() == 0 {
		return nil, false
	}
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	pf, ok := c.pending.m[key]
	return pf.frag, ok
}

// get looks key up for execute: from the backend, or, in a batched page,
// from what the page looked up. served reports that the block is done:
// frag is a fragment the page rendered earlier, or nil for a key not
// looked up yet, which get records for the next pass (the block writes
// nothing).
func (c *Cache) get(ctx context.Context, p *page, key string) (v backends.Value, frag []byte, served bool, err error) {
	if p == nil {
		v, err = c.store.GetValue(ctx, key)
		return v, nil, false, err
	}
	l, known := p.known[key]
	if known {
		p.reach(key)
	}
	switch {
	case l.rendered:
		c.hits.Add(1)
		return v, l.frag, true, nil
	case known:
		return l.v, nil, false, l.err
	case !p.direct:
		p.need(key)
		return v, nil, true, nil
	}
	v, err = c.store.GetValue(ctx, key)
	return v, nil, false, err
}

// getAgain is the flight's second look at key before rendering it:
// another goroutine's render may have been stored since the first. A
// page's render whose store is held back is in the process; a batched page
// looks only there, its lookups being one per pass. (A failed lookup just
// renders.)
func (c *Cache) getAgain(ctx context.Context, p *page, key string) ([]byte, bool) {
	if frag, ok := c.pendingFrag(key); ok {
		return frag, true
	}
	if p != nil {
		return nil, false
	}
	if v, err := c.store.GetValue(ctx, key); err == nil {
		if frag, m, ok := c.fragmentOf(v); ok && m.freshness(0) != xfetch.Stale {
			return frag, true
		}
	}
	return nil, false
}

// Bounds of the keys Page remembers per page id.
const (
	maxRemembered     = 1024
	maxRememberedKeys = 256
)

// pageHistory is what Page remembers of the renders of one page id: the
// keys the last one looked up, and whether they were the same as the
// previous one's (a page whose keys depend on the request, such as a user
// id in vary_on, is never prefetched: a wrong guess costs a round trip).
type pageHistory struct {
	mu     sync.Mutex
	keys   []string
	stable bool
}

// history returns id's history, or nil when there is none to keep.
func (c *Cache) history(id any) *pageHistory {
	if id == nil || !reflect.TypeOf(id).Comparable() {
		return nil
	}
	if h, ok := c.histories.Load(id); ok {
		return h.(*pageHistory)
	}
	if c.nhistories.Load() >= maxRemembered {
		return nil
	}
	h, loaded := c.histories.LoadOrStore(id, new(pageHistory))
	if !loaded {
		c.nhistories.Add(1)
	}
	return h.(*pageHistory)
}

// stableKeys returns the keys to look up before the first pass.
func (h *pageHistory) stableKeys() []string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stable {
		return nil
	}
	return h.keys
}

// remember records the keys a render looked up.
func (h *pageHistory) remember(keys []string) {
	if h == nil {
		return
	}
	if len(keys) > maxRememberedKeys {
		keys = nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stable = len(keys) > 0 && slices.Equal(h.keys, keys)
	if !h.stable {
		h.keys = slices.Clone(keys)
	}
}
