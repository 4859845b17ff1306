// Package pongo2tag adds Flask-Caching's fragment cache block to pongo2 v6:
//
//	{% cache 300, "sidebar", user.ID %}…{% endcache %}
//
// The arguments are pongo2 expressions separated by commas: a timeout, then
// an optional fragment name, then any number of vary_on values. The timeout
// is seconds (an integer or a float such as 0.05), a time.Duration from the
// context, an undefined name such as None (pongo2 evaluates it to nil: the
// cache's default timeout), 0 (never expires) or "del" (delete the
// fragment, render the body, store nothing). Keys are Flask's
// (keys.MakeTemplateFragmentKey); a block without a name is named
// keys.FragmentName(template path, line of the "cache" token). Everything
// about hits, misses, deduplication and backend errors is package fragment's.
//
// pongo2 is extended the way its own block tags are: Register adds a real
// tag (pongo2.RegisterTag with a parser that wraps the body via
// WrapUntilTag), so nesting, positions in errors and the sandbox's BanTag
// all work as for built-in tags. Tags are global in pongo2 v6, so Register
// is called once at startup, before templates are parsed. Its Options say
// which directories templates are loaded from (repeated calls add
// directories): pongo2 names a template by the name given to FromFile but by
// its absolute path when it comes from FromCache, {% include %} or
// {% extends %}, and the tag makes every path relative to those directories
// (and refuses to parse a template outside all of them), so that keys never
// contain an install directory.
//
// A cache is bound through the pongo2 context under ContextKey: Bind(set,
// fc) once for a whole TemplateSet, or With(ctx, fc, data) per render. A
// render passes the request's context.Context to its blocks' backend calls
// with WithContext(data, ctx) (the binding's context otherwise: With's, or
// Bind's context.Background()), as jettag.WithContext does for Jet and
// htmltemplate's ExecuteContext for html/template. A block that executes
// with no cache bound fails with ErrNotBound rather than rendering uncached:
// a page silently served uncached is a misconfiguration that shows only as
// load. To switch caching off, bind a fragment.Cache over backends.Null.
//
// Caveats. Errors are *pongo2.Error values with file, line and column;
// pongo2 v6's Error has no Unwrap, so test the cause with
// errors.Is(pongoErr.OrigError, fragment.ErrTimeout). The body is rendered
// with the autoescape state of the first render and stored as output, so a
// block must not be reached both inside and outside {% autoescape off %}
// with the same key (give it a name or a vary_on value that differs).
// Loop, macro and {% with %} variables are part of the output but not of the
// key: pass them as vary_on values. pongo2 names every FromString and
// FromBytes template "<string>", so unnamed blocks in different string
// templates on the same line share a key unless fragment.Options.SourceDigest
// adds the body digest; name them. {% include … only %} drops the render's
// context, and a binding made by With with it, unless the template passes
// `with _fragcache=_fragcache _fragcache_ctx=_fragcache_ctx` (a Bind
// binding survives). The body digest covers the block's own
// source only, not templates it includes or macros it calls. pongo2's
// TrimBlocks and LStripBlocks options rewrite shared tokens on every
// execution (a data race in pongo2 itself), so avoid them with concurrent
// renders.
package pongo2tag
