package htmltemplate

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/petermattis/goid"
)

// A block's arguments that are the dot or field chains of it ({{ cache 300
// "side" .User.ID }}) cost text/template more than the cache lookup: a
// FieldByName and a MethodByName per step and an interface cell per
// argument, on every call through reflect. Where the block gets exactly
// the value text/template would evaluate them on (see set.finalize), it
// evaluates them itself, as text/template would:
//
//   - a step on a struct with an exported field of that name and no method
//     of that name on the type or its pointer reads the field, through
//     pointers and interfaces that are not nil, with the field index cached
//     per type;
//   - a step on a map whose key type takes a string reads the key; a
//     missing key gives what the missingkey option says, except "error";
//   - anything else (a method, a nil pointer or interface, a missing key
//     under missingkey=error, an unexported field, a value without fields)
//     is evaluated by text/template itself, on a template of its own
//     holding the argument's node and bearing the name of the template the
//     block runs in, so that values, method calls and errors are
//     text/template's own, byte for byte. The fast path calls nothing, so
//     nothing runs twice.

// chainArg is one argument evaluated by the block: the dot or $, or a
// field chain on either.
type chainArg struct {
	steps   []*chainStep // empty for the dot itself
	capture *texttemplate.Template
	set     *set
	last    atomic.Value // the last string value boxed (boxString)
	onRoot  bool         // a chain of $ ($.User), not of the dot
}

// chainStep is one .Name of a chain, with what it does on the last type
// seen.
type chainStep struct {
	name string
	plan atomic.Pointer[stepPlan]
}

// stepPlan is how a step reads its value from a receiver of type typ
// (pointers and interfaces already followed).
type stepPlan struct {
	typ   reflect.Type
	kind  stepKind
	index []int // the field, for stepField
}

type stepKind uint8

const (
	stepFallback stepKind = iota // text/template evaluates the argument
	stepField
	stepMapKey
)

// planFor returns how a step named name reads a receiver of type t, as
// text/template's evalField would when nothing fails.
func planFor(t reflect.Type, name string) *stepPlan {
	p := &stepPlan{typ: t}
	// evalField looks for a method first, on *T when the receiver is
	// addressable: either way, a method of that name is text/template's
	// business.
	if _, ok := reflect.PointerTo(t).MethodByName(name); ok {
		return p
	}
	if _, ok := t.MethodByName(name); ok {
		return p
	}
	switch t.Kind() {
	case reflect.Struct:
		f, ok := t.FieldByName(name)
		if ok && f.IsExported() {
			p.kind, p.index = stepField, f.Index
		}
	case reflect.Map:
		if reflect.TypeFor[string]().AssignableTo(t.Key()) {
			p.kind = stepMapKey
		}
	}
	return p
}

// eval returns the argument's value for the data an execution was given,
// as text/template passes it to an interface{} parameter. It panics with an
// *argError when text/template would have failed.
func (a *chainArg) eval(data any) any {
	if _, ok := data.(reflect.Value); ok {
		// text/template takes a reflect.Value as the dot itself, possibly
		// addressable or an interface: only it knows what that means.
		return a.slow(data)
	}
	if len(a.steps) == 0 {
		return data
	}
	v, ok := a.fast(reflect.ValueOf(data))
	return a.result(v, ok, anyDot(data))
}

// evalValue is eval for the dot as the reflect.Value text/template holds.
func (a *chainArg) evalValue(dot reflect.Value) any {
	if len(a.steps) == 0 {
		if !dot.CanInterface() {
			return a.slow(dot)
		}
		return dot.Interface()
	}
	v, ok := a.fast(dot)
	return a.result(v, ok, valueDot(dot))
}

// result turns what fast found into the value passed, or has text/template
// evaluate the argument on the dot when fast could not.
func (a *chainArg) result(v reflect.Value, ok bool, d blockDot) any {
	if !ok {
		return a.slow(d.data())
	}
	if !v.IsValid() {
		return nil
	}
	if v.Kind() == reflect.String && v.Type() == stringType {
		return a.boxString(v.String())
	}
	return v.Interface()
}

var stringType = reflect.TypeFor[string]()

// maxReusedString is the longest string value boxString keeps.
const maxReusedString = 128

// boxString returns s as an interface{}, reusing the last one the argument
// boxed when it holds the same text: vary_on values such as a user, a
// locale or a role repeat from page to page, and boxing is then the only
// allocation of a hit. A value that changes costs a compare and a store
// more than boxing alone. Long texts are not kept: comparing them costs
// more than boxing, and the argument would keep one alive.
func (a *chainArg) boxString(s string) any {
	if len(s) > maxReusedString {
		return s
	}
	last := a.last.Load()
	if l, ok := last.(string); ok && l == s {
		return last
	}
	box := any(s)
	a.last.Store(box)
	return box
}

