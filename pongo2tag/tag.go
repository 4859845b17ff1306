package pongo2tag

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/varyon"
)

// ErrSameLine is the error (inside the *pongo2.Error's OrigError) of two
// cache blocks on one line that would share a fragment: unnamed blocks are
// keyed by template path and line, as in Flask-Caching. The parser refuses
// an unnamed block on the same line as another unnamed one; execution
// refuses a block whose name evaluates to nil on a line it shares with
// another block. Name one of them.
var ErrSameLine = errors.New("two cache blocks on one line would share a key")

// sender is the Sender of the *pongo2.Error values the tag builds, as
// pongo2's error.go asks of custom tags.
const sender = "tag:" + TagName

// eofMessage is what WrapUntilTag reports when the end tag never comes; the
// tag replaces it with an error at the opening tag, which is where the
// mistake is.
const eofMessage = "Unexpected EOF, expected tag " + EndTagName + "."

// cacheNode is one parsed block. It is shared by every execution of its
// template and never changes after parsing.
type cacheNode struct {
	site  *fragment.Site
	start *pongo2.Token // the "cache" token: position of block-level errors
	args  []arg         // timeout, then the optional name, then vary_on values
	body  *pongo2.NodeWrapper

	// lineMate is the "cache" token of a block on the same line that may
	// have the template-and-line key, when this block's name is an
	// expression: it must then not evaluate to nil.
	lineMate *pongo2.Token
}

// arg is one argument expression. A single literal (300, 0.05, "sidebar",
// "del") is evaluated once at parse time, so the common block costs no
// evaluation and no allocation per execution.
type arg struct {
	expr  pongo2.IEvaluator
	tok   *pongo2.Token // where errors about this argument point
	fixed bool
	value any
	// ident is the variable name of an argument that is one bare
	// identifier (user, page_id): the common vary_on. eval looks it up
	// itself, as pongo2's resolver does (the private context, then the
	// public one), and leaves to pongo2 only the values whose resolution
	// does more than return them: a *pongo2.Value to unwrap and a function
	// to call. pongo2's path allocates a *pongo2.Value per argument and
	// goes through reflect, 15–20 % of an all-hit page.
	ident string
}

func (a *arg) eval(ctx *pongo2.ExecutionContext) (any, *pongo2.Error) {
	if a.fixed {
		return a.value, nil
	}
	if a.ident != "" {
		v, ok := ctx.Private[a.ident]
		if !ok {
			v = ctx.Public[a.ident]
		}
		if !needsPongo2(v) {
			return v, nil
		}
	}
	v, err := a.expr.Evaluate(ctx)
	if err != nil {
		return nil, err
	}
	return v.Interface(), nil
}

// needsPongo2 reports whether pongo2's resolver does more with a context
// value than return it: it unwraps a *pongo2.Value and calls a function.
func needsPongo2(v any) bool {
	switch v.(type) {
	case nil, string, int, int64, uint64, float64, bool, []byte:
		return false
	case *pongo2.Value:
		return true
	}
	return reflect.TypeOf(v).Kind() == reflect.Func
}

// tagError is a parse error at tok (or the parser's current token) with
// the tag as its sender.
func tagError(p *pongo2.Parser, msg string, tok *pongo2.Token) *pongo2.Error {
	e := p.Error("cache: "+msg, tok)
	e.Sender = sender
	return e
}

