package enginebench

import (
	"bytes"
	"context"
	"fmt"
	htmpl "html/template"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/CloudyKit/jet/v6"
	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
	"github.com/fragcache/fragcache/jettag"
	"github.com/fragcache/fragcache/pongo2tag"
)

// The page of issue 17, Flask's anchor page (anchor_flask_fragments.py):
// pageFragments blocks `cache 300, "frag-K", user` (vary_on the user, a
// string) back to back, as the anchor joins them, each a loop over
// pageItems items printing the item's name and the user.
const (
	pageFragments = 10
	pageItems     = 50
)

// fragmentSizes are the sizes of the one-fragment pages.
var fragmentSizes = []int{100, 10 << 10, 1 << 20}

type item struct{ Name string }

var (
	items    = sync.OnceValue(func() []item { return makeItems() })
	theUser  = "alice"
	bigTexts sync.Map // size → string of that many bytes, safe in HTML
)

func makeItems() []item {
	out := make([]item, pageItems)
	for i := range out {
		out[i] = item{Name: "item-" + strconv.Itoa(i)}
	}
	return out
}

// bigText is a fragment of size bytes that no engine escapes.
func bigText(size int) string {
	if s, ok := bigTexts.Load(size); ok {
		return s.(string)
	}
	line := "fragment text that no engine escapes, the same in every engine\n"
	s := strings.Repeat(line, size/len(line)+1)[:size]
	bigTexts.Store(size, s)
	return s
}

// page is one engine's set of templates for one workload, each rendered
// into w as an application does: cached renders pass the request's context
// the way the engine's package documents, plain ones are the engine alone.
type page struct {
	fc *fragment.Cache
	// cached renders the template with cache blocks.
	cached func(w *bytes.Buffer) error
	// plain renders the same template without cache blocks (the bodies
	// inline), through the engine alone.
	plain func(w *bytes.Buffer) error
	// floor renders the template with each block replaced by the engine's
	// cheapest way to print the block's output as a constant.
	floor func(w *bytes.Buffer) error
	// store, where set, renders the template with each block replaced by
	// the engine's cheapest way to render the body and keep a copy of its
	// output: a function that renders it into a buffer, stores a copy in
	// a Go map under the block's key and prints the copy. It is the least
	// a miss (render and store) can cost in that engine. (pongo2's miss is
	// already cheaper than its plain page, so it has none.)
	store func(w *bytes.Buffer) error
}

type engine struct {
	name string
	// page builds the 10-fragment page.
	page func(tb testing.TB) *page
	// one builds a page of one block whose fragment is size bytes.
	one func(tb testing.TB, size int) *page
}

var engines = []engine{
	{"pongo2", pongo2Page, pongo2One},
	{"jet", jetPage, jetOne},
	{"htmltemplate", htmlPage, htmlOne},
}

func newFC() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
}

// repeat joins n copies of block(i) back to back, as the anchor page
// joins its blocks (a separator would be text the engine writes between
// blocks: pongo2 allocates for each text node it writes).
func repeat(n int, block func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(block(i))
	}
	return b.String()
}

// --- pongo2 ---

const pongo2Body = `<ul>{% for it in items %}<li>{{ it.Name }} {{ user }}</li>{% endfor %}</ul>`

// pongo2FloorTag prints pongo2FloorText[i], fixed at parse time: pongo2's
// cheapest constant.
const pongo2FloorTag = "enginebenchfloor"

var (
	pongo2Mu        sync.Mutex
	pongo2FloorText []string
	pongo2Register  = sync.OnceValue(func() error {
		if err := pongo2tag.Register(pongo2tag.Options{}); err != nil {
			return err
		}
		return pongo2.RegisterTag(pongo2FloorTag, func(_ *pongo2.Parser, _ *pongo2.Token, args *pongo2.Parser) (pongo2.INodeTag, *pongo2.Error) {
			t := args.MatchType(pongo2.TokenNumber)
			if t == nil {
				return nil, args.Error("floor index expected", nil)
			}
			i, _ := strconv.Atoi(t.Val)
			pongo2Mu.Lock()
			defer pongo2Mu.Unlock()
			return pongo2Floor(pongo2FloorText[i]), nil
		})
	})
)

