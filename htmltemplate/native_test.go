package htmltemplate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"reflect"
	"strings"
	"testing"
	texttemplate "text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

// Types for the native evaluation tests: every way text/template's field
// evaluation can go.
type (
	nInner struct {
		B     string
		N     int
		Any   any
		Map   map[string]any
		Ptr   *nInner
		Fn    func() string
		inner string
	}
	nOuter struct {
		A      nInner
		P      *nInner
		I      any
		M      map[string]any
		Ints   map[string]int
		ByInt  map[int]string
		ByName map[nKey]int
		ByAny  map[any]any
		Named  nMap
		PMap   nPMap
		nEmbed
		*nEmbedPtr
		lower string
	}
	nEmbed    struct{ Promoted string }
	nEmbedPtr struct{ Deep string }
	nKey      string
	nMap      map[string]string
	nPMap     map[string]string
	nMethods  struct{ F string }
	nPtrMeth  struct{ X string }
)

func (nMethods) Value() string                { return "value method" }
func (nMethods) Fails() (string, error)       { return "", errors.New("method failed") }
func (nMethods) Panics() string               { panic("method panicked") }
func (nMethods) Args(int) string              { return "" }
func (nMethods) Two() (string, string)        { return "", "" }
func (nMethods) Self() nMethods               { return nMethods{F: "self"} }
func (nMethods) RV() reflect.Value            { return reflect.ValueOf(7) }
func (*nPtrMeth) Ptr() string                 { return "pointer method" }
func (m nMap) Get() string                    { return m["k"] }
func (m *nPMap) Get() string                  { return "pointer method of a map" }
func (*nInner) Method() string                { return "inner pointer method" }
func (nKey) String() string                   { return "nKey" }
func (n *nOuter) Nil() string                 { return fmt.Sprint(n == nil) }
func (nEmbed) EmbeddedMethod() (string, bool) { return "", false }

func nativeData() *nOuter {
	in := nInner{B: "b", N: 3, Any: nInner{B: "in any"}, Map: map[string]any{"k": "v", "deep": map[string]any{"x": 1}}, Fn: func() string { return "fn" }, inner: "hidden"}
	return &nOuter{
		A:      in,
		P:      &nInner{B: "pb", Ptr: nil},
		I:      &nInner{B: "ib"},
		M:      map[string]any{"s": "str", "n": 1, "nil": nil, "inner": in, "ptr": &in, "m": map[string]any{"x": "y"}},
		Ints:   map[string]int{"one": 1},
		ByInt:  map[int]string{1: "one"},
		ByName: map[nKey]int{"k": 1},
		ByAny:  map[any]any{"k": "v"},
		Named:  nMap{"k": "named"},
		PMap:   nPMap{"k": "pmap"},
		nEmbed: nEmbed{Promoted: "promoted"},
		lower:  "lower",
	}
}

