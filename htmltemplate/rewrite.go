package htmltemplate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template/parse"

	"github.com/fragcache/fragcache/fragment"
)

// funcPrefix starts the name of the function each block calls.
const funcPrefix = "_fragcache_"

func funcName(id int) string { return funcPrefix + strconv.Itoa(id) }

// rewrite hoists the cache blocks of every template of the set not
// rewritten yet, in name order so that the first error is deterministic,
// and drops the context check's results, since the set may have changed.
func (s *set) rewrite() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.executed.Load() { // once executed, html/template refuses changes
		s.pristine = nil
		s.checked.Store(nil)
	}
	s.unnamed = make(map[string]*fragment.Site)
	s.lines = make(map[string][]*block)
	tmpls := s.root.Templates()
	sort.Slice(tmpls, func(i, j int) bool { return tmpls[i].Name() < tmpls[j].Name() })
	var errs []error
	for _, tmpl := range tmpls {
		tr := tmpl.Tree
		if tr == nil || tr.Root == nil || s.done[tr] {
			continue
		}
		// A tree that fails is not retried: its error is reported once, by
		// the Parse call that added it, and its unrewritten tags fail at
		// execution.
		s.done[tr] = true
		if err := s.rewriteTree(tr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// rewriteTree checks that every cache and endcache in tr is a tag of its
// own, then hoists the blocks.
func (s *set) rewriteTree(tr *parse.Tree) error {
	var err error
	inspect(tr.Root, func(n parse.Node) bool {
		if err != nil {
			return false
		}
		if a, kind := tag(n); kind != "" {
			args := a.Pipe.Cmds[0].Args
			switch {
			case kind == "cache" && len(args) == 1:
				err = nodeError(tr, a, ErrSyntax, "cache needs a timeout: {{ cache timeout [name [vary_on...]] }}")
			case kind == "endcache" && len(args) > 1:
				err = nodeError(tr, a, ErrSyntax, "endcache takes no arguments")
			}
			for _, arg := range args[1:] {
				inspect(arg, func(n parse.Node) bool { return checkIdent(tr, n, &err) })
			}
			return false
		}
		return checkIdent(tr, n, &err)
	})
	if err != nil {
		return err
	}
	return s.rewriteList(tr, tr.Root, !assignsRoot(tr))
}

// assignsRoot reports whether tr declares or assigns the variable $
// anywhere ({{ $ = .X }}), after which the dot at its top level may no
// longer be $.
func assignsRoot(tr *parse.Tree) bool {
	found := false
	inspect(tr.Root, func(n parse.Node) bool {
		if p, ok := n.(*parse.PipeNode); ok && p != nil {
			for _, v := range p.Decl {
				found = found || v.Ident[0] == "$"
			}
		}
		return !found
	})
	return found
}

// checkIdent reports a cache or endcache used other than as a tag.
func checkIdent(tr *parse.Tree, n parse.Node, err *error) bool {
	if id, ok := n.(*parse.IdentifierNode); ok && *err == nil && (id.Ident == "cache" || id.Ident == "endcache") {
		*err = nodeError(tr, id, ErrSyntax, "%s must be an action of its own, as in {{ cache 300 }}...{{ endcache }}", id.Ident)
	}
	return *err == nil
}

// tag returns n as an action and "cache" or "endcache" if n is
// {{ cache ... }} or {{ endcache ... }}: a single command, no variable
// declaration.
func tag(n parse.Node) (*parse.ActionNode, string) {
	a, ok := n.(*parse.ActionNode)
	if !ok || len(a.Pipe.Decl) != 0 || len(a.Pipe.Cmds) != 1 {
		return nil, ""
	}
	if id, ok := a.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode); ok && (id.Ident == "cache" || id.Ident == "endcache") {
		return a, id.Ident
	}
	return nil, ""
}

// rewriteList hoists every block whose tags are both in list, after the
// blocks nested in its branches and in the block's own body. rootIsDot
// says that the dot is $ wherever list runs: at the top level of a
// template that never assigns $, and in the {{if}} branches and {{else}}
// branches of {{range}} and {{with}} (which keep the dot) of such a list.
func (s *set) rewriteList(tr *parse.Tree, list *parse.ListNode, rootIsDot bool) error {
	if list == nil {
		return nil
	}
	out := list.Nodes[:0:0]
	for i := 0; i < len(list.Nodes); i++ {
		n := list.Nodes[i]
		if br := branch(n); br != nil {
			_, isIf := n.(*parse.IfNode)
			if err := s.rewriteList(tr, br.List, rootIsDot && isIf); err != nil {
				return err
			}
			if err := s.rewriteList(tr, br.ElseList, rootIsDot); err != nil {
				return err
			}
		}
		open, kind := tag(n)
		switch kind {
		case "":
			out = append(out, n)
			continue
		case "endcache":
			return nodeError(tr, open, ErrSyntax, "endcache without a cache before it in the same list of actions")
		}
		j, depth := i+1, 1
		for ; j < len(list.Nodes); j++ {
			switch _, k := tag(list.Nodes[j]); k {
			case "cache":
				depth++
			case "endcache":
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if depth > 0 {
			return nodeError(tr, open, ErrSyntax,
				"cache without a matching endcache in the same list of actions (both must be inside the same {{if}}, {{range}} or {{with}} branch)")
		}
		body := &parse.ListNode{NodeType: parse.NodeList, Pos: open.Pos, Nodes: slices.Clone(list.Nodes[i+1 : j])}
		if err := s.hoist(tr, open, body, rootIsDot); err != nil {
			return err
		}
		out = append(out, open)
		i = j
	}
	list.Nodes = out
	return nil
}

// branch returns the branches of an {{if}}, {{range}} or {{with}}.
func branch(n parse.Node) *parse.BranchNode {
	switch x := n.(type) {
	case *parse.IfNode:
		return &x.BranchNode
	case *parse.RangeNode:
		return &x.BranchNode
	case *parse.WithNode:
		return &x.BranchNode
	}
	return nil
}

// hoist moves body into a template of its own and turns the opening tag
// into a call of the block's function: {{ cache 300 "x" .A }} becomes
// {{ _fragcache_7 . .A }} (constant arguments are kept by the block, and
// $ is passed after the dot when the body uses it and the dot may not be
// $ there: see rewriteList).
func (s *set) hoist(tr *parse.Tree, open *parse.ActionNode, body *parse.ListNode, rootIsDot bool) error {
	site := siteOf(tr, open)
	sum := sha256.Sum256([]byte(body.String())) // before nested blocks are rewritten
	site.Digest = hex.EncodeToString(sum[:8])
	// Where the dot is $, the body executed with the dot as its data sees
	// $ as the block saw it; elsewhere, a body using $ is wrapped so that
	// $ is set back, and its own top level is no more sure to have $ as
	// the dot than the block's.
	if err := s.rewriteList(tr, body, rootIsDot); err != nil {
		return err
	}
	sc := scope{tr: tr}
	if err := sc.list(body); err != nil {
		return err
	}

	b := &block{id: len(s.blocks), site: site, set: s, usesRoot: sc.usesRoot && !rootIsDot, rootIsDot: rootIsDot}
	cmd := open.Pipe.Cmds[0]
	ident := cmd.Args[0].(*parse.IdentifierNode)
	var dynamic []parse.Node
	if b.usesRoot {
		dynamic = append(dynamic, &parse.VariableNode{NodeType: parse.NodeVariable, Ident: []string{"$"}})
	}
	for i, arg := range cmd.Args[1:] {
		ref := argRef{dyn: -1}
		v, isConst, err := constant(arg)
		switch {
		case err != nil:
			return nodeError(tr, arg, ErrSyntax, "%v", err)
		case isConst:
			if err := checkConstant(i, v); err != nil {
				return &fragment.SiteError{Site: siteOf(tr, arg), Err: err}
			}
			ref.val = v
		default:
			ref.dyn = b.nArgs
			b.nArgs++
			dynamic = append(dynamic, arg)
		}
		switch i {
		case 0:
			b.timeout = ref
		case 1:
			b.hasName, b.name = true, ref
		default:
			b.vary = append(b.vary, ref)
		}
	}
	b.constVary = b.constantVaryOn()
	// Unnamed blocks are keyed by path and line only, as in Flask.
	at := site.Path + "\x00" + strconv.Itoa(site.Line)
	if !b.hasName || (b.name.dyn < 0 && b.name.val == nil) {
		if first := s.unnamed[at]; first != nil {
			return &fragment.SiteError{Site: site, Err: fmt.Errorf(
				"%w: %w: the unnamed block at %s is on the same line, and unnamed blocks are keyed by template and line: name one of them",
				ErrSyntax, ErrSameLine, first)}
		}
		s.unnamed[at] = site
	}
	// A dynamic name that evaluates to nil falls back to the same key:
	// render refuses it when a block on the line may have that key too.
	for _, o := range s.lines[at] {
		if b.hasName && b.name.dyn >= 0 && o.mayBeUnnamed() && b.lineMate == nil {
			b.lineMate = o.site
		}
		if o.hasName && o.name.dyn >= 0 && b.mayBeUnnamed() && o.lineMate == nil {
			o.lineMate = site
		}
	}
	s.lines[at] = append(s.lines[at], b)

	b.hoistedName = "cache@" + site.String()
	ht := new(parse.Tree)
	*ht = *tr // keeps the source text, which ErrorContext reads for any node without a tree
	ht.Name = b.hoistedName
	ht.Root = body
	if b.usesRoot {
		ht.Root = rootWrapper(body)
	}
	tmpl, err := s.root.AddParseTree(b.hoistedName, ht)
	if err != nil {
		return fmt.Errorf("%s: cache: %w", site, err)
	}
	b.tmpl = tmpl
	s.done[ht] = true
	s.blocks = append(s.blocks, b)
	s.hoisted[b.hoistedName] = b
	s.root.Funcs(template.FuncMap{funcName(b.id): b.fn()})

	// The dot is a node of no tree, at offset 0, so that an error pointing
	// at it could not read past the text of any tree (none can occur: any
	// value converts to the function's interface{} parameter).
	ident.Ident = funcName(b.id)
	cmd.Args = append([]parse.Node{ident, &parse.DotNode{NodeType: parse.NodeDot}}, dynamic...)
	return nil
}

// rootFunc returns $ at the block whose body is executing (set.boundRoot).
const rootFunc = funcPrefix + "root"

// boundRoot returns $ at the block whose body the calling goroutine is
// executing.
func (s *set) boundRoot() any { return s.execs.current().root }

// rootWrapper prefixes the body of a block that uses $ with
// {{ $ = _fragcache_root }}: the hoisted template is executed with the
// block's dot as its data, and this sets $ back to what it was at the
// block (block.execute binds it).
func rootWrapper(body *parse.ListNode) *parse.ListNode {
	setRoot := &parse.PipeNode{NodeType: parse.NodePipe, IsAssign: true,
		Decl: []*parse.VariableNode{{NodeType: parse.NodeVariable, Ident: []string{"$"}}},
		Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand,
			Args: []parse.Node{&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Ident: rootFunc}}}},
	}
	return &parse.ListNode{NodeType: parse.NodeList, Nodes: append(
		[]parse.Node{&parse.ActionNode{NodeType: parse.NodeAction, Pipe: setRoot}}, body.Nodes...)}
}

