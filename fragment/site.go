package fragment

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// Site is where a cache block stands: the static part of a block, computed
// once when its template is parsed.
type Site struct {
	// Path is the template's loader-relative, slash-separated path (never
	// an absolute filesystem path: keys must agree across hosts). It names
	// unnamed fragments and prefixes error messages.
	Path string
	// Line and Col locate the block's `cache` keyword, counted as the
	// engine's own error messages count them, so that our positions and the
	// engine's agree.
	Line, Col int
	// Digest is a hash of the block's body source, or "". With
	// Options.SourceDigest, an unnamed fragment's name includes it, so that
	// editing the body changes the key.
	Digest string

	// lastKey is the key of the block's last render without vary_on
	// values, which blockKey reuses instead of allocating one; kept here
	// rather than in the Cache, so that it goes with the Site when a
	// template parsed per request is dropped. (An atomic.Value, not an
	// atomic.Pointer, keeps Site comparable and copyable, as engines'
	// tests and code treat it.)
	lastKey atomic.Value // string

	// head is the start of the block's keys for one Cache and one string
	// name (see Cache.appendKey), kept like lastKey.
	head atomic.Value // *keyHead
}

// String returns "path:line:col", the position errors name.
func (s *Site) String() string {
	return s.Path + ":" + strconv.Itoa(s.Line) + ":" + strconv.Itoa(s.Col)
}

// SiteError is an error tied to a block's position in a template.
type SiteError struct {
	Site *Site
	Err  error
}

func (e *SiteError) Error() string { return fmt.Sprintf("%s: cache: %v", e.Site, e.Err) }

// Unwrap returns the underlying error.
func (e *SiteError) Unwrap() error { return e.Err }

// Call is one execution of a block: its site and its evaluated arguments.
type Call struct {
	// Site is the block's site, made once when its template is parsed and
	// passed on every call; it must not be nil.
	Site *Site
	// Timeout is the evaluated timeout argument: integer or float seconds,
	// a time.Duration, nil for the default, or "del".
	Timeout any
	// Name is the evaluated name argument; see AppendKeyValue for how it
	// becomes text. nil — no name argument, or one that evaluated to nil
	// (an undefined variable) — keys the block by its position,
	// keys.FragmentName(Site.Path, Site.Line), rather than by "None".
	Name any
	// VaryOn are the evaluated vary_on arguments. Render and Fragment read
	// them only while they run and keep no reference after they return, so
	// an engine may reuse the slice for its next block.
	VaryOn []any
}