// fast follows the chain for the common cases; ok is false where
// text/template must.
func (a *chainArg) fast(v reflect.Value) (_ reflect.Value, ok bool) {
	for _, st := range a.steps {
		if !v.IsValid() {
			// A missing key earlier in the chain: evalField returns the
			// invalid value again, unless missingkey=error.
			if a.set.missingKey() == missingKeyError {
				return v, false
			}
			continue
		}
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		p := st.plan.Load()
		if p == nil || p.typ != v.Type() {
			p = planFor(v.Type(), st.name)
			st.plan.Store(p)
		}
		switch p.kind {
		case stepField:
			f, err := v.FieldByIndexErr(p.index)
			if err != nil {
				return v, false
			}
			v = f
		case stepMapKey:
			r := v.MapIndex(reflect.ValueOf(st.name))
			if !r.IsValid() {
				switch a.set.missingKey() {
				case missingKeyZero:
					r = reflect.Zero(v.Type().Elem())
				case missingKeyError:
					return v, false
				}
			}
			v = r
		default:
			return v, false
		}
	}
	if v.IsValid() && !v.CanInterface() {
		return v, false
	}
	return v, true
}

// slow has text/template evaluate the argument on the data.
func (a *chainArg) slow(data any) any {
	var got any
	id, prev := a.set.sinks.bind(&got)
	defer a.set.sinks.unbind(id, prev) // text/template re-panics runtime errors
	err := a.capture.Execute(io.Discard, data)
	if err != nil {
		panic(&argError{err: err})
	}
	return got
}

// argError carries text/template's error for an argument the block
// evaluated: the Execute methods return err itself, as text/template
// would have had it evaluated the argument.
type argError struct{ err error }

func (e *argError) Error() string { return e.err.Error() }
func (e *argError) Unwrap() error { return e.err }

// unwrapArgError returns the error text/template would have returned had
// it evaluated the argument itself.
func unwrapArgError(err error) error {
	if err == nil {
		return nil
	}
	return unwrapArgErrorOf(err)
}

// unwrapArgErrorOf is unwrapArgError's search, apart so that a nil error
// does not pay for errors.As's escaping target.
func unwrapArgErrorOf(err error) error {
	var ae *argError
	if errors.As(err, &ae) {
		return ae.err
	}
	return err
}

// captureFunc is the function capture templates call with the argument.
const captureFunc = funcPrefix + "capture"

// captureTemplate returns a text/template that evaluates node as the
// argument of a function call in the template named execName, executed
// with the block's dot, and hands the value to the calling goroutine's
// sink.
func (s *set) captureTemplate(tr *parse.Tree, execName string, node parse.Node, opts []string) *texttemplate.Template {
	ct := new(parse.Tree)
	*ct = *tr // the text, for errors at node (which points at tr anyway)
	ct.Name = execName
	ct.Root = &parse.ListNode{NodeType: parse.NodeList, Nodes: []parse.Node{
		&parse.ActionNode{NodeType: parse.NodeAction, Pos: node.Position(), Pipe: &parse.PipeNode{
			NodeType: parse.NodePipe, Pos: node.Position(),
			Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand, Pos: node.Position(),
				Args: []parse.Node{&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Ident: captureFunc}, node}}},
		}},
	}}
	t := texttemplate.New(execName).Option(opts...).Funcs(texttemplate.FuncMap{captureFunc: s.sinks.put})
	t, err := t.AddParseTree(execName, ct)
	if err != nil { // cannot happen: the template is new
		panic(err)
	}
	return t
}

// sinks holds, by goroutine, where a running capture template puts its
// argument's value (capture templates run synchronously, as blocks do;
// see ctx.go).
type sinks struct {
	mu sync.Mutex
	m  map[int64]*any
}

func (s *sinks) bind(p *any) (id int64, prev *any) {
	id = goid.Get()
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[int64]*any)
	}
	prev = s.m[id]
	s.m[id] = p
	s.mu.Unlock()
	return id, prev
}

func (s *sinks) unbind(id int64, prev *any) {
	s.mu.Lock()
	if prev != nil {
		s.m[id] = prev
	} else {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

func (s *sinks) put(v any) string {
	id := goid.Get()
	s.mu.Lock()
	p := s.m[id]
	s.mu.Unlock()
	if p != nil { // always: only capture templates call it, under slow
		*p = v
	}
	return ""
}

// missingKeyAction is text/template's missingkey option, as Option set it.
type missingKeyAction uint8

const (
	missingKeyInvalid missingKeyAction = iota
	missingKeyZero
	missingKeyError
)

// recordOptions notes the options text/template has accepted from Option,
// for the capture templates (those already made take them too, as
// text/template's own templates do) and the missingkey one for the fast
// path. Called with s.mu held.
func (s *set) recordOptions(opts []string) {
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		if k != "missingkey" {
			continue
		}
		switch v {
		case "zero":
			s.missingKeyOpt.Store(uint32(missingKeyZero))
		case "error":
			s.missingKeyOpt.Store(uint32(missingKeyError))
		default:
			s.missingKeyOpt.Store(uint32(missingKeyInvalid))
		}
	}
	s.options = append(s.options, opts...)
	for _, b := range s.blocks {
		for _, a := range b.native {
			a.capture.Option(opts...)
		}
	}
}

func (s *set) missingKey() missingKeyAction { return missingKeyAction(s.missingKeyOpt.Load()) }
