package htmltemplate

import "errors"

// Errors a cache block can cause, each wrapped in a *fragment.SiteError
// that names the template path, line and column. Check them with errors.Is.
var (
	// ErrSyntax is returned by the Parse methods for a malformed block: a
	// cache without a matching endcache in the same list of actions (both
	// tags must sit in the same {{if}}, {{range}} or {{with}} branch, or
	// both at top level), an endcache without a cache, a cache without a
	// timeout, an endcache with arguments, a cache or endcache used inside
	// another action instead of as an action of its own, an argument that
	// is a constant of the wrong type, or a {{break}} or {{continue}} in a
	// body that would leave the block.
	ErrSyntax = errors.New("htmltemplate: malformed cache block")
	// ErrOuterVariable is returned by the Parse methods when a block's body
	// uses a $variable declared outside the block. The body is executed as
	// a template of its own and cannot see it; pass the value through the
	// dot, or declare the variable inside the block.
	ErrOuterVariable = errors.New("htmltemplate: cache block body uses a variable declared outside the block")
	// ErrContext is returned by Execute, ExecuteTemplate and Check when a
	// block is not in HTML element content (it is in an attribute value,
	// a URL, a script, a style sheet, an RCDATA element such as <title>,
	// or a comment), or its body does not start and end in element
	// content. A cached fragment is HTML escaped for element content; in
	// any other context html/template would escape it again or strip it.
	ErrContext = errors.New("htmltemplate: cache block must be in HTML element content")
	// ErrSameLine is returned for two blocks on one line that would share
	// a fragment: unnamed blocks are keyed by template and line, as in
	// Flask-Caching. The Parse methods refuse a second unnamed block on a
	// line (the error wraps ErrSyntax too); Execute refuses a block whose
	// name evaluates to nil on a line it shares with another block. Name
	// one of them.
	ErrSameLine = errors.New("htmltemplate: two cache blocks on one line would share a key")
)