// TestNativeArgumentsMatchTextTemplate evaluates a cache tag's argument
// both ways, for every data shape and option: by the block (fast path or
// text/template on a template of its own) and by text/template itself, as
// the argument of a function standing for cache. Values, and the errors
// Execute returns, must be the same.
func TestNativeArgumentsMatchTextTemplate(t *testing.T) {
	chains := []string{
		".", ".A", ".A.B", ".A.N", ".A.Any", ".A.Any.B", ".A.Map.k", ".A.Map.deep.x", ".A.Map.missing", ".A.Map.missing.x",
		".A.Ptr", ".A.Ptr.B", ".A.Fn", ".A.inner", ".A.Method", ".A.Nope",
		".P.B", ".P.Ptr", ".P.Ptr.B", ".P.Method", ".I.B", ".I.Method", ".I.Nope",
		".M.s", ".M.n", ".M.nil", ".M.nil.x", ".M.inner.B", ".M.ptr.B", ".M.m.x", ".M.missing", ".M.missing.deeper",
		".Ints.one", ".Ints.two", ".ByInt.x", ".ByName.k", ".ByAny.k", ".ByAny.z", ".Named.k", ".Named.Get", ".PMap.k", ".PMap.Get",
		".Promoted", ".nEmbed.Promoted", ".EmbeddedMethod", ".Deep", ".nEmbedPtr", ".lower", ".Nil", ".Missing", ".Missing.x",
		"$", "$.A.B", "$.M.s", "$.M.missing", "$.P.Ptr.B", "$.A.Method", "$.Missing",
	}
	dots := map[string]any{
		"pointer": nativeData(),
		"struct":  *nativeData(),
		"map":     map[string]any{"A": nativeData().A, "P": (*nInner)(nil), "M": map[string]any{"s": "str"}, "I": nil},
		"nil ptr": (*nOuter)(nil),
		"nil":     nil,
		"methods": nMethods{F: "f"},
		"int":     7,
		// text/template takes a reflect.Value as the dot itself: here an
		// addressable struct (pointer methods of its fields' types are
		// seen) and an interface.
		"reflect addressable": reflect.ValueOf(nativeData()).Elem(),
		"reflect interface":   reflect.ValueOf(&[]any{nativeData()}[0]).Elem(),
		"reflect invalid":     reflect.Value{},
	}
	methodChains := []string{".F", ".Value", ".Fails", ".Panics", ".Args", ".Two", ".Self.F", ".Self.Value", ".RV", ".Ptr", ".X", "$.Value", "$.Fails"}
	for _, opt := range []string{"missingkey=default", "missingkey=zero", "missingkey=error"} {
		for dname, dot := range dots {
			cs := chains
			if dname == "methods" {
				cs = methodChains
			}
			for _, chain := range cs {
				for _, where := range nativePlaces {
					t.Run(opt+"/"+dname+"/"+chain+"/"+where, func(t *testing.T) {
						compareNative(t, opt, dot, chain, where)
					})
				}
			}
		}
		t.Run(opt+"/pointer method on a struct value", func(t *testing.T) {
			for _, where := range nativePlaces {
				compareNative(t, opt, nPtrMeth{X: "x"}, ".Ptr", where)
				compareNative(t, opt, &nPtrMeth{X: "x"}, ".Ptr", where)
			}
		})
	}
}

// nativePlaces are where compareNative puts the block: where the dot is
// the data (the block is bound), and inside a {{range}} whose element is
// the data, as an interface (in a []any) or addressable (in a []T).
var nativePlaces = []string{"top", "range any", "range addressable"}

// compareNative checks one chain on one dot under one option, with the
// block where says.
func compareNative(t *testing.T, opt string, dot any, chain, where string) {
	t.Helper()
	block := "{{ cache 1 \"n\" " + chain + " }}x{{ endcache }}"
	src := "<p>" + block + "</p>"
	var elem reflect.Value // the dot at the block, for the value check
	funcs := texttemplate.FuncMap{}
	switch where {
	case "top":
	case "range any":
		src = "<p>{{ range wrap . }}" + block + "{{ end }}</p>"
		inner := dot // what wrap receives: a reflect.Value is the dot itself
		if v, ok := dot.(reflect.Value); ok {
			inner = nil
			if v.IsValid() {
				inner = v.Interface()
			}
		}
		elem = reflect.ValueOf([]any{inner}).Index(0)
		funcs["wrap"] = func(v any) []any { return []any{v} }
	case "range addressable":
		v, ok := dot.(reflect.Value)
		if !ok {
			v = reflect.ValueOf(dot)
		}
		if !v.IsValid() {
			t.Skip("no type to make a slice of")
		}
		src = "<p>{{ range wrap }}" + block + "{{ end }}</p>"
		s := reflect.MakeSlice(reflect.SliceOf(v.Type()), 1, 1)
		s.Index(0).Set(v)
		elem = s.Index(0)
		funcs["wrap"] = func() any { return s.Interface() }
	}

	// text/template's own evaluation: cache is a function receiving it.
	var want any
	refFuncs := texttemplate.FuncMap{
		"cache":    func(args ...any) string { want = args[2]; return "" },
		"endcache": func() string { return "" },
	}
	maps.Copy(refFuncs, funcs)
	ref := texttemplate.Must(texttemplate.New("page.html").Option(opt).Funcs(refFuncs).Parse(src))
	wantErr := ref.Execute(&bytes.Buffer{}, dot)

	fc, _ := newCache(fragment.Options{})
	tpl, err := New("page.html", fc).Option(opt).Funcs(template.FuncMap(funcs)).Parse(src)
	require.NoError(t, err)
	_, gotErr := run(tpl, dot)
	b := tpl.set.blocks[0]
	require.NotNil(t, b.native, "the block evaluates its argument")
	assert.Equal(t, where == "top", b.bound)

	if wantErr != nil {
		require.Error(t, gotErr)
		assert.Equal(t, wantErr.Error(), gotErr.Error())
		var want, got texttemplate.ExecError
		require.ErrorAs(t, wantErr, &want)
		require.ErrorAs(t, gotErr, &got)
		assert.Equal(t, want.Name, got.Name)
		return
	}
	// The value itself, straight from the block's evaluation: the key
	// alone could not tell every value apart.
	if strings.HasPrefix(chain, "$") { // evaluated on the data, wherever the block is
		elem = reflect.Value{}
	}
	got, evalErr := evalNative(b, dot, elem)
	require.NoError(t, evalErr)
	assertSameValue(t, want, got)
	if gotErr != nil { // a value without a key form, as it would have been
		assert.ErrorContains(t, gotErr, "fragment:")
	}
}