// constant returns the value text/template passes for arg to an
// interface{} parameter, when arg is a constant; text/template's rules
// (idealConstant) are copied so that folding changes nothing.
func constant(arg parse.Node) (v any, ok bool, err error) {
	switch n := arg.(type) {
	case *parse.StringNode:
		return n.Text, true, nil
	case *parse.BoolNode:
		return n.True, true, nil
	case *parse.NilNode:
		return nil, true, nil
	case *parse.NumberNode:
		switch {
		case n.IsComplex:
			return n.Complex128, true, nil
		case n.IsFloat && !isHexInt(n.Text) && !isRuneInt(n.Text) && strings.ContainsAny(n.Text, ".eEpP"):
			return n.Float64, true, nil
		case n.IsInt:
			i := int(n.Int64)
			if int64(i) != n.Int64 {
				return nil, false, fmt.Errorf("%s overflows int", n.Text)
			}
			return i, true, nil
		}
		return nil, false, fmt.Errorf("%s overflows int", n.Text)
	}
	return nil, false, nil
}

func isRuneInt(s string) bool { return len(s) > 0 && s[0] == '\'' }

func isHexInt(s string) bool {
	return len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && !strings.ContainsAny(s, "pP")
}

// checkConstant rejects at parse time the constant arguments that Render
// would reject at every execution: a timeout that is not a non-negative
// number, nil or "del", and a name or vary_on value without a text form.
func checkConstant(i int, v any) error {
	if i > 0 {
		_, err := fragment.AppendKeyValue(nil, v)
		return err
	}
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		if t == "del" {
			return nil
		}
	case int:
		if t >= 0 {
			return nil
		}
	case float64:
		if t >= 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %#v (want seconds, nil or \"del\")", fragment.ErrTimeout, v)
}