// parseCache is the pongo2.TagParser of {% cache timeout[, name[, vary_on...]] %}.
func parseCache(doc *pongo2.Parser, start *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
	n := &cacheNode{start: start}
	if args.Remaining() == 0 {
		return nil, tagError(args, "missing timeout; the syntax is {% cache timeout[, name[, vary_on...]] %}", start)
	}
	for {
		before := args.Remaining()
		expr, err := args.ParseExpression()
		if err != nil {
			return nil, err
		}
		a := arg{expr: expr, tok: expr.GetPositionToken()}
		if a.tok == nil {
			a.tok = args.GetR(-(before - args.Remaining()))
		}
		if isLiteral(args, before-args.Remaining()) {
			// Literal resolvers ignore the context, so an empty one is safe.
			if v, err := expr.Evaluate(&pongo2.ExecutionContext{}); err == nil {
				a.fixed, a.value = true, v.Interface()
			}
		}
		if before-args.Remaining() == 1 && args.GetR(-1).Typ == pongo2.TokenIdentifier {
			a.ident = args.GetR(-1).Val
		}
		n.args = append(n.args, a)
		if args.Remaining() == 0 {
			break
		}
		comma := args.Match(pongo2.TokenSymbol, ",")
		if comma == nil {
			return nil, tagError(args, "expected ',' between arguments", nil)
		}
		if args.Remaining() == 0 {
			return nil, tagError(args, "trailing ',' after the last argument", comma)
		}
	}

	p, perr := templatePath(doc, start)
	if perr != nil {
		return nil, tagError(args, perr.Error(), start)
	}

	other, mate := lineCheck(doc, start)
	if other != nil {
		e := doc.Error("", start)
		e.OrigError = fmt.Errorf("cache: %w: the unnamed block at %s:%d:%d is on the same line, "+
			"and unnamed blocks are keyed by template and line: name one of them", ErrSameLine, p, other.Line, other.Col)
		e.Sender = sender
		return nil, e
	}
	n.lineMate = mate

	first := doc.Current()
	body, endArgs, err := doc.WrapUntilTag(EndTagName)
	if err != nil {
		if err.OrigError != nil && err.OrigError.Error() == eofMessage {
			return nil, tagError(doc, "block is never closed: {% "+EndTagName+" %} is missing", start)
		}
		return nil, err
	}
	if endArgs.Remaining() > 0 {
		return nil, tagError(endArgs, EndTagName+" takes no arguments", nil)
	}
	n.body = body
	n.site = &fragment.Site{Path: p, Line: start.Line, Col: start.Col, Digest: bodyDigest(doc, first)}
	return n, nil
}

// nameKind classifies a cache tag by its name argument, for the checks of
// blocks sharing a line.
type nameKind uint8

const (
	unnamed nameKind = iota // no name, or the bare identifier None or nil: keyed by template and line
	named                   // a string or number literal
	dynamic                 // any other expression, which may evaluate to nil
)

// lineCheck looks at the other cache tags on start's line. It reads the
// document's tokens around start (doc stands after the tag's "%}"), so it
// needs no state across the tags of one parse; tags inside {% comment %}
// do not count. For an unnamed block, first is an earlier unnamed one on
// the line: the two would share a key. For a block with a dynamic name,
// mate is another block on the line that is not named by a literal: the
// name must not evaluate to nil.
func lineCheck(doc *pongo2.Parser, start *pongo2.Token) (first, mate *pongo2.Token) {
	k := 1
	for doc.GetR(-k) != start {
		if doc.GetR(-k) == nil {
			return nil, nil
		}
		k++
	}
	self := kindAt(doc, -k)
	if self == named {
		return nil, nil
	}
	for _, step := range []int{-1, 1} {
		for j := -k + step; ; j += step {
			t := doc.GetR(j)
			if t == nil || t.Line != start.Line {
				break
			}
			if t.Typ != pongo2.TokenIdentifier || t.Val != TagName || !isSymbol(doc.GetR(j-1), "{%") || commentedOut(doc, j-1) {
				continue
			}
			switch other := kindAt(doc, j); {
			case self == unnamed && other == unnamed && step < 0:
				return t, nil
			case self == dynamic && other != named && mate == nil:
				mate = t
			}
		}
	}
	return nil, mate
}

