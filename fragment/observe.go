package fragment

import (
	"context"
	"strconv"
	"time"
)

// Outcome is what one execution of a block found in the cache.
type Outcome uint8

// The outcomes an [Observer] is told.
const (
	// Hit: the stored fragment was written (including a fresh fragment
	// written while another request refreshes it early).
	Hit Outcome = iota
	// StaleHit: an expired fragment was written, within its grace period,
	// or a copy kept in memory while the backend could not be reached.
	StaleHit
	// Miss: no usable fragment was stored; the body was rendered by this
	// request or by another one it waited for.
	Miss
	// Refresh: the fragment was stale or drawn for early refresh, and this
	// request re-rendered it.
	Refresh
	// Delete: a block with timeout "del" deleted its fragment.
	Delete
	// Uncached: the backend failed, and the body was rendered uncached.
	Uncached
)

var outcomeNames = [...]string{Hit: "hit", StaleHit: "stale_hit", Miss: "miss", Refresh: "refresh", Delete: "delete", Uncached: "uncached"}

// String returns the outcome's snake_case name ("hit", "stale_hit",
// "miss", "refresh", "delete", "uncached"), fit for a metric label value.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Outcomes lists every Outcome, for metrics packages that declare their
// series up front.
func Outcomes() []Outcome { return []Outcome{Hit, StaleHit, Miss, Refresh, Delete, Uncached} }

// Block identifies a block for an [Observer]: its site and its fragment
// name — the block's name argument, or "path:line" for an unnamed block.
// vary_on values are never part of it, so a metric labelled with Name has
// one series per block rather than one per user or product. A name
// computed from request data (`cache 60, "user-" + id`) is as unbounded as
// that data: metrics packages cap the names they keep.
type Block struct {
	Site *Site
	Name string
}

// An Observer is told what each block execution did, for metrics. Its
// methods run on the rendering goroutine, so they must be fast and safe for
// concurrent use. A Cache without an Observer (the default) pays one nil
// check per block. The packages under
// github.com/fragcache/fragcache/metrics implement it.
type Observer interface {
	// ObserveLookup is called once per block execution when its outcome
	// is known: before the body renders on a Miss, after it on a Refresh.
	// bytes is the size of the fragment written from the cache on a Hit
	// or StaleHit, else 0.
	ObserveLookup(ctx context.Context, b Block, o Outcome, bytes int)
	// ObserveRender is called after a body was rendered to be stored (on
	// a Miss or Refresh, once per render however many requests waited for
	// it), with its duration and size; err is the body's error, and then
	// nothing was stored.
	ObserveRender(ctx context.Context, b Block, took time.Duration, bytes int, err error)
}

// block returns the Block an Observer is told about for call.
func (c *Cache) block(call Call) Block {
	if call.Name != nil {
		if s, ok := call.Name.(string); ok {
			return Block{Site: call.Site, Name: s}
		}
		if b, err := AppendKeyValue(nil, call.Name); err == nil {
			return Block{Site: call.Site, Name: string(b)}
		}
	}
	// An unnamed block's label is built once per site.
	if name, ok := c.siteNames.Load(call.Site); ok {
		return Block{Site: call.Site, Name: name.(string)}
	}
	name := call.Site.Path + ":" + strconv.Itoa(call.Site.Line)
	c.siteNames.Store(call.Site, name)
	return Block{Site: call.Site, Name: name}
}

// lookup reports a block's outcome to the Observer, if any.
func (c *Cache) lookup(ctx context.Context, call Call, o Outcome, bytes int) {
	if c.opts.Observer != nil {
		c.opts.Observer.ObserveLookup(ctx, c.block(call), o, bytes)
	}
}