// scope checks a block's body for what a template of its own cannot do:
// use a variable declared outside the body, or {{break}} or {{continue}}
// out of it. It tracks declarations as text/template's execution scopes
// them, and notes whether the body uses $.
type scope struct {
	tr         *parse.Tree
	vars       []string
	rangeDepth int
	usesRoot   bool
}

func (c *scope) list(l *parse.ListNode) error {
	if l == nil {
		return nil
	}
	for _, n := range l.Nodes {
		if err := c.node(n); err != nil {
			return err
		}
	}
	return nil
}

func (c *scope) node(n parse.Node) error {
	switch x := n.(type) {
	case *parse.ActionNode:
		return c.pipe(x.Pipe)
	case *parse.TemplateNode:
		return c.pipe(x.Pipe)
	case *parse.IfNode:
		return c.branch(&x.BranchNode, false)
	case *parse.WithNode:
		return c.branch(&x.BranchNode, false)
	case *parse.RangeNode:
		return c.branch(&x.BranchNode, true)
	case *parse.BreakNode, *parse.ContinueNode:
		if c.rangeDepth == 0 {
			return nodeError(c.tr, n, ErrSyntax, "%s inside a cache block cannot leave the block's body", n)
		}
	}
	return nil
}

// branch scopes as execution does: the pipeline's variables live to {{end}},
// those declared in the first list do not reach the {{else}} list.
func (c *scope) branch(b *parse.BranchNode, isRange bool) error {
	mark := len(c.vars)
	defer func() { c.vars = c.vars[:mark] }()
	if err := c.pipe(b.Pipe); err != nil {
		return err
	}
	inner := len(c.vars)
	if isRange {
		c.rangeDepth++
	}
	err := c.list(b.List)
	if isRange {
		c.rangeDepth--
	}
	if err != nil {
		return err
	}
	c.vars = c.vars[:inner]
	return c.list(b.ElseList)
}

