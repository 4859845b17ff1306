package fragment

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unsafe"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// headlessKey is the key call's block has when its site keeps no key
// head: the key built from scratch, as before sites kept heads.
func headlessKey(c *Cache, call Call) (string, error) {
	call.Site = &Site{Path: call.Site.Path, Line: call.Site.Line, Col: call.Site.Col, Digest: call.Site.Digest}
	b, err := c.appendKey(nil, call)
	return string(b), err
}

// headedKeyNamed is a named string type: its text form is its string's,
// but it is not a string.
type headedKeyNamed string

// headedKeyStringer is a fmt.Stringer naming a block.
type headedKeyStringer struct{ s string }

func (s headedKeyStringer) String() string { return s.s }

// TestAttackKeyHeadNeverGivesAnotherKey renders the same sites through
// Caches that key differently (prefixes, versions, unambiguous keys,
// source digests, stale-while-revalidate, batched pages), alternating and
// concurrently, with names of every type and value that share a text form
// or escape, nil and empty names, vary_on values, "del" timeouts, Render
// and Fragment, and keys around the stack buffer's length: every call
// uses, and is served from, the key built from scratch, which is
// Cache.Key's for a string name.
func TestAttackKeyHeadNeverGivesAnotherKey(t *testing.T) {
	long := strings.Repeat("n_%", 45) // past keyBufLen once escaped or prefixed
	optionSets := []Options{
		{},
		{KeyPrefix: "p-"},
		{KeyPrefix: "p-", Version: "7"},
		{UnambiguousKeys: true},
		{UnambiguousKeys: true, SourceDigest: true, KeyPrefix: "u_"},
		{SourceDigest: true},
		{StaleWhileRevalidate: 60e9},
		{Batch: BatchOn, UnambiguousKeys: true},
	}
	caches := make([]*Cache, len(optionSets))
	for i, o := range optionSets {
		caches[i] = New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), o)
	}
	sites := []*Site{
		{Path: "shop/index.html", Line: 12, Col: 3, Digest: "d_1"},
		{Path: "a_b%c.html", Line: 1, Col: 1},
	}
	names := []any{"sidebar", headedKeyNamed("sidebar"), []byte("sidebar"), headedKeyStringer{"sidebar"},
		"a_b", "a", "", nil, "%5F", long, long + "x", headedKeyNamed("a_b"), 7}
	varies := [][]any{nil, {"b"}, {"_b"}, {""}, {long}}

	ctx := context.Background()
	run := func(seed int) error {
		for i := range 400 {
			k := i*7 + seed*13
			c := caches[k%len(caches)]
			site := sites[(k/3)%len(sites)]
			call := Call{Site: site, Timeout: 60, Name: names[(k/5)%len(names)], VaryOn: varies[(k/11)%len(varies)]}
			if site.Path == "a_b%c.html" && call.Name == nil && !c.opts.UnambiguousKeys {
				call.Name = "unnamed-elsewhere"
			}
			want, err := headlessKey(c, call)
			if err != nil {
				return err
			}
			if s, ok := call.Name.(string); ok {
				vary := make([]string, len(call.VaryOn))
				for j, v := range call.VaryOn {
					vary[j] = v.(string)
				}
				if want != c.Key(s, vary...) {
					return fmt.Errorf("headless key %q is not Key's %q", want, c.Key(s, vary...))
				}
			}
			got, err := c.blockKey(call)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("call %d through cache %d (%+v), %T %v vary %q: key %q, want %q", i, k%len(caches), optionSets[k%len(caches)], call.Name, call.Name, call.VaryOn, got, want)
			}
			body, _ := countingBody(want)
			var out string
			switch {
			case k%17 == 0:
				call.Timeout = "del"
				_, err = c.Fragment(ctx, call, body)
				// (Concurrently, another goroutine may store the key again
				// right after the delete.)
				if err == nil && seed == 0 {
					var v backends.Value
					v, err = c.Store().GetValue(ctx, want)
					if err == nil && v.Found() {
						err = fmt.Errorf("del left %q stored", want)
					}
				}
				if err != nil {
					return err
				}
				continue
			case k%2 == 0:
				var f []byte
				f, err = c.Fragment(ctx, call, body)
				out = string(f)
			default:
				err = c.Page(ctx, &strings.Builder{}, nil, func(ctx context.Context, w io.Writer) error {
					var b strings.Builder
					if err := c.Render(ctx, call, &b, body); err != nil {
						return err
					}
					out = b.String()
					return nil
				})
			}
			if err != nil {
				return err
			}
			if out != want {
				return fmt.Errorf("call %d: served %q's fragment, want %q's", i, out, want)
			}
		}
		return nil
	}
	require.NoError(t, run(0), "alternating")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() { errs[g] = run(g + 1) })
	}
	wg.Wait()
	for g, err := range errs {
		require.NoError(t, err, "goroutine %d", g)
	}
}