// pongo2Floor writes precomputed bytes: WriteString would copy them into
// a []byte on the way to an io.Writer.
type pongo2Floor []byte

func (n pongo2Floor) Execute(_ *pongo2.ExecutionContext, w pongo2.TemplateWriter) *pongo2.Error {
	_, _ = w.Write(n)
	return nil
}

// pongo2FloorBlock registers text and returns the tag printing it.
func pongo2FloorBlock(text string) string {
	pongo2Mu.Lock()
	defer pongo2Mu.Unlock()
	pongo2FloorText = append(pongo2FloorText, text)
	return "{% " + pongo2FloorTag + " " + strconv.Itoa(len(pongo2FloorText)-1) + " %}"
}

// pongo2Sets numbers the sets: pongo2 wants a distinct name for each.
var pongo2Sets atomic.Int64

func pongo2Templates(tb testing.TB, fc *fragment.Cache, cachedSrc, plainSrc string, floorSrc func() string, data pongo2.Context) *page {
	tb.Helper()
	if err := pongo2Register(); err != nil {
		tb.Fatal(err)
	}
	id := pongo2Sets.Add(1)
	loader := pongo2.MustNewLocalFileSystemLoader("")
	// pongo2tag.Execute, the documented page entry point, binds fc and
	// the request's context for each render: the set needs no Bind.
	bound := pongo2.NewSet("enginebench-bound-"+strconv.FormatInt(id, 10), loader)
	alone := pongo2.NewSet("enginebench-alone-"+strconv.FormatInt(id, 10), loader)
	parse := func(set *pongo2.TemplateSet, src string) *pongo2.Template {
		tpl, err := set.FromString(src)
		if err != nil {
			tb.Fatal(err)
		}
		return tpl
	}
	cached, plain, floor := parse(bound, cachedSrc), parse(alone, plainSrc), parse(alone, floorSrc())
	ctx := context.Background()
	return &page{
		fc: fc,
		cached: func(w *bytes.Buffer) error {
			return pongo2tag.Execute(ctx, fc, cached, data, w)
		},
		plain: func(w *bytes.Buffer) error { return plain.ExecuteWriterUnbuffered(data, w) },
		floor: func(w *bytes.Buffer) error { return floor.ExecuteWriterUnbuffered(data, w) },
	}
}

func pongo2Page(tb testing.TB) *page {
	data := pongo2.Context{"items": items(), "user": theUser}
	cached := repeat(pageFragments, func(i int) string {
		return `{% cache 300, "frag-` + strconv.Itoa(i) + `", user %}` + pongo2Body + `{% endcache %}`
	})
	plain := repeat(pageFragments, func(int) string { return pongo2Body })
	floor := func() string {
		body, err := pongo2.FromString(pongo2Body)
		if err != nil {
			tb.Fatal(err)
		}
		text, err := body.Execute(data)
		if err != nil {
			tb.Fatal(err)
		}
		return repeat(pageFragments, func(int) string { return pongo2FloorBlock(text) })
	}
	return pongo2Templates(tb, newFC(), cached, plain, floor, data)
}

func pongo2One(tb testing.TB, size int) *page {
	data := pongo2.Context{"big": bigText(size)}
	return pongo2Templates(tb, newFC(),
		`{% cache 300, "big" %}{{ big|safe }}{% endcache %}`, `{{ big|safe }}`,
		func() string { return pongo2FloorBlock(bigText(size)) }, data)
}

// --- Jet ---

const jetBody = `<ul>{{ range _, it := items }}<li>{{ it.Name }} {{ user }}</li>{{ end }}</ul>`

