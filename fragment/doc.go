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
// body into a buffer, stores it and writes it.
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
// uncached — unless Options.Strict asks for them to be returned.
package fragment
