package htmltemplate

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"strconv"
	"strings"
	"text/template/parse"

	"github.com/fragcache/fragcache/fragment"
)

// The context check. html/template computes the context of every action
// only when a template is first executed, starting from that template, and
// a template called with {{template}} gets the caller's context; so a
// block's context is known per entry template, not at parse time. check
// runs html/template's own escaper, without executing anything, on a
// private clone in which each block's call is replaced by a call of a tiny
// template "_fragcache_ctx_<id>".
//
// What public API answers, it answers. Which blocks an entry reaches is
// read from the parse trees (text/template/parse): {{template}} calls,
// block calls and the bodies they run. Each reached block's body is then
// escaped the way it runs, as a template of its own starting in element
// content, inside {{if false}} so that nothing runs; a body that does not
// end in element content fails that with ErrBranchEnd on our {{if}} node
// (template.Error's ErrorCode and Node, both public).
//
// The residue, and why. html/template tells the context of a position in
// two places only, neither of them API: the names of the copies it makes
// of a template called outside element content ("_fragcache_ctx_3" called
// in a quoted attribute becomes "_fragcache_ctx_3$htmltemplate_stateAttr_
// delimDoubleQuote", listed by DefinedTemplates), and the Description of
// its errors ("{{if}} branches end in different contexts: {stateURL …}").
// No public function, field or error code gives a context: an error
// probe cannot be built either, since no text changes every other context
// while leaving element content alone (JavaScript's regexp-or-division
// state changes with any token but white space). So check reads a block's
// context from those names (derivedContexts) and a body's end context from
// that Description (bodyError), and names them for humans (describe). If a
// Go release changed the part of a copy's name after the stand-in's, or
// the Description's wording, blocks outside element content would still
// be rejected (a copy is any template named after a stand-in and longer;
// a body's verdict is the error code), with a vaguer message ("a context
// other than element content"). TestBlocksOutsideElementContentAreRejected
// pins every case, so an upgrade that broke more would fail it.

const (
	ctxPrefix   = funcPrefix + "ctx_"   // stands for block id's call in the clone
	probePrefix = funcPrefix + "probe_" // escapes block id's body in the clone
	callPrefix  = funcPrefix + "call_"  // holds the {{template}} node that replaces block id's call
	probeEntry  = funcPrefix + "probe"  // escapes the entry template
	probeDefs   = funcPrefix + "probes"
)

