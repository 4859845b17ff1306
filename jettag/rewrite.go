package jettag

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors Rewrite returns, wrapped in a *ParseError that names the tag's
// position.
var (
	// ErrMissingEndcache is returned for a cache tag with no endcache.
	ErrMissingEndcache = errors.New("jettag: cache block has no endcache")
	// ErrStrayEndcache is returned for an endcache with no open cache tag.
	ErrStrayEndcache = errors.New("jettag: endcache without an open cache block")
	// ErrMissingTimeout is returned for a cache tag without arguments: the
	// timeout is required (write nil for the default timeout).
	ErrMissingTimeout = errors.New("jettag: cache needs a timeout argument")
	// ErrEndcacheArgs is returned for an endcache tag with arguments.
	ErrEndcacheArgs = errors.New("jettag: endcache takes no arguments")
	// ErrOverlap is returned when a cache block and a Jet block (if, range,
	// block, try, yield … content) overlap instead of nesting, for example
	// an {{ end }} or {{ else }} between cache and endcache that belongs to
	// an if opened before the cache tag.
	ErrOverlap = errors.New("jettag: cache block overlaps a Jet block")
	// ErrSameLine is returned for two cache blocks on one line that would
	// share a fragment: unnamed blocks are keyed by template path and line,
	// as in Flask-Caching. Rewrite refuses an unnamed block (no name, or
	// the literal name nil) on the same line as another unnamed one;
	// Execute refuses a block whose name evaluates to nil on a line it
	// shares with another block. Name one of them.
	ErrSameLine = errors.New("jettag: two cache blocks on one line would share a key")
)

// ParseError is a cache or endcache tag that cannot be rewritten. Path is
// the normalised template path (see Tags.Rewrite); Line and Col, 1-based,
// locate the tag's left delimiter.
type ParseError struct {
	Path      string
	Line, Col int
	Err       error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d:%d: cache: %v", e.Path, e.Line, e.Col, e.Err)
}

// Unwrap returns the underlying error, one of the Err* sentinels.
func (e *ParseError) Unwrap() error { return e.Err }

// Names the rewrite injects. Templates must not use them for anything else.
const (
	funcName    = "__fragcache"  // the global Func each cache tag calls
	blockPrefix = "__fragcache_" // + site index: the Jet block holding a body
)

// normalisePath maps a Jet template path ("/views/a.jet", or "views/a.jet"
// as given to Set.Parse) to the form keys and errors use: cleaned, slash
// separated, without the leading slash ("views/a.jet").
func normalisePath(p string) string {
	return strings.TrimPrefix(path.Join("/", filepath.ToSlash(p)), "/")
}

// action is one {{ … }} of the source, as Jet's lexer delimits it.
type action struct {
	start, end     int // the whole action, delimiters included
	inStart, inEnd int // between the delimiters and trim markers
	ltrim, rtrim   bool
}

// kind classifies an action for the rewrite.
type kind uint8

const (
	kindOther    kind = iota
	kindCache         // {{ cache args }}
	kindEndcache      // {{ endcache }}
	kindOpen          // if, range, block, try, yield … content: closed by end
	kindMiddle        // else, catch, content: split the enclosing Jet block
	kindEnd           // end
)

// edit replaces one cache or endcache action.
type edit struct {
	act  action
	kind kind
	lead string // whitespace between the left delimiter and the keyword
	args string // cache: the arguments, outer parentheses blanked; endcache: the whitespace after it
	site int    // cache: index in the Tags' site table
	key  siteKey
}

// frame is an open cache block or Jet block during the scan.
type frame struct {
	cache     bool
	keyword   string // Jet blocks: the opening keyword
	line, col int
	edit      int // cache: index into edits
}

// rewriter turns cache/endcache tags into a Jet block holding the body,
// inside an if whose condition calls the cache Func:
//
//	{{ cache ARGS }}BODY{{ endcache }}
//	→ {{ if __fragcache(N, ARGS) }}{{ block __fragcache_N() }}BODY{{ end }}{{ end }}
//
// The Func does the whole block and returns false, so Jet never runs the
// block in place; Jet registers every block at parse time wherever it
// stands, so the Func can run BODY itself (Runtime.YieldBlock) inside
// fragment.Cache.Render.
// Nothing the rewrite adds contains a newline and everything else is copied,
// so Jet's line numbers stay those of the source.
type rewriter struct {
	tags *Tags
	path string // normalised
	src  string

	ld, rd, lc, rc, trimRD string

	edits   []edit
	frames  []frame
	unnamed map[int]int // line → column of the first unnamed block on it
	comment int         // offset of the next comment, -1 if none is left

	// line bookkeeping, advanced monotonically
	linePos, line, lineStart int
}