// kindAt classifies the cache tag whose name token is at GetR(at).
func kindAt(doc *pongo2.Parser, at int) nameKind {
	depth, arg := 0, 0
	var name []*pongo2.Token
	for i := at + 1; ; i++ {
		t := doc.GetR(i)
		if t == nil || (depth == 0 && isSymbol(t, "%}")) {
			break
		}
		switch {
		case isSymbol(t, "(") || isSymbol(t, "["):
			depth++
		case isSymbol(t, ")") || isSymbol(t, "]"):
			depth--
		case depth == 0 && isSymbol(t, ","):
			arg++
			continue
		}
		if arg == 1 {
			name = append(name, t)
		}
	}
	switch {
	case arg == 0:
		return unnamed
	case len(name) == 1 && name[0].Typ == pongo2.TokenIdentifier && (name[0].Val == "None" || name[0].Val == "nil"):
		return unnamed
	case len(name) == 1 && (name[0].Typ == pongo2.TokenString || name[0].Typ == pongo2.TokenNumber):
		return named
	case len(name) == 3 && name[0].Typ == pongo2.TokenNumber && isSymbol(name[1], ".") && name[2].Typ == pongo2.TokenNumber:
		return named
	}
	return dynamic
}

// commentedOut reports whether the tag opening at GetR(at) lies inside a
// {% comment %} block, whose content pongo2 lexes but never parses. Comment
// blocks do not nest, so the nearest comment or endcomment tag before it
// decides.
func commentedOut(doc *pongo2.Parser, at int) bool {
	for i := at - 1; ; i-- {
		t := doc.GetR(i)
		if t == nil {
			return false
		}
		if t.Typ == pongo2.TokenIdentifier && (t.Val == "comment" || t.Val == "endcomment") && isSymbol(doc.GetR(i-1), "{%") {
			return t.Val == "comment"
		}
	}
}

func isSymbol(t *pongo2.Token, val string) bool {
	return t != nil && t.Typ == pongo2.TokenSymbol && t.Val == val
}

// isLiteral reports whether the last n tokens p consumed are one number,
// float or string literal.
func isLiteral(p *pongo2.Parser, n int) bool {
	switch n {
	case 1:
		t := p.GetR(-1)
		return t.Typ == pongo2.TokenNumber || t.Typ == pongo2.TokenString
	case 3: // pongo2 lexes 0.05 as "0" "." "05"
		return p.GetR(-3).Typ == pongo2.TokenNumber && p.GetR(-2).Typ == pongo2.TokenSymbol &&
			p.GetR(-2).Val == "." && p.GetR(-1).Typ == pongo2.TokenNumber
	}
	return false
}

// bodyDigest hashes the tokens between the opening tag and {% endcache %}.
// doc stands just after the end tag, whose three tokens ("{%", "endcache",
// "%}") end the range; first is the body's first token (the end tag's "{%"
// for an empty body).
func bodyDigest(doc *pongo2.Parser, first *pongo2.Token) string {
	const endTagTokens = 3
	k := endTagTokens
	for doc.GetR(-k) != first {
		if doc.GetR(-k) == nil {
			return ""
		}
		k++
	}
	h := sha256.New()
	var hdr [2 * binary.MaxVarintLen64]byte
	for i := -k; i < -endTagTokens; i++ {
		t := doc.GetR(i)
		typ := int64(t.Typ)
		if t.TrimWhitespaces { // {%- and -%} change the output, so the key
			typ = -typ - 1
		}
		b := binary.AppendVarint(hdr[:0], typ)
		b = binary.AppendUvarint(b, uint64(len(t.Val)))
		h.Write(b)
		io.WriteString(h, t.Val)
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:8])
}