// pipe evaluates the commands before declaring, as execution does, so in
// {{ $x := $x }} the right-hand $x is the outer one.
func (c *scope) pipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			if err := c.arg(arg); err != nil {
				return err
			}
		}
	}
	for _, v := range p.Decl {
		if p.IsAssign {
			if err := c.use(v); err != nil {
				return err
			}
			continue
		}
		c.vars = append(c.vars, v.Ident[0])
	}
	return nil
}

func (c *scope) arg(n parse.Node) error {
	switch x := n.(type) {
	case *parse.VariableNode:
		return c.use(x)
	case *parse.PipeNode:
		return c.pipe(x)
	case *parse.ChainNode:
		return c.arg(x.Node)
	}
	return nil
}

func (c *scope) use(v *parse.VariableNode) error {
	name := v.Ident[0]
	if name == "$" {
		c.usesRoot = true
		return nil
	}
	if slices.Contains(c.vars, name) {
		return nil
	}
	return nodeError(c.tr, v, ErrOuterVariable,
		"%s (the body runs as a template of its own: pass the value through the dot, or declare it inside the block)", name)
}

// inspect calls f for n and, while f returns true, for every node below
// it, like ast.Inspect.
func inspect(n parse.Node, f func(parse.Node) bool) {
	if n == nil || !f(n) {
		return
	}
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			inspect(c, f)
		}
	case *parse.ActionNode:
		inspect(x.Pipe, f)
	case *parse.PipeNode:
		if x == nil {
			return
		}
		for _, c := range x.Cmds {
			inspect(c, f)
		}
	case *parse.CommandNode:
		for _, c := range x.Args {
			inspect(c, f)
		}
	case *parse.ChainNode:
		inspect(x.Node, f)
	case *parse.TemplateNode:
		if x.Pipe != nil {
			inspect(x.Pipe, f)
		}
	case *parse.IfNode, *parse.RangeNode, *parse.WithNode:
		br := branch(n)
		inspect(br.Pipe, f)
		if br.List != nil {
			inspect(br.List, f)
		}
		if br.ElseList != nil {
			inspect(br.ElseList, f)
		}
	}
}

