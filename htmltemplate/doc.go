// Package htmltemplate adds Flask-Caching's fragment cache blocks to Go's
// html/template:
//
//	{{ cache 300 "sidebar" .User.ID }}…{{ endcache }}
//
// caches what the body renders for 300 seconds under
// keys.MakeTemplateFragmentKey("sidebar", <user id>), through a
// *fragment.Cache, which handles hits, misses, deduplication of concurrent
// misses, "del", fail-open and statistics.
//
// # Why a rewrite
//
// html/template has no block tags of its own and gives functions neither
// the template, the writer nor the execution state, so a block cannot be a
// function. This package therefore parses templates itself: cache and
// endcache are registered as placeholder functions so that text/template's
// parser accepts them, then each {{ cache … }}…{{ endcache }} range of the
// parse tree is hoisted into a template of its own (named
// "cache@path:line:col") and replaced by a call of a function that renders
// that template through fragment.Cache.Fragment and returns the result as
// template.HTML. html/template escapes the body itself, as a template
// starting in HTML element content, so cached and uncached output are
// byte-identical as long as the block stands in element content, which
// Execute checks (see Contexts). Template wraps *template.Template with the
// same methods (Parse, ParseFiles, ParseGlob, ParseFS, Funcs, Lookup,
// Execute, ExecuteTemplate, Clone…), applying the rewrite after every Parse.
//
// # Binding a cache
//
// A Template is bound to one *fragment.Cache when it is created, and every
// template associated with it (New, Parse, Lookup, Clone) uses that cache:
//
//	store := backends.New(backends.NewSimple(0), backends.CacheOptions{})
//	fc := fragment.New(store, fragment.Options{})
//	t := htmltemplate.Must(htmltemplate.ParseFSPaths(fc, files, "*.html", "*/*.html"))
//	err := t.ExecuteTemplate(w, "shop/index.html", data)
//
// A nil cache renders every body uncached.
//
// # A context per execution
//
// html/template's Execute takes no context.Context and gives template
// functions none. ExecuteContext and ExecuteTemplateContext take one,
// typically the request's, and every cache block of that execution makes
// its backend calls and waits for other executions' renders under it, so
// the request's deadline bounds the cache's share of the page:
//
//	err := t.ExecuteTemplateContext(r.Context(), w, "shop/index.html", data)
//
// Every execution records its context and its data, for the duration of
// the call, under the executing goroutine (text/template executes
// synchronously, so a block's function runs on the goroutine that called
// ExecuteContext), in the template set; nothing is global and nothing
// outlives the call. Execute and ExecuteTemplate use context.Background().
//
// On a networked backend (fragment.Cache.Batches), Execute and its
// variants render through fragment.Cache.Page: the lookups of every block
// of the page go out in one round trip per level of nesting and the stores
// in one pipeline, and the output is buffered and written once complete
// (the template runs more than once; see package fragment).
//
// # Syntax
//
// Arguments are separated by spaces, like any template function's:
// timeout, then an optional name, then vary_on values.
//
//	{{ cache 300 }}…{{ endcache }}               unnamed: keys.FragmentName(path, line)
//	{{ cache 300 "sidebar" .User.ID }}…{{ endcache }}
//	{{ cache nil "nav" }}…{{ endcache }}         the cache's default timeout
//	{{ cache 0 "footer" }}…{{ endcache }}        never expires
//	{{ cache 0.5 }}…{{ endcache }}               fractions of a second
//	{{ cache "del" "sidebar" .User.ID }}…{{ endcache }}  delete, render, do not store
//
// The timeout may also be a time.Duration from the data. Any argument may be
// a pipeline in parentheses. Constant arguments are checked when the
// template is parsed. Both tags must be actions of their own and sit in the
// same list of actions: a cache inside an {{if}} needs its endcache inside
// that {{if}}. Blocks nest, in templates defined with {{define}} and {{block}}
// too.
//
// # Template names, paths and positions
//
// An unnamed block's key is keys.FragmentName(path, line), where path is
// the name html/template gives the template the block was parsed in: the
// base name for ParseFiles, ParseGlob and ParseFS ("index.html"), the
// template's name for Parse. Files in different directories with one base
// name collide there, as they do in html/template itself; ParseFSPaths names
// templates by their slash-separated path within an fs.FS
// ("shop/index.html"), which keeps them apart and matches Flask's
// loader-relative names. Two Template sets sharing one fragment.Cache
// share its key space: if both hold a template of one name ("index.html"
// from two roots), their unnamed blocks on one line share a key, since
// html/template has no loader to take a set's name from (pongo2tag.NewLoader
// and jettag's Tags.NewSet do). Give such sets their own fragment.Cache with
// its own KeyPrefix or Version, or name the blocks.
// Errors name blocks as path:line:col, with line and
// column as text/template reports them (parse.Tree.ErrorContext: the
// column is the byte offset of the word cache within its line), so they
// agree with html/template's own messages.
//
// Two blocks on one line must not share that key: Parse refuses a second
// unnamed block (no name, or the constant nil) on a line (ErrSameLine, and
// ErrSyntax), and Execute refuses a block whose name is an expression that
// evaluates to nil on a line where another block may have the default key
// (unnamed, or named by an expression). Name one of them.
//
// # Body semantics
//
// The body runs as its own template, with the dot it had at the block, so:
//
//   - A $variable declared outside the block cannot be used inside it (the
//     hoisted template cannot see it); Parse rejects that with
//     ErrOuterVariable. Variables declared inside the body are fine, and
//     the block's own arguments may use any variable.
//   - $ keeps its meaning: where the dot is $ (a block at the top level of
//     a template, or in its {{if}} branches, in a template that does not
//     assign $), the body runs with the dot as its data, which makes it $
//     again; elsewhere, when a body uses $, the block passes it along and
//     the body sets it back before running.
//   - {{break}} and {{continue}} cannot leave the body (ErrSyntax).
//   - The key is computed from the arguments only: anything else the body
//     reads ($ included) must be in the name or vary_on values, or be the
//     same for every render sharing the key.
//
// # Contexts
//
// A fragment is escaped for HTML element content; in an attribute value, a
// URL, a script, a style sheet, an RCDATA element (<title>, <textarea>) or
// a comment, html/template would escape it a second time or strip its tags.
// Such a block is an error (ErrContext) rather than wrong output. Since
// html/template computes contexts only when a template is executed, and a
// template's context depends on the one calling it, the check runs on the
// first Execute or ExecuteTemplate of each template name, before anything
// is written, on a private clone in which nothing is executed; Check runs
// it on demand, e.g. at startup or in a test. A block's body must also end
// in element content. The check needs a namespace that has not been
// executed, which is why the underlying *template.Template is not
// exposed.
//
// # Cost
//
// text/template calls a block's function through reflect, and evaluating
// and passing its arguments costs more than the cache lookup. So before
// the first execution, when the set is final, a block whose dynamic
// arguments are the dot or field chains of it ({{ cache 300 "side"
// .User.ID }}), or of $ where $ is the execution's data (see below), is
// set to evaluate them itself, exactly as text/template would: struct
// fields, map keys and missing keys on a fast path (field indexes cached
// per type); anything else (a method, a nil pointer, missingkey=error, an
// unexported field...) by text/template itself on the same value, so
// values and errors are text/template's own. Such a block is passed only
// the dot (the reflect.Value text/template holds). Where its dot is the
// data of the execution (at the top level of a template executed by
// Execute, ExecuteTemplate, as a body, or by {{template "name" .}} actions
// only, each where the caller's dot is its data: layouts and partials), it
// is passed nothing at all and reads the data from the record above. On a
// page of 10 blocks varying on the user that all hit, the page allocates
// as much as the same page printing each fragment from a function
// returning a constant template.HTML, html/template's cheapest way to
// print one, and costs about 1.3–1.5× it (BENCHMARKS.md). A string vary_on
// value repeating from page to page is boxed once.
//
// A body runs on the very value the dot had at the block, so an
// addressable range element shows its pointer methods to the body, as it
// does without the cache tags. The exception is a block at the top level
// of a template that a {{template}} action calls with another value than
// the caller's data ({{ range .Items }}{{ template "card" . }}): text/template
// passes a function there only an interface{} copy of the dot (the dot may
// be invalid, which it passes to nothing else), so that block's body sees
// the copy, as before (text/template evaluates its arguments itself).
//
// # Caveats
//
// The rewrite relies on text/template/parse, whose node types the Go 1
// compatibility promise covers although the package says it is not meant
// for general use. The context check reads which blocks a template reaches
// from those parse trees, and html/template's verdicts from its public
// template.Error codes; but html/template names a context only in the
// names of the template copies it makes and in its error descriptions, so
// the check reads a block's context there (see check.go for why no public
// API can answer). A Go release that renamed them would leave blocks
// outside element content rejected, with a vaguer message. Parsing must end before the first execution, as in
// html/template. The names cache and endcache, and functions and templates
// whose names start with "_fragcache_", are reserved. The cache store holds
// HTML that is written out unescaped, so whoever can write to it can inject
// markup: treat it as trusted.
package htmltemplate