// Execute renders the block through the bound fragment.Cache.
func (n *cacheNode) Execute(ctx *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	rctx, fc, ok := bound(ctx)
	if !ok {
		return n.notBound(ctx)
	}
	call := fragment.Call{Site: n.site}
	var err *pongo2.Error
	if call.Timeout, err = n.args[0].eval(ctx); err != nil {
		return err
	}
	if len(n.args) > 1 {
		if call.Name, err = n.args[1].eval(ctx); err != nil {
			return err
		}
		if call.Name == nil && n.lineMate != nil {
			return n.errorAt(ctx, fmt.Errorf("cache: %w: the name evaluated to nil, so the block is keyed by template and line, "+
				"which it shares with the block at %s:%d:%d: give it a name that is not nil",
				ErrSameLine, n.site.Path, n.lineMate.Line, n.lineMate.Col), n.args[1].tok)
		}
	}
	if len(n.args) > 2 {
		vs := varyon.Get()
		defer vs.Put()
		for i := 2; i < len(n.args); i++ {
			v, err := n.args[i].eval(ctx)
			if err != nil {
				return err
			}
			vs.Values = append(vs.Values, v)
		}
		call.VaryOn = vs.Values
	}
	// fragment.Render keeps no body after it returns, so the closure
	// stays on the stack.
	body := func(w io.Writer) error { return n.renderBody(ctx, w) }
	if err := fc.Render(rctx, call, w, body); err != nil {
		return n.execError(ctx, err, call)
	}
	return nil
}

// renderBody renders the block's body into w for fragment.Render.
func (n *cacheNode) renderBody(ctx *pongo2.ExecutionContext, w io.Writer) error {
	tw, ok := w.(pongo2.TemplateWriter)
	if !ok {
		tw = templateWriter{w}
	}
	if err := n.body.Execute(ctx, tw); err != nil {
		return err
	}
	return nil
}

// templateWriter adds the WriteString pongo2 needs to an io.Writer.
type templateWriter struct{ io.Writer }

func (w templateWriter) WriteString(s string) (int, error) { return io.WriteString(w.Writer, s) }

func (n *cacheNode) notBound(ctx *pongo2.ExecutionContext) *pongo2.Error {
	err := ErrNotBound
	if v, ok := ctx.Public[ContextKey]; ok {
		err = fmt.Errorf("%w (context key %q holds %T)", ErrNotBound, ContextKey, v)
	} else if _, ok := ctx.Public[formerContextKey]; ok {
		err = fmt.Errorf("%w (%q is the former name of ContextKey: pass the binding on as %s)", ErrNotBound, formerContextKey, ContextKey)
	}
	return n.errorAt(ctx, err, n.start)
}

// execError turns an error from fragment.Render into a *pongo2.Error at the
// block or at the argument it is about.
func (n *cacheNode) execError(ctx *pongo2.ExecutionContext, err error, call fragment.Call) *pongo2.Error {
	if pe, ok := err.(*pongo2.Error); ok {
		// The body's own error, positioned by pongo2. Goroutines that
		// waited for this render share it, and pongo2 may fill in fields of
		// an error on its way up (macro calls do), so each gets a copy.
		cp := *pe
		return &cp
	}
	tok := n.start
	var se *fragment.SiteError
	if errors.As(err, &se) {
		err = se.Err // the position goes into the pongo2 error instead
		switch {
		case errors.Is(err, fragment.ErrTimeout):
			tok = n.args[0].tok
		case errors.Is(err, fragment.ErrKeyValue):
			tok = n.keyArgToken(call)
		}
	}
	return n.errorAt(ctx, fmt.Errorf("cache: %w", err), tok)
}

// keyArgToken finds the name or vary_on argument that has no key text.
func (n *cacheNode) keyArgToken(call fragment.Call) *pongo2.Token {
	if len(n.args) > 1 {
		if _, err := fragment.AppendKeyValue(nil, call.Name); err != nil {
			return n.args[1].tok
		}
	}
	for i, v := range call.VaryOn {
		if _, err := fragment.AppendKeyValue(nil, v); err != nil {
			return n.args[2+i].tok
		}
	}
	return n.start
}

func (n *cacheNode) errorAt(ctx *pongo2.ExecutionContext, err error, tok *pongo2.Token) *pongo2.Error {
	e := ctx.OrigError(err, tok)
	e.Sender = sender
	return e
}