func evalNative(b *block, dot any, elem reflect.Value) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	if elem.IsValid() {
		return b.native[0].evalValue(elem), nil
	}
	return b.native[0].eval(dot), nil
}

// assertSameValue compares values that may hold functions, which
// reflect.DeepEqual never finds equal: %#v prints their addresses.
func assertSameValue(t *testing.T, want, got any) {
	t.Helper()
	assert.Equal(t, reflect.TypeOf(want), reflect.TypeOf(got))
	assert.Equal(t, fmt.Sprintf("%#v", want), fmt.Sprintf("%#v", got))
}

// TestNativeOnlyWhereTheDotIsTheData checks which blocks evaluate their
// arguments: those passed text/template's own dot (in a {{range}} or
// {{with}}), and, bound to the execution, those whose dot is the data; not
// those whose dot is $ in a {{template}} target (passed an interface{}
// copy, which loses addressability and interface-ness), unless every
// {{template}} action calling it passes its own data, nor those with other
// arguments than field chains.
func TestNativeOnlyWhereTheDotIsTheData(t *testing.T) {
	src := `{{ define "called" }}{{ cache 1 "c" .B }}c{{ endcache }}{{ end }}` +
		`{{ define "direct" }}{{ cache 1 "d" .B }}d{{ endcache }}{{ end }}` +
		`{{ cache 1 "top" .A.B }}t{{ endcache }}{{ cache 1 "noargs" }}{{ .B }}{{ endcache }}` +
		`{{ if true }}{{ cache 1 "if" .A.B .B }}i{{ endcache }}{{ end }}` +
		`{{ range .List }}{{ cache 1 "range" .B }}r{{ endcache }}{{ end }}` +
		`{{ with .A }}{{ cache 1 "with" .B }}w{{ endcache }}{{ end }}` +
		`{{ cache 1 "pipe" (print .A.B) }}p{{ endcache }}` +
		`{{ cache 1 "var" $.A.B }}v{{ endcache }}` +
		`{{ cache 1 "body" }}{{ cache 1 "nested" .A.B }}n{{ endcache }}{{ endcache }}` +
		`{{ range .List }}{{ cache 1 "rvar" .B $.B }}r{{ endcache }}{{ end }}` +
		`{{ define "reassigns" }}{{ $ = .A }}{{ range .List }}{{ cache 1 "ra" $.B }}r{{ endcache }}{{ end }}{{ end }}` +
		`{{ define "called2" }}{{ range .List }}{{ cache 1 "ca" $.B }}r{{ endcache }}{{ end }}{{ end }}{{ template "called2" . }}` +
		`{{ define "called3" }}{{ with .B }}{{ cache 1 "cb" $.B }}r{{ endcache }}{{ end }}{{ cache 1 "cc" .B }}{{ endcache }}{{ end }}` +
		`{{ range .List }}{{ template "called3" . }}{{ end }}` +
		`{{ define "partial" }}{{ cache 1 "p" .B }}p{{ endcache }}{{ template "sub" . }}{{ end }}{{ template "partial" . }}` +
		`{{ define "sub" }}{{ cache 1 "s" .B }}s{{ endcache }}{{ end }}` +
		`{{ define "twice" }}{{ cache 1 "tw" .B }}{{ .B }}{{ endcache }}{{ end }}{{ template "twice" . }}{{ with .A }}{{ template "twice" . }}{{ end }}` +
		`{{ template "called" .A }}`
	data := map[string]any{"A": nInner{B: "b"}, "List": []nInner{{B: "1"}}, "B": "top b"}
	fc, _ := newCache(fragment.Options{})
	tpl, err := New("page.html", fc).Parse(src)
	require.NoError(t, err)
	plain := uncached(t, "page.html", src, nil)
	want := runPlain(t, plain, data)
	for range 2 {
		got, err := run(tpl, data)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	var buf bytes.Buffer
	require.NoError(t, tpl.ExecuteTemplate(&buf, "direct", data))
	type how struct{ native, bound bool }
	native := map[string]how{}
	for _, b := range tpl.set.blocks {
		native[b.site.String()] = how{b.native != nil, b.bound}
	}
	at := func(what string) string {
		pos := positionOf(t, src, `cache 1 "`+what+`"`, 0)
		return fmt.Sprintf("page.html:%d:%d", pos.line, pos.col)
	}
	bound, native2, neither := how{true, true}, how{true, false}, how{}
	for what, want := range map[string]how{
		"top": bound, "noargs": bound, "if": bound, "d": bound, "nested": bound, "body": bound,
		"range": native2, "with": native2, "rvar": native2, "var": bound, "ca": native2,
		"p": bound, "s": bound, // partials called with the page's data, directly or through another
		"c": neither, "pipe": neither, "ra": neither, "cb": neither, "cc": neither, "tw": neither,
	} {
		got, ok := native[at(what)]
		require.True(t, ok, "no block at %s among %v", at(what), native)
		assert.Equal(t, want, got, what)
	}
}

func TestNativeArgumentErrorsInsideBodies(t *testing.T) {
	// A nested block's argument failing reads as text/template's error in
	// the body's template, as it did when text/template evaluated it.
	src := "{{ cache 1 \"outer\" }}{{ cache 1 \"inner\" .Nope }}x{{ endcache }}{{ endcache }}"
	fc, _ := newCache(fragment.Options{})
	_, err := run(parseT(t, fc, "page.html", src, nil), nInner{})
	require.Error(t, err)
	assert.True(t, strings.HasSuffix(err.Error(), `executing "cache@page.html:1:3" at <.Nope>: can't evaluate field Nope in type htmltemplate.nInner`), err.Error())
	var ae *argError
	assert.False(t, errors.As(err, &ae), "the carrier does not leak out")
}

// TestNativeFastPath checks that plain field chains, map keys and missing
// keys under the default options are read without text/template, and
// that what needs it goes to text/template.
func TestNativeFastPath(t *testing.T) {
	tests := []struct {
		dot   any
		chain string
		opt   string
		fast  bool
	}{
		{nativeData(), ".A.B", "", true},
		{nativeData(), ".P.B", "", true},
		{nativeData(), ".I.B", "", true},
		{nativeData(), ".M.s", "", true},
		{nativeData(), ".M.inner.B", "", true},
		{nativeData(), ".M.missing", "", true},
		{nativeData(), ".M.missing.x", "", true},
		{nativeData(), ".Ints.two", "missingkey=zero", true},
		{nativeData(), ".Promoted", "", true},
		{*nativeData(), ".A.Map.k", "", true},
		{map[string]any{"U": "x"}, ".U", "", true},
		{nil, ".U", "", true}, // nil data: the invalid value, as text/template
		{nativeData(), ".M.missing", "missingkey=error", false},
		{nativeData(), ".A.Method", "", false},
		{nativeData(), ".Named.Get", "", false},
		{nativeData(), ".P.Ptr.B", "", false},
		{nativeData(), ".Deep", "", false},
		{nativeData(), ".lower", "", false},
		{nativeData(), ".ByInt.x", "", false},
		{(*nOuter)(nil), ".A", "", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%T%s %s", tc.dot, tc.chain, tc.opt), func(t *testing.T) {
			tpl := New("page.html", nil)
			if tc.opt != "" {
				tpl.Option(tc.opt)
			}
			_, err := tpl.Parse("{{ cache 1 \"n\" " + tc.chain + " }}x{{ endcache }}")
			require.NoError(t, err)
			tpl.set.finalize()
			b := tpl.set.blocks[0]
			require.True(t, b.bound)
			_, fast := b.native[0].fast(reflect.ValueOf(tc.dot))
			assert.Equal(t, tc.fast, fast)
		})
	}
}

