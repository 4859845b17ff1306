// Package jettag adds Flask-Caching's fragment cache block to Jet
// (github.com/CloudyKit/jet/v6) templates:
//
//	{{ cache 300, "sidebar", user.ID }}…{{ endcache }}
//
// Jet has no API for new statements, so the block is compiled by rewriting
// the source before Jet parses it. A Loader wrapper (Tags.Loader) turns
//
//	{{ cache ARGS }}BODY{{ endcache }}
//
// into
//
//	{{ if __fragcache(N, ARGS) }}{{ block __fragcache_N() }}BODY{{ end }}{{ end }}
//
// where N indexes a table of fragment.Site values (template path, line and
// column of the tag, digest of BODY's source) that the rewrite filled in.
// The global function __fragcache evaluates the arguments and hands the
// block to fragment.Cache.Render, whose body function runs BODY with
// Runtime.YieldBlock into Render's buffer; it returns false, so Jet never
// runs the block in place. BODY thus runs inside Render, on the template's
// goroutine and in the caller's scope (loop variables, outer variables and
// "." are visible), and Render's guarantees hold: an error in BODY is
// returned by Template.Execute and nothing is stored; concurrent misses of
// one key render BODY once and every waiter gets its output or its error.
// The rewrite is a small scanner that follows Jet's lexer: it honours the
// Set's delimiters, skips comments and string literals, keeps {{- and -}}
// trim markers, and adds no newline, so Jet's line numbers stay those of
// the source.
//
// # Binding
//
// Make a Tags from a fragment.Cache and let it build the Set:
//
//	tags := jettag.New(fragment.New(store, fragment.Options{}), jettag.Options{})
//	set, err := tags.NewSet("views", jet.NewOSFileSystemLoader("./views"))
//
// or wrap the loader of a Set you build and bind the Set:
//
//	loader, err := tags.Loader("views", jet.NewOSFileSystemLoader("./views"))
//	set := jet.NewSet(loader, jet.WithDelims("[[", "]]"))
//	err := tags.Bind(set) // with jettag.Options{LeftDelim: "[[", RightDelim: "]]"}
//
// Jet does not expose a Set's delimiters: Options must repeat the values
// given to jet.WithDelims and jet.WithCommentDelims, and Bind checks that
// they agree. Set.Parse bypasses the loader; use Tags.Parse (or
// Tags.Rewrite, then Set.Parse) for such templates. Jet's Execute takes no
// context.Context: pass one in the ContextVar variable (WithContext) for
// backend calls and for waiting on another goroutine's render; without it
// blocks use context.Background(). (pongo2tag.WithContext and
// htmltemplate's ExecuteContext do the same for the other engines.)
//
// Tags.Execute runs a template through fragment.Cache.Page: on a networked
// backend, the lookups of every block the page reaches go out in one round
// trip per level of nesting and the stores in one pipeline (the template
// runs more than once, into a buffer; see package fragment).
//
// # Syntax
//
// The arguments are Jet expressions separated by commas, optionally in
// parentheses ({{ cache(300, "x") }}): a timeout, then an optional name,
// then vary_on values. The timeout is a number of seconds (integer or
// fractional), a time.Duration, nil for the default timeout, 0 for never
// expiring, or "del" to delete the fragment and render the body uncached.
// A named block is stored under keys.MakeTemplateFragmentKey(name,
// vary_on...), which app code can rebuild to delete it. An unnamed block
// (or one named nil) is named keys.FragmentName(path, line), where path is
// the name of the loader that loaded the template (Tags.Loader, NewSet),
// "/", and the template's Jet path without its leading slash (loader
// "web", "/emails/a.jet" → "web/emails/a.jet12" for line 12), as Flask
// names it after the loader's path; errors name blocks the same way. Since
// each root has its own loader name and holds one file per path, two Sets
// served by one Tags never give two files one key (pongo2tag.NewLoader
// follows the same rule: the path comes from the loader). A
// template given to Tags.Parse has no loader: its path is the one given.
// Blocks nest.
//
// # Caveats
//
//   - cache and endcache are reserved words at the start of an action;
//     a variable named cache still works in assignments and field or index
//     expressions ({{ cache := 1 }}, {{ cache.X }}). The function
//     __fragcache and blocks named __fragcache_N are reserved.
//   - The body runs as a Jet block: variables it assigns are not visible
//     after endcache (on a hit it does not run at all), and a {{ return }}
//     in it does not end the template.
//   - A cache block and an if, range, block, try or yield … content must
//     nest; an {{ end }}, {{ else }}, {{ catch }} or {{ content }} between
//     cache and endcache that belongs to an outer Jet block is an error.
//   - Unnamed blocks are keyed by template path and line (Flask's naming),
//     so two of them on one line would share a fragment: the rewrite
//     refuses the second (ErrSameLine, naming both positions), and Execute
//     refuses a block whose name is an expression that evaluates to nil on
//     a line where another block may have the default key (unnamed, or
//     named by an expression); name one of them. Options.SourceDigest in package fragment adds the digest of the
//     block's own source (not of templates it includes) to unnamed keys.
//   - Rewrite errors (*ParseError) keep their type when GetTemplate loads
//     the template itself; from a template reached by extends or import,
//     Jet passes on only their text.
//   - The stored fragment is the body's output after Jet's escaping, and a
//     hit writes it unchanged: whoever can write the cache store can write
//     the page.
//   - The site table of a Tags only grows: a template parsed again finds
//     its sites, but each edited version of a block adds one (relevant only
//     with jet.InDevelopmentMode and long-running edits).
package jettag