func jetTemplates(tb testing.TB, fc *fragment.Cache, cachedSrc, plainSrc string, floorText []string, vars jet.VarMap) *page {
	tb.Helper()
	views := jet.NewInMemLoader()
	views.Set("/cached.jet", cachedSrc)
	views.Set("/plain.jet", plainSrc)
	var floorSrc strings.Builder
	for i := range floorText {
		fmt.Fprintf(&floorSrc, "{{ floor(%d) }}", i)
	}
	views.Set("/floor.jet", floorSrc.String())
	bound, err := jettag.New(fc, jettag.Options{}).NewSet("views", views)
	if err != nil {
		tb.Fatal(err)
	}
	alone := jet.NewSet(views)
	floorBytes := make([][]byte, len(floorText))
	for i, t := range floorText {
		floorBytes[i] = []byte(t)
	}
	// Jet's cheapest constant: a global function writing precomputed
	// bytes to the output.
	alone.AddGlobalFunc("floor", func(a jet.Arguments) reflect.Value {
		_, _ = a.Runtime().Writer.Write(floorBytes[int(a.Get(0).Float())])
		return reflect.Value{}
	})
	get := func(set *jet.Set, path string) *jet.Template {
		tpl, err := set.GetTemplate(path)
		if err != nil {
			tb.Fatal(err)
		}
		return tpl
	}
	cached, plain, floor := get(bound, "/cached.jet"), get(alone, "/plain.jet"), get(alone, "/floor.jet")
	ctx := context.Background()
	return &page{
		fc: fc,
		cached: func(w *bytes.Buffer) error {
			return cached.Execute(w, jettag.WithContext(vars, ctx), nil)
		},
		plain: func(w *bytes.Buffer) error { return plain.Execute(w, vars, nil) },
		floor: func(w *bytes.Buffer) error { return floor.Execute(w, vars, nil) },
	}
}

func jetPage(tb testing.TB) *page {
	vars := jet.VarMap{}.Set("items", items()).Set("user", theUser)
	cached := repeat(pageFragments, func(i int) string {
		return `{{ cache 300, "frag-` + strconv.Itoa(i) + `", user }}` + jetBody + `{{ endcache }}`
	})
	plain := repeat(pageFragments, func(int) string { return jetBody })
	one, err := jet.NewSet(jet.NewInMemLoader()).Parse("/one.jet", jetBody)
	if err != nil {
		tb.Fatal(err)
	}
	var text bytes.Buffer
	if err := one.Execute(&text, vars, nil); err != nil {
		tb.Fatal(err)
	}
	floor := make([]string, pageFragments)
	for i := range floor {
		floor[i] = text.String()
	}
	p := jetTemplates(tb, newFC(), cached, plain, floor, vars)
	p.store = jetStoreFloor(tb, vars)
	return p
}

// jetStoreFloor is the page's store variant (page.store): each block is a
// Jet block rendered by a global function into a buffer, as jettag renders
// a miss, and kept in a map.
func jetStoreFloor(tb testing.TB, vars jet.VarMap) func(w *bytes.Buffer) error {
	src := repeat(pageFragments, func(i int) string {
		n := strconv.Itoa(i)
		return `{{ if store(` + n + `, user) }}{{ block stored` + n + `() }}` + jetBody + `{{ end }}{{ end }}`
	})
	views := jet.NewInMemLoader()
	views.Set("/store.jet", src)
	set := jet.NewSet(views)
	blocks := make([]string, pageFragments)
	for i := range blocks {
		blocks[i] = "stored" + strconv.Itoa(i)
	}
	var (
		mu     sync.Mutex
		stored = map[string][]byte{}
		buf    bytes.Buffer
	)
	set.AddGlobalFunc("store", func(a jet.Arguments) reflect.Value {
		i, user := int(a.Get(0).Float()), a.Get(1).String()
		rt := a.Runtime()
		page := rt.Writer
		buf.Reset()
		rt.Writer = &buf
		rt.YieldBlock(blocks[i], nil)
		rt.Writer = page
		frag := bytes.Clone(buf.Bytes())
		mu.Lock()
		stored["frag-"+strconv.Itoa(i)+"_"+user] = frag
		mu.Unlock()
		_, _ = page.Write(frag)
		return reflect.ValueOf(false)
	})
	tpl, err := set.GetTemplate("/store.jet")
	if err != nil {
		tb.Fatal(err)
	}
	return func(w *bytes.Buffer) error { return tpl.Execute(w, vars, nil) }
}