// check returns the context check's result for the entry template name,
// computing it on the first call.
func (s *set) check(name string) error {
	if m := s.checked.Load(); m != nil {
		if err, ok := (*m)[name]; ok {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.checked.Load()
	if m != nil {
		if err, ok := (*m)[name]; ok {
			return err
		}
	}
	var err error
	if len(s.blocks) > 0 {
		if s.pristine == nil {
			p, cerr := s.root.Clone()
			if cerr != nil {
				// Not remembered: the set may still be parsed into.
				return fmt.Errorf("htmltemplate: cannot check the contexts of cache blocks: %w", cerr)
			}
			s.pristine = p
		}
		err = s.probe(name)
	}
	next := map[string]error{name: err}
	if m != nil {
		next = maps.Clone(*m)
		next[name] = err
	}
	s.checked.Store(&next)
	return err
}

// probe checks the blocks reachable from the entry template name.
func (s *set) probe(name string) error {
	c, err := s.pristine.Clone()
	if err != nil {
		return fmt.Errorf("htmltemplate: cannot check the contexts of cache blocks: %w", err)
	}
	var defs strings.Builder
	fmt.Fprintf(&defs, `{{define %q}}{{if false}}{{template %q}}{{end}}{{end}}`, probeEntry, name)
	for _, b := range s.blocks {
		id := strconv.Itoa(b.id)
		fmt.Fprintf(&defs, `{{define %q}}{{true}}{{end}}`, ctxPrefix+id)
		fmt.Fprintf(&defs, `{{define %q}}{{template %q}}{{end}}`, callPrefix+id, ctxPrefix+id)
		fmt.Fprintf(&defs, `{{define %q}}{{if false}}{{template %q}}{{end}}{{end}}`, probePrefix+id, b.hoistedName)
	}
	if _, err := c.New(probeDefs).Delims("", "").Parse(defs.String()); err != nil {
		return fmt.Errorf("htmltemplate: cannot check the contexts of cache blocks: %w", err)
	}
	calls := make(map[string]parse.Node, len(s.blocks))
	for _, b := range s.blocks {
		calls[funcName(b.id)] = c.Lookup(callPrefix + strconv.Itoa(b.id)).Tree.Root.Nodes[0]
	}
	for _, t := range c.Templates() {
		if t.Tree != nil && t.Tree.Root != nil {
			replaceCalls(t.Tree.Root, calls)
		}
	}

	// Read before escaping, which renames the calls made outside element
	// content after the copies it makes of their templates.
	reached := s.reachable(c, name)
	if err := c.ExecuteTemplate(io.Discard, probeEntry, nil); err != nil {
		// The entry itself does not escape (it is undefined, or ends in
		// a non-text context...): its execution reports that better.
		return nil
	}
	for _, b := range s.blocks { // in id order, so the first error is deterministic
		if !reached[b.id] {
			continue
		}
		probe := probePrefix + strconv.Itoa(b.id)
		probeIf := c.Lookup(probe).Tree.Root.Nodes[0]
		if err := c.ExecuteTemplate(io.Discard, probe, nil); err != nil {
			return &fragment.SiteError{Site: b.site, Err: bodyError(err, probeIf)}
		}
	}
	bad := derivedContexts(c.DefinedTemplates())
	for _, b := range s.blocks {
		if ctx, ok := bad[b.id]; ok {
			return &fragment.SiteError{Site: b.site, Err: fmt.Errorf("%w: it is in %s (html/template context %s)",
				ErrContext, describe(ctx), ctx)}
		}
	}
	return nil
}

// bodyError explains why a block's body failed to escape as a template of
// its own. A body ending outside element content makes the probe's {{if}}
// (whose other branch is empty) end in two contexts, the body's first.
func bodyError(err error, probeIf parse.Node) error {
	var te *template.Error
	if errors.As(err, &te) && te.ErrorCode == template.ErrBranchEnd && te.Node == parse.Node(branch(probeIf)) {
		// The residue: the context is named only in the Description,
		// "{{if}} branches end in different contexts: {stateURL
		// delimDoubleQuote ...}, {stateText ...}". Another wording leaves
		// ctx empty: the block is still rejected, in vaguer words.
		_, ctx, _ := strings.Cut(te.Description, "contexts: {")
		ctx, _, _ = strings.Cut(ctx, " ")
		return fmt.Errorf("%w: its body ends in %s (html/template context %s); a body must begin and end in element content",
			ErrContext, describe(ctx), ctx)
	}
	return fmt.Errorf("%w: its body does not escape as a template of its own: %v", ErrContext, err)
}

// replaceCalls swaps every block call in l, and in the lists below it, for
// a copy of the {{template}} node that stands for it.
func replaceCalls(l *parse.ListNode, calls map[string]parse.Node) {
	inspect(l, func(n parse.Node) bool {
		list, ok := n.(*parse.ListNode)
		if !ok || list == nil {
			return true
		}
		for i, c := range list.Nodes {
			a, ok := c.(*parse.ActionNode)
			if !ok || len(a.Pipe.Cmds) == 0 {
				continue
			}
			if id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode); ok {
				if tn, ok := calls[id.Ident]; ok {
					list.Nodes[i] = tn.Copy()
				}
			}
		}
		return true
	})
}

// reachable returns the ids of the blocks the entry template name runs,
// directly or through {{template}} calls and the bodies of other blocks,
// read from the parse trees of the clone c, in which every block's call is
// a {{template}} call of its stand-in. The escaper escapes every branch,
// executed or not, and so does this walk.
func (s *set) reachable(c *template.Template, name string) map[int]bool {
	stand := make(map[string]*block, len(s.blocks))
	for _, b := range s.blocks {
		stand[ctxPrefix+strconv.Itoa(b.id)] = b
	}
	reached := make(map[int]bool)
	seen := make(map[string]bool)
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		t := c.Lookup(name)
		if t == nil || t.Tree == nil || t.Tree.Root == nil {
			return
		}
		inspect(t.Tree.Root, func(n parse.Node) bool {
			tn, ok := n.(*parse.TemplateNode)
			if !ok {
				return true
			}
			if b := stand[tn.Name]; b != nil {
				reached[b.id] = true
				walk(b.hoistedName)
			} else {
				walk(tn.Name)
			}
			return true
		})
	}
	walk(name)
	return reached
}

// derivedContexts finds, in a DefinedTemplates list, the copies
// html/template made of the stand-ins (see the residue above): block id →
// the context part of the copy's name, "" if the name has no part we know.
// Any template named after a stand-in but longer than it is such a copy:
// the "_fragcache_" names are reserved, so only html/template makes them.
func derivedContexts(defined string) map[int]string {
	out := make(map[int]string)
	for rest := defined; ; {
		i := strings.Index(rest, `"`+ctxPrefix)
		if i < 0 {
			return out
		}
		rest = rest[i+1+len(ctxPrefix):]
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			return out
		}
		name := rest[:end]
		rest = rest[end:]
		digits := 0
		for digits < len(name) && '0' <= name[digits] && name[digits] <= '9' {
			digits++
		}
		id, err := strconv.Atoi(name[:digits])
		if err != nil || digits == len(name) {
			continue // the stand-in itself
		}
		_, ctx, _ := strings.Cut(name[digits:], "$htmltemplate_")
		if _, seen := out[id]; !seen {
			out[id] = ctx
		}
	}
}

// describe names an html/template context state for an error message.
func describe(ctx string) string {
	state, rest, _ := strings.Cut(ctx, "_")
	switch {
	case state == "stateAttr" && strings.Contains(rest, "delimSpaceOrTagEnd"):
		return "an unquoted attribute value"
	case state == "stateAttr":
		return "a quoted attribute value"
	case state == "stateBeforeValue":
		return "an unquoted attribute value"
	case state == "stateTag", state == "stateAttrName", state == "stateAfterName":
		return "a tag, where attributes go"
	case state == "stateURL", state == "stateSrcset", state == "stateMetaContentURL":
		return "a URL"
	case state == "stateMetaContent":
		return "a meta content attribute"
	case strings.HasPrefix(state, "stateJS"):
		return "a script"
	case strings.HasPrefix(state, "stateCSS"):
		return "a style sheet"
	case state == "stateRCDATA":
		return "an RCDATA element such as <title> or <textarea>"
	case state == "stateHTMLCmt":
		return "an HTML comment"
	}
	return "a context other than element content"
}