const (
	leftTrimMarker  = "- "
	rightTrimMarker = " -"
)

func (r *rewriter) position(off int) (line, col int) {
	for r.linePos < off {
		if r.src[r.linePos] == '\n' {
			r.line++
			r.lineStart = r.linePos + 1
		}
		r.linePos++
	}
	return r.line, utf8.RuneCountInString(r.src[r.lineStart:off]) + 1
}

func (r *rewriter) errorAt(off int, err error) error {
	line, col := r.position(off)
	return &ParseError{Path: r.path, Line: line, Col: col, Err: err}
}

// nextAction finds the next action at or after off, skipping comments as
// Jet's lexer does. ok is false at the end of the input, and also when the
// input has a lexical error (unclosed comment, action or string): then the
// rest is left to Jet, which reports it.
func (r *rewriter) nextAction(off int) (a action, ok bool) {
	src := r.src
	for off < len(src) {
		// The next comment is found once and remembered: searching for it
		// from every action would make the scan quadratic.
		if r.comment != -1 && r.comment < off {
			r.comment = strings.Index(src[off:], r.lc)
			if r.comment >= 0 {
				r.comment += off
			}
		}
		i := strings.Index(src[off:], r.ld)
		if i >= 0 {
			i += off
		}
		if i < 0 && r.comment < 0 {
			return a, false
		}
		if c := r.comment; c >= 0 && (i < 0 || c < i) {
			end := strings.Index(src[c+len(r.lc):], r.rc)
			if end < 0 {
				return a, false
			}
			off = c + len(r.lc) + end + len(r.rc)
			continue
		}
		a.start = i
		p := a.start + len(r.ld)
		if strings.HasPrefix(src[p:], leftTrimMarker) {
			a.ltrim = true
			p += len(leftTrimMarker)
		}
		a.inStart = p
		for p < len(src) {
			switch {
			case strings.HasPrefix(src[p:], r.trimRD):
				a.inEnd, a.end, a.rtrim = p, p+len(r.trimRD), true
				return a, true
			case strings.HasPrefix(src[p:], r.rd):
				a.inEnd, a.end = p, p+len(r.rd)
				return a, true
			}
			n := skipLiteral(src, p)
			if n < 0 {
				return a, false
			}
			p = n
		}
		return a, false
	}
	return a, false
}

// skipLiteral returns the offset after the string, raw string or character
// literal starting at p, or p+1 when none starts there; -1 if the literal is
// unterminated.
func skipLiteral(src string, p int) int {
	q := src[p]
	if q != '"' && q != '`' && q != '\'' {
		return p + 1
	}
	for i := p + 1; i < len(src); i++ {
		switch src[i] {
		case q:
			return i + 1
		case '\\':
			if q != '`' {
				i++ // the escaped byte; a newline after it is still an error
				if i < len(src) && src[i] == '\n' {
					return -1
				}
			}
		case '\n':
			if q != '`' {
				return -1
			}
		}
	}
	return -1
}

func isSpace(r byte) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// leadingWord splits s into leading whitespace, the identifier after it
// (letters, digits, '_', as Jet's lexer reads one) and the rest.
func leadingWord(s string) (lead, word, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		j += n
	}
	return s[:i], s[i:j], s[j:]
}

// trailingWord returns the identifier s ends with (after trailing
// whitespace), unless it is a field (".content").
func trailingWord(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	j := len(s)
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		j -= n
	}
	if j > 0 && s[j-1] == '.' {
		return ""
	}
	return s[j:]
}

// classify tells what an action means for the rewrite.
func classify(inner string) (k kind, lead, rest string) {
	lead, word, rest := leadingWord(inner)
	// A tag keyword must stand alone: "cache.x" or "cache := 1" use a
	// variable named cache and are left to Jet.
	standalone := rest == "" || isSpace(rest[0]) || rest[0] == '('
	switch word {
	case "cache":
		if standalone && !isAssignment(rest) {
			return kindCache, lead, rest
		}
	case "endcache":
		if standalone {
			return kindEndcache, lead, rest
		}
	case "if", "range", "block", "try":
		return kindOpen, lead, rest
	case "yield":
		// {{ yield name(…) … content }} has a body up to {{ end }};
		// {{ yield content }} does not.
		if _, second, _ := leadingWord(rest); second != "content" && trailingWord(rest) == "content" {
			return kindOpen, lead, rest
		}
	case "else", "catch", "content":
		return kindMiddle, lead, rest
	case "end":
		return kindEnd, lead, rest
	}
	return kindOther, lead, rest
}