func jetOne(tb testing.TB, size int) *page {
	vars := jet.VarMap{}.Set("big", bigText(size))
	return jetTemplates(tb, newFC(), `{{ cache 300, "big" }}{{ big | raw }}{{ endcache }}`,
		`{{ big | raw }}`, []string{bigText(size)}, vars)
}

// --- html/template ---

const htmlBody = `<ul>{{ range .Items }}<li>{{ .Name }} {{ $.User }}</li>{{ end }}</ul>`

type htmlData struct {
	Items []item
	User  string
	Big   string
}

func htmlTemplates(tb testing.TB, fc *fragment.Cache, cachedSrc, plainSrc string, floorText []string, data *htmlData) *page {
	tb.Helper()
	// html/template's cheapest constant: a function without arguments
	// returning a precomputed template.HTML.
	funcs := htmpl.FuncMap{}
	var floorSrc strings.Builder
	for i, t := range floorText {
		h := htmpl.HTML(t)
		funcs["floor"+strconv.Itoa(i)] = func() htmpl.HTML { return h }
		fmt.Fprintf(&floorSrc, "{{ floor%d }}", i)
	}
	cached, err := htmltemplate.New("cached", fc).Parse(cachedSrc)
	if err != nil {
		tb.Fatal(err)
	}
	plain := htmpl.Must(htmpl.New("plain").Parse(plainSrc))
	floor := htmpl.Must(htmpl.New("floor").Funcs(funcs).Parse(floorSrc.String()))
	ctx := context.Background()
	return &page{
		fc:     fc,
		cached: func(w *bytes.Buffer) error { return cached.ExecuteContext(ctx, w, data) },
		plain:  func(w *bytes.Buffer) error { return plain.Execute(w, data) },
		floor:  func(w *bytes.Buffer) error { return floor.Execute(w, data) },
	}
}

func htmlPage(tb testing.TB) *page {
	data := &htmlData{Items: items(), User: theUser}
	cached := repeat(pageFragments, func(i int) string {
		return `{{ cache 300 "frag-` + strconv.Itoa(i) + `" .User }}` + htmlBody + `{{ endcache }}`
	})
	plain := repeat(pageFragments, func(int) string { return htmlBody })
	var text bytes.Buffer
	if err := htmpl.Must(htmpl.New("one").Parse(htmlBody)).Execute(&text, data); err != nil {
		tb.Fatal(err)
	}
	floor := make([]string, pageFragments)
	for i := range floor {
		floor[i] = text.String()
	}
	p := htmlTemplates(tb, newFC(), cached, plain, floor, data)
	p.store = htmlStoreFloor(data)
	return p
}

// htmlStoreFloor is the page's store variant (page.store): each block is a
// function without arguments that executes the body, a template of its
// own, into a buffer, as htmltemplate renders a miss, keeps a copy in a
// map and returns it as template.HTML.
func htmlStoreFloor(data *htmlData) func(w *bytes.Buffer) error {
	body := htmpl.Must(htmpl.New("body").Parse(htmlBody))
	var (
		mu     sync.Mutex
		stored = map[string][]byte{}
		buf    bytes.Buffer
	)
	funcs := htmpl.FuncMap{}
	for i := range pageFragments {
		key := "frag-" + strconv.Itoa(i)
		funcs["store"+strconv.Itoa(i)] = func() (htmpl.HTML, error) {
			buf.Reset()
			if err := body.Execute(&buf, data); err != nil {
				return "", err
			}
			frag := bytes.Clone(buf.Bytes())
			mu.Lock()
			stored[key+"_"+data.User] = frag
			mu.Unlock()
			return htmpl.HTML(frag), nil
		}
	}
	src := repeat(pageFragments, func(i int) string { return "{{ store" + strconv.Itoa(i) + " }}" })
	tpl := htmpl.Must(htmpl.New("store").Funcs(funcs).Parse(src))
	return func(w *bytes.Buffer) error { return tpl.Execute(w, data) }
}

func htmlOne(tb testing.TB, size int) *page {
	data := &htmlData{Big: bigText(size)}
	return htmlTemplates(tb, newFC(), `{{ cache 300 "big" }}{{ .Big }}{{ endcache }}`,
		`{{ .Big }}`, []string{bigText(size)}, data)
}