// TestAttackKeyHeadOfACollectedCache: a site keeps the head of a Cache that
// is then collected; Caches made afterwards (likely at its address) with
// another prefix never take that head for their own.
func TestAttackKeyHeadOfACollectedCache(t *testing.T) {
	site := testSite()
	ctx := context.Background()
	for round := range 20 {
		old := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{KeyPrefix: "old-"})
		_, err := old.Fragment(ctx, Call{Site: site, Timeout: 60, Name: "sidebar"}, func(w io.Writer) error { return nil })
		require.NoError(t, err)
		gone := weak.Make(old)
		old = nil
		require.True(t, collected(gone))
		for range 50 {
			c := New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), Options{KeyPrefix: fmt.Sprintf("new%d-", round)})
			got, err := c.blockKey(Call{Site: site, Timeout: 60, Name: "sidebar"})
			require.NoError(t, err)
			assert.Equal(t, c.Key("sidebar"), got)
		}
	}
}

// TestAttackKeyHeadOfACopiedSite: a Site copied after it kept a head keys
// through any Cache as the original would.
func TestAttackKeyHeadOfACopiedSite(t *testing.T) {
	a, _ := newTestCache(Options{KeyPrefix: "a-"})
	b, _ := newTestCache(Options{UnambiguousKeys: true})
	site := testSite()
	_, err := a.blockKey(Call{Site: site, Name: "x_y"})
	require.NoError(t, err)
	cp := *site
	for _, c := range []*Cache{a, b, a} {
		for _, name := range []string{"x_y", "z"} {
			got, err := c.blockKey(Call{Site: &cp, Name: name, VaryOn: []any{"v"}})
			require.NoError(t, err)
			assert.Equal(t, c.Key(name, "v"), got)
		}
	}
}

// TestAttackKeyHeadDoesNotKeepTheNamesMemory: a block's first string name
// may be a slice of a far larger string (a path segment, a field split out
// of a document). The site keeps its head for as long as the template
// lives, so the head must keep a copy of the name, not the larger string.
func TestAttackKeyHeadDoesNotKeepTheNamesMemory(t *testing.T) {
	c, _ := newTestCache(Options{})
	site := testSite()
	big := strings.Repeat("x", 8<<20)
	gone := weak.Make(unsafe.StringData(big))
	name := big[:8]
	out, err := c.Fragment(context.Background(), Call{Site: site, Timeout: 60, Name: name}, func(w io.Writer) error {
		_, err := io.WriteString(w, "f")
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, "f", string(out))
	big, name = "", ""
	assert.True(t, collected(gone), "the site's key head keeps the string its name was sliced from")
	runtime.KeepAlive(site)
	runtime.KeepAlive(c)
	_, _ = big, name
}

// TestAttackKeyHeadOfSeveralCachesAllocatesNothing: a site rendered
// through two Caches in turn (pongo2 binds one per render: a tenant's,
// a test's) hits without allocating, as it did before sites kept heads,
// rather than building and storing a new head on every call.
func TestAttackKeyHeadOfSeveralCachesAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestCache(Options{})
	b, _ := newTestCache(Options{KeyPrefix: "b-", UnambiguousKeys: true})
	site := testSite()
	for _, vary := range [][]any{nil, {"alice"}} {
		body, runs := countingBody("f")
		for _, c := range []*Cache{a, b} {
			_, err := c.Fragment(ctx, Call{Site: site, Timeout: 60, Name: "side_bar", VaryOn: vary}, body)
			require.NoError(t, err)
		}
		i := 0
		allocs := testing.AllocsPerRun(100, func() {
			c := a
			if i++; i%2 == 0 {
				c = b
			}
			if _, err := c.Fragment(ctx, Call{Site: site, Timeout: 60, Name: "side_bar", VaryOn: vary}, body); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "a hit through alternating Caches, vary_on %q", vary)
		assert.EqualValues(t, 2, runs.Load(), "every call after the first of each Cache hit")
		for _, c := range []*Cache{a, b} {
			got, err := c.blockKey(Call{Site: site, Name: "side_bar", VaryOn: vary})
			require.NoError(t, err)
			want := c.Key("side_bar")
			if vary != nil {
				want = c.Key("side_bar", "alice")
			}
			assert.Equal(t, want, got)
		}
	}
}