// isAssignment reports whether rest starts an assignment (cache = …,
// cache := …) after optional whitespace.
func isAssignment(rest string) bool {
	rest = strings.TrimLeft(rest, " \t\r\n")
	return strings.HasPrefix(rest, ":=") || (strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=="))
}

// stripParens blanks the parentheses of args written as "(a, b)", so that
// {{ cache(300, "x") }} means {{ cache 300, "x" }}. Blanking instead of
// removing keeps every other byte in place.
func stripParens(args string) string {
	i := 0
	for i < len(args) && isSpace(args[i]) {
		i++
	}
	if i == len(args) || args[i] != '(' {
		return args
	}
	depth := 0
	for p := i; p < len(args); {
		switch args[p] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				if strings.TrimSpace(args[p+1:]) != "" {
					return args // "(a), b": the parentheses group a only
				}
				return args[:i] + " " + args[i+1:p] + " " + args[p+1:]
			}
		}
		n := skipLiteral(args, p)
		if n < 0 {
			return args
		}
		p = n
	}
	return args
}

// splitArgs splits a cache tag's arguments at top-level commas.
func splitArgs(args string) []string {
	var out []string
	depth, from := 0, 0
	for p := 0; p < len(args); {
		switch args[p] {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, args[from:p])
				from = p + 1
			}
		}
		n := skipLiteral(args, p)
		if n < 0 {
			break
		}
		p = n
	}
	return append(out, args[from:])
}