// siteOf returns the site of n in tr: path, line and column as
// parse.Tree.ErrorContext computes them, which is what text/template's own
// errors show.
func siteOf(tr *parse.Tree, n parse.Node) *fragment.Site {
	loc, _ := tr.ErrorContext(n) // "path:line:col"; the path may hold colons
	site := &fragment.Site{Path: loc}
	if i := strings.LastIndexByte(loc, ':'); i > 0 {
		if j := strings.LastIndexByte(loc[:i], ':'); j >= 0 {
			site.Path = loc[:j]
			site.Line, _ = strconv.Atoi(loc[j+1 : i])
			site.Col, _ = strconv.Atoi(loc[i+1:])
		}
	}
	return site
}

// nodeError returns a *fragment.SiteError at n wrapping sentinel.
func nodeError(tr *parse.Tree, n parse.Node, sentinel error, format string, args ...any) error {
	return &fragment.SiteError{Site: siteOf(tr, n), Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// finalize lets blocks evaluate their own arguments where they can do so
// exactly as text/template would, once, before the set's first execution,
// when its templates are final (html/template parses nothing more after
// one). Their dynamic arguments must be the dot or field chains of it
// (native.go evaluates those) or of $ where $ is the execution's data, and
// text/template's own dot must reach the block: a block whose dot is not
// $ is passed the reflect.Value text/template holds (block.fn), and its
// call drops the arguments. Where the dot is $, the block is passed an interface{} copy, which loses
// whether the dot was addressable (that decides whether text/template
// sees pointer methods) or an interface (its errors name it); but when
// the block's template is executed only by Execute, ExecuteTemplate, as a
// block's body, or by {{template "name" .}} where the caller's dot is its
// data (dataDotTemplates), the dot there is always the data of the
// execution running it, which every execution records (ctx.go): such a
// block is bound, its call passes nothing, as cheap for text/template as
// a constant, and it reads its dot from the record.
func (s *set) finalize() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finalized {
		return
	}
	s.finalized = true
	type place struct {
		name string
		tree *parse.Tree
		cmd  *parse.CommandNode
	}
	calls := make(map[string][]place) // by function name
	for _, t := range s.root.Templates() {
		if t.Tree == nil || t.Tree.Root == nil {
			continue
		}
		inspect(t.Tree.Root, func(n parse.Node) bool {
			if x, ok := n.(*parse.CommandNode); ok {
				if id, ok := x.Args[0].(*parse.IdentifierNode); ok && strings.HasPrefix(id.Ident, funcPrefix) {
					calls[id.Ident] = append(calls[id.Ident], place{t.Name(), t.Tree, x})
				}
			}
			return true
		})
	}
	dataDot := s.dataDotTemplates()
	funcs := template.FuncMap{}
	for _, b := range s.blocks {
		at := calls[funcName(b.id)]
		// Bound: the dot is always the data. Otherwise the block is passed
		// the dot text/template holds (block.fn); where the dot is $ that
		// is an interface{} copy, though, so only text/template can
		// evaluate the arguments there.
		if b.native != nil || len(at) != 1 {
			continue
		}
		bound := b.rootIsDot && dataDot[at[0].name]
		if (b.rootIsDot && !bound) || (!bound && b.nArgs == 0) {
			continue
		}
		keep := 2 // the function and the dot
		if b.usesRoot {
			keep++ // and $
		}
		// $ is the data of the execution everywhere in a template that is
		// no {{template}} target and never assigns $, and not a body
		// (whose $ is set back from the block's).
		rootIsData := dataDot[at[0].name] && s.hoisted[at[0].name] == nil && !assignsRoot(at[0].tree)
		args := at[0].cmd.Args[keep:]
		native := make([]*chainArg, 0, len(args))
		rootArgs := false
		for _, n := range args {
			a := &chainArg{set: s}
			switch x := n.(type) {
			case *parse.DotNode:
			case *parse.FieldNode:
				for _, id := range x.Ident {
					a.steps = append(a.steps, &chainStep{name: id})
				}
			case *parse.VariableNode:
				if x.Ident[0] != "$" || !rootIsData {
					continue
				}
				a.onRoot, rootArgs = true, true
				for _, id := range x.Ident[1:] {
					a.steps = append(a.steps, &chainStep{name: id})
				}
			default:
				continue
			}
			a.capture = s.captureTemplate(at[0].tree, at[0].name, n, s.options)
			native = append(native, a)
		}
		if len(native) != b.nArgs || len(args) != b.nArgs {
			continue
		}
		b.bound, b.native, b.rootArgs = bound, native, rootArgs
		if bound {
			keep = 1
		}
		at[0].cmd.Args = at[0].cmd.Args[:keep]
		funcs[funcName(b.id)] = b.fn()
	}
	if len(funcs) > 0 {
		s.root.Funcs(funcs)
	}
}

// dataDotTemplates returns the templates whose dot is always the data of
// the execution running them: all of them but those a {{template}} action
// calls with something else than {{template "name" .}} where the caller's
// dot is its data (see rewriteList's rootIsDot), or from a body. Layouts
// and partials called with the page's data keep it.
func (s *set) dataDotTemplates() map[string]bool {
	type site struct {
		caller string
		ok     bool // {{template "x" .}} where the caller's own dot is $
	}
	sites := make(map[string][]site) // by callee
	ok := make(map[string]bool)
	for _, t := range s.root.Templates() {
		if t.Tree == nil || t.Tree.Root == nil {
			continue
		}
		ok[t.Name()] = true
		caller, hoisted, assigns := t.Name(), s.hoisted[t.Name()] != nil, assignsRoot(t.Tree)
		templateCalls(t.Tree.Root, !assigns, func(n *parse.TemplateNode, rootIsDot bool) {
			passesDot := n.Pipe != nil && len(n.Pipe.Decl) == 0 && len(n.Pipe.Cmds) == 1 &&
				len(n.Pipe.Cmds[0].Args) == 1 && n.Pipe.Cmds[0].Args[0].Type() == parse.NodeDot
			sites[n.Name] = append(sites[n.Name], site{caller, passesDot && rootIsDot && !hoisted})
		})
	}
	for changed := true; changed; {
		changed = false
		for callee, ss := range sites {
			if !ok[callee] {
				continue
			}
			for _, st := range ss {
				if !st.ok || !ok[st.caller] {
					ok[callee], changed = false, true
					break
				}
			}
		}
	}
	return ok
}

// templateCalls calls f for every {{template}} action in list, with
// whether the dot is $ there, as rewriteList tracks it.
func templateCalls(list *parse.ListNode, rootIsDot bool, f func(n *parse.TemplateNode, rootIsDot bool)) {
	if list == nil {
		return
	}
	for _, n := range list.Nodes {
		if t, ok := n.(*parse.TemplateNode); ok {
			f(t, rootIsDot)
		}
		if br := branch(n); br != nil {
			_, isIf := n.(*parse.IfNode)
			templateCalls(br.List, rootIsDot && isIf, f)
			templateCalls(br.ElseList, rootIsDot, f)
		}
	}
}
