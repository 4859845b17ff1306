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
// keys.FragmentName(template path, line of the "cache" token), so two
// unnamed blocks on one line would share a fragment: the parser refuses the
// second with ErrSameLine, naming both positions (a name that is the bare
// identifier None or nil counts as none), and execution refuses a block
// whose name is an expression that evaluates to nil on a line where another
// block may have the default key (unnamed, or named by an expression).
// Everything about hits, misses,
// deduplication and backend errors is package fragment's.
//
// pongo2 is extended the way its own block tags are: Register adds a real
// tag (pongo2.RegisterTag with a parser that wraps the body via
// WrapUntilTag), so nesting, positions in errors and the sandbox's BanTag
// all work as for built-in tags. Tags are global in pongo2 v6, so Register
// is called once at startup, before templates are parsed.
//
// # Template paths
//
// The template path of an unnamed block is the name of the Loader that
// loaded the template, "/", and the template's slash-separated path
// relative to that loader's root: the base directory of a
// LocalFilesystemLoader (the working directory if it has none), the root
// of an fs.FS or http.FileSystem. A set loading templates/ through a Loader
// named "web" keys templates/emails/welcome.html as
// "web/emails/welcome.html", and a set loading templates/emails through a
// Loader named "emails" keys the same file as "emails/welcome.html", so
// templates/welcome.html ("web/welcome.html") never shares a key with it.
// Since the loader's names are distinct per root and a root holds one file
// per relative path, two files never share a path; and since the path
// depends on neither the install directory nor the load method, FromFile,
// FromCache, {% include %}, {% extends %} and {% import %} agree, and so do
// hosts sharing a cache.
//
// pongo2 gives a custom tag only the name the template was loaded under
// (FromFile keeps the name it was given, the others pass the loader's
// resolved path) and not the set or loader, so Loader.Get appends a tag
// recording the path to each template's source; it renders nothing and
// adds no line. A block in a file template that did not come through a
// Loader, or that its loader reached outside its root, is a parse error.
// Templates made by FromString or FromBytes have the path "<string>".
// Loader.Path gives app code the path of a template, to rebuild a key.
//
// A cache is bound through the pongo2 context under ContextKey. Execute(ctx,
// fc, tpl, data, w), the page entry point, binds fc and the request's ctx
// for one render; With(ctx, fc, data) does the same for pongo2's own
// Execute* methods, and Bind(set, fc) binds fc once for a whole
// TemplateSet, with WithContext(data, ctx) passing a render's context (the
// binding's context otherwise: With's, or Bind's context.Background()), as
// jettag.WithContext does for Jet and htmltemplate's ExecuteContext for
// html/template. pongo2 copies every context key into a new map and checks
// its name against a regular expression on every render, so each binding
// costs every page (BenchmarkPageBinding): Execute on a set without Bind is
// one key, Bind + WithContext two. A block that executes with no cache
// bound fails with ErrNotBound rather than rendering uncached: a page
// silently served uncached is a misconfiguration that shows only as load.
// To switch caching off, bind a fragment.Cache over backends.Null.
//
// On a cache that batches (a networked backend), Execute renders the page
// through fragment.Cache.Page: every block's lookup goes out in one round
// trip per level of nesting and the stores in one pipeline, with no change
// to templates (the template runs more than once, into a buffer; see
// package fragment).
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
// context, and a binding made by Execute or With with it, unless the
// template passes `with _fc=_fc _fc_ctx=_fc_ctx` (ContextKey and
// ContextVar; a Bind binding survives, with context.Background() unless
// _fc_ctx is passed). The body digest covers the block's own
// source only, not templates it includes or macros it calls. pongo2's
// TrimBlocks and LStripBlocks options rewrite shared tokens on every
// execution (a data race in pongo2 itself), so avoid them with concurrent
// renders.
package pongo2tag