// constant returns the value Jet gives a plain literal argument: numbers
// (Jet evaluates every number literal to float64), strings, nil. ok is false
// for anything that needs evaluating.
func constant(arg string) (v any, ok bool) {
	arg = strings.TrimSpace(arg)
	switch {
	case arg == "nil":
		return nil, true
	case arg == "":
		return nil, false
	case arg[0] == '"' || arg[0] == '`':
		s, err := strconv.Unquote(arg)
		return s, err == nil
	}
	dot := false
	for i := 0; i < len(arg); i++ {
		switch c := arg[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(arg)-1:
			dot = true
		default:
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(arg, 64)
	return f, err == nil
}

// nameKind classifies a cache tag by its name argument, for the checks of
// blocks sharing a line.
type nameKind uint8

const (
	unnamed nameKind = iota // no name, or the literal nil: keyed by template and line
	named                   // a string or number literal
	dynamic                 // any other expression, which may evaluate to nil
)

// nameKindOf classifies a cache tag with these arguments.
func nameKindOf(args string) nameKind {
	parts := splitArgs(args)
	if n := len(parts); n > 1 && strings.TrimSpace(parts[n-1]) == "" {
		parts = parts[:n-1] // Jet allows a trailing comma: "cache 300," has no name
	}
	if len(parts) < 2 {
		return unnamed
	}
	switch v, ok := constant(parts[1]); {
	case !ok:
		return dynamic
	case v == nil:
		return unnamed
	}
	return named
}

// scan finds the cache and endcache tags, checks their nesting against
// Jet's own blocks and registers a site for each cache block.
func (r *rewriter) scan() error {
	for off := 0; ; {
		a, ok := r.nextAction(off)
		if !ok {
			break
		}
		off = a.end
		k, lead, rest := classify(r.src[a.inStart:a.inEnd])
		switch k {
		case kindCache:
			args := stripParens(rest)
			if strings.TrimSpace(args) == "" {
				return r.errorAt(a.start, ErrMissingTimeout)
			}
			line, col := r.position(a.start)
			if nameKindOf(args) == unnamed {
				if first, ok := r.unnamed[line]; ok {
					return r.errorAt(a.start, fmt.Errorf("%w: the unnamed block at %s:%d:%d is on the same line, and unnamed blocks are keyed by template and line: name one of them",
						ErrSameLine, r.path, line, first))
				}
				if r.unnamed == nil {
					r.unnamed = make(map[int]int)
				}
				r.unnamed[line] = col
			}
			r.frames = append(r.frames, frame{cache: true, line: line, col: col, edit: len(r.edits)})
			r.edits = append(r.edits, edit{act: a, kind: k, lead: lead, args: args})
		case kindEndcache:
			if strings.TrimSpace(rest) != "" {
				return r.errorAt(a.start, ErrEndcacheArgs)
			}
			top, err := r.closeCache(a)
			if err != nil {
				return err
			}
			open := &r.edits[top.edit]
			body := r.src[open.act.end:a.start]
			sum := sha256.Sum256([]byte(body))
			open.key = siteKey{
				path: r.path, line: top.line, col: top.col,
				digest: hex.EncodeToString(sum[:8]), args: open.args,
			}
			r.edits = append(r.edits, edit{act: a, kind: k, lead: lead, args: rest})
		case kindOpen:
			line, col := r.position(a.start)
			_, word, _ := leadingWord(r.src[a.inStart:a.inEnd])
			r.frames = append(r.frames, frame{keyword: word, line: line, col: col})
		case kindMiddle, kindEnd:
			if len(r.frames) == 0 {
				break // Jet reports a stray end or else itself
			}
			top := r.frames[len(r.frames)-1]
			if top.cache {
				_, word, _ := leadingWord(r.src[a.inStart:a.inEnd])
				return r.errorAt(a.start, fmt.Errorf("%w: {{ %s }} inside the cache block opened at %d:%d belongs to a Jet block opened before it (close the cache block first)",
					ErrOverlap, word, top.line, top.col))
			}
			if k == kindEnd {
				r.frames = r.frames[:len(r.frames)-1]
			}
		}
	}
	for i := len(r.frames) - 1; i >= 0; i-- {
		if f := r.frames[i]; f.cache {
			return &ParseError{Path: r.path, Line: f.line, Col: f.col, Err: ErrMissingEndcache}
		}
	}
	// A dynamic name that evaluates to nil falls back to the
	// template-and-line key: such a site remembers another block on its
	// line that may have that key too, so that execute can refuse it.
	for i := range r.edits {
		e := &r.edits[i]
		if e.kind != kindCache || nameKindOf(e.args) != dynamic {
			continue
		}
		for j := range r.edits {
			o := &r.edits[j]
			if j != i && o.kind == kindCache && o.key.line == e.key.line && nameKindOf(o.args) != named {
				e.key.lineMate = fmt.Sprintf("%s:%d:%d", r.path, o.key.line, o.key.col)
				break
			}
		}
	}
	for i := range r.edits {
		if e := &r.edits[i]; e.kind == kindCache {
			e.site = r.tags.register(e.key)
		}
	}
	return nil
}

// closeCache pops the cache frame an endcache closes.
func (r *rewriter) closeCache(a action) (frame, error) {
	n := len(r.frames)
	if n > 0 && r.frames[n-1].cache {
		top := r.frames[n-1]
		r.frames = r.frames[:n-1]
		return top, nil
	}
	for i := n - 1; i >= 0; i-- {
		if f := r.frames[i]; f.cache {
			top := r.frames[n-1]
			return frame{}, r.errorAt(a.start, fmt.Errorf("%w: endcache closes the cache block opened at %d:%d while the {{ %s }} opened at %d:%d inside it is still open",
				ErrOverlap, f.line, f.col, top.keyword, top.line, top.col))
		}
	}
	return frame{}, r.errorAt(a.start, ErrStrayEndcache)
}

// emit writes the source with every edit applied.
func (r *rewriter) emit() string {
	var b strings.Builder
	b.Grow(len(r.src) + len(r.edits)*(48+3*len(r.ld)+3*len(r.rd)))
	last := 0
	for _, e := range r.edits {
		a := e.act
		b.WriteString(r.src[last:a.start])
		last = a.end
		b.WriteString(r.ld)
		if a.ltrim {
			b.WriteString(leftTrimMarker)
		}
		b.WriteString(e.lead)
		switch e.kind {
		case kindCache:
			n := strconv.Itoa(e.site)
			b.WriteString("if " + funcName + "(" + n + ",")
			b.WriteString(e.args)
			b.WriteString(") " + r.rd + r.ld + " block " + blockPrefix + n + "()")
		case kindEndcache:
			b.WriteString("end")
			b.WriteString(e.args) // whitespace, newlines included
			b.WriteString(" " + r.rd + r.ld + " end")
		}
		if a.rtrim {
			b.WriteString(r.trimRD)
		} else {
			b.WriteString(" " + r.rd)
		}
	}
	b.WriteString(r.src[last:])
	return b.String()
}