// TestBoxStringReusesOnlyTheSameText: a string argument's interface value,
// reused while the text repeats (TestBoxStringRepeatsAllocateNothing), is
// a fresh one holding the new text when it changes; other types are never
// taken for strings.
func TestBoxStringReusesOnlyTheSameText(t *testing.T) {
	tpl := New("page.html", nil)
	_, err := tpl.Parse(`{{ cache 1 "n" .U }}x{{ endcache }}`)
	require.NoError(t, err)
	tpl.set.finalize()
	a := tpl.set.blocks[0].native[0]
	assert.Equal(t, "alice", a.eval(map[string]any{"U": "alice"}))
	again := a.eval(map[string]any{"U": strings.Clone("alice")})
	assert.Equal(t, "alice", again)
	assert.Equal(t, "bob", a.eval(map[string]any{"U": "bob"}))
	assert.Equal(t, "alice", a.eval(map[string]any{"U": "alice"}))
	assert.Equal(t, nKey("alice"), a.eval(map[string]any{"U": nKey("alice")}), "a named string type stays itself")
	assert.Equal(t, 7, a.eval(map[string]any{"U": 7}))
}

// A clone evaluates its bound blocks' arguments under the options it
// inherited, as text/template's clone does.
func TestCloneKeepsOptionsForBoundBlocks(t *testing.T) {
	src := `{{ cache 1 "n" .M.missing }}x{{ endcache }}`
	data := map[string]any{"M": map[string]any{}}
	tpl, err := New("page.html", nil).Option("missingkey=error").Parse(src)
	require.NoError(t, err)
	clone, err := tpl.Clone()
	require.NoError(t, err)
	_, err = run(clone, data)
	want := texttemplate.Must(texttemplate.New("page.html").Option("missingkey=error").Funcs(texttemplate.FuncMap{
		"cache": func(...any) string { return "" }, "endcache": func() string { return "" },
	}).Parse(src)).Execute(&bytes.Buffer{}, data)
	require.Error(t, want)
	require.Error(t, err)
	assert.Equal(t, want.Error(), err.Error())
	assert.True(t, clone.set.blocks[0].bound)
}

