// Package fragment is the engine-neutral core of fragcache's template
// `cache` blocks. The pongo2tag, jettag and htmltemplate packages parse
// `cache timeout[, name[, vary_on...]] … endcache` in their engine and hand
// each execution to [Cache.Render] with the block's [Site] (where it is in
// which template) and its evaluated arguments; everything else — keys,
// timeouts, hits and misses, deduplication, error policy, statistics — lives
// here once.
//
// Semantics are Flask-Caching's: the key is
// keys.MakeTemplateFragmentKey(name, varyOn...), where an omitted name
// becomes keys.FragmentName(templatePath, line); a nil timeout means the
// default, 0 never expires, and "del" deletes the fragment and renders the
// body without storing it. A hit writes the stored bytes; a miss renders the
// body into a pooled buffer and stores one copy of it, which is also what
// the block writes (on a SimpleCache that copy, and the key, are all a miss
// allocates).
//
// Flask's keys are ambiguous (name "sidebar" with vary_on "admin" is name
// "sidebar_admin"); Options.UnambiguousKeys escapes the parts so that no
// two blocks share a key (see keymode.go). Without it, an unnamed block in
// a template whose path ends in a digit is refused (ErrAmbiguousName).
//
// Beyond Flask: concurrent misses of one key in a process render the body
// once (golang.org/x/sync/singleflight's idea, extended so that a block
// re-entering a key that its own goroutine is rendering gets an error
// instead of a deadlock, and a block whose key is being rendered by a
// goroutine that waits for it — two pages nesting two blocks in opposite
// orders — renders uncached); a failed render is never stored and every
// waiter gets its error, unless the render failed because its own request
// was cancelled: then a waiter whose request is alive takes over the
// render; backend errors are fail-open —
// counted, logged at most once per interval, and the body is rendered
// uncached (once for concurrent renders of the key, as for a miss) —
// unless Options.Strict asks for them to be returned.
//
// Outages and herds. A backend whose circuit breaker is open
// (backends.Breaker) is skipped without a log line per call (Stats.Skips,
// Stats.Breaker). The store after a render runs on a context detached from
// the request's cancellation, bounded by Options.StoreTimeout, so a fragment
// slower than its request's deadline is still stored. Three options, off by
// default, go further: StaleWhileRevalidate serves a stale fragment, within a
// grace period, while one render per process refreshes it, and serves
// fragments kept in memory while the backend cannot be reached; EarlyRefresh
// refreshes hot fragments shortly before they expire (probabilistic early
// expiration, "XFetch"); Lock makes a cold fragment render once across
// processes, through a short lock taken with the backend's atomic Add. The
// first two store fragments behind a small header (stale.go); by default a
// stored fragment is exactly the rendered bytes, as in Flask-Caching.
//
// One round trip per page. On a networked backend (a backends.Batcher:
// Redis, memcached) each lookup costs a round trip. [Cache.Page], which the
// engines' page entry points call (pongo2tag.Execute, jettag's
// Tags.Execute, htmltemplate's Execute methods), renders a page in passes so
// that the lookups of all its blocks go out in one GetMany per level of
// nesting and the stores of its rendered fragments in one pipelined
// SetItems: 1 round trip for a page whose blocks all hit, 1 + depth + 1 for
// one whose blocks all miss. batch.go says how and what it costs
// (Options.Batch decides when).
package fragment