// TestDollarArgumentsKeyAsTextTemplateEvaluatesThem: a block varying on
// $.X keys by what $ is where it stands, the data or what the template
// assigned to $.
func TestDollarArgumentsKeyAsTextTemplateEvaluatesThem(t *testing.T) {
	ctx := context.Background()
	src := `{{ range .L }}{{ cache 1 "d" $.Name . }}x{{ endcache }}{{ end }}` +
		`{{ range .L }}{{ cache 1 "o" . }}{{ cache 1 "i" $.Name . }}z{{ endcache }}{{ endcache }}{{ end }}` +
		`{{ define "re" }}{{ $ = .U }}{{ range .L }}{{ cache 1 "r" $.Name . }}y{{ endcache }}{{ end }}{{ end }}`
	data := map[string]any{"Name": "data", "U": map[string]any{"Name": "assigned"}, "L": []string{"a"}}
	fc, _ := newCache(fragment.Options{})
	tpl := parseT(t, fc, "page.html", src, nil)
	_, err := run(tpl, data)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, tpl.ExecuteTemplate(&buf, "re", data))
	for key, want := range map[string]string{
		keys.MakeTemplateFragmentKey("d", "data", "a"):     "x",
		keys.MakeTemplateFragmentKey("r", "assigned", "a"): "y",
		keys.MakeTemplateFragmentKey("i", "data", "a"):     "z", // in a body, where $ is set back
	} {
		var got string
		found, err := fc.Store().Get(ctx, key, &got)
		require.NoError(t, err)
		require.True(t, found, "no fragment under %q", key)
		assert.Equal(t, want, got)
	}
}
