package fragment

import (
	"maps"
	"runtime"
	"slices"
	"testing"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// TestKeyHeadFollowsCacheAndName renders one site through three Caches
// that key differently, with names that change from call to call, in an
// order that leaves the site's kept key head (see Cache.appendKey) stale for
// every kind of call: each call stores under, and is served from, the key
// Cache.Key gives for its own Cache, name and vary_on values.
func TestKeyHeadFollowsCacheAndName(t *testing.T) {
	type cache struct {
		fc  *Cache
		spy *spyBackend
	}
	newCache := func(opts Options) cache {
		spy := newSpy()
		return cache{New(backends.New(spy, backends.CacheOptions{}), opts), spy}
	}
	caches := map[string]cache{
		"plain":       newCache(Options{}),
		"prefixed":    newCache(Options{KeyPrefix: "v2-"}),
		"unambiguous": newCache(Options{UnambiguousKeys: true}),
	}
	steps := []struct {
		cache, name string
		vary        []string
	}{
		{"plain", "sidebar", nil},
		{"plain", "menu", nil}, // another name at the same site
		{"prefixed", "sidebar", nil},
		{"plain", "sidebar", []string{"alice"}},
		{"unambiguous", "a_b", []string{"c"}},
		{"plain", "a_b", []string{"c"}},
		{"unambiguous", "sidebar", nil},
		{"prefixed", "menu", nil},
		{"plain", "menu", nil},
		{"plain", "sidebar", nil},
	}
	site := testSite()
	want := map[string]map[string]bool{} // cache → the keys it must hold
	for round := range 2 {               // the second round repeats every call
		for _, st := range steps {
			c := caches[st.cache]
			key := c.fc.Key(st.name, st.vary...)
			if want[st.cache] == nil {
				want[st.cache] = map[string]bool{}
			}
			want[st.cache][key] = true
			vary := make([]any, len(st.vary))
			for i, v := range st.vary {
				vary[i] = v
			}
			body, _ := countingBody(st.cache + "|" + key)
			out, err := render(c.fc, Call{Site: site, Timeout: 60, Name: st.name, VaryOn: vary}, body)
			require.NoError(t, err)
			assert.Equal(t, st.cache+"|"+key, out, "round %d, %s %q %q", round, st.cache, st.name, st.vary)
		}
	}
	for name, c := range caches {
		c.spy.mu.Lock()
		stored := slices.Sorted(maps.Keys(c.spy.ttls))
		c.spy.mu.Unlock()
		assert.Equal(t, slices.Sorted(maps.Keys(want[name])), stored, "keys %s stored", name)
		assert.Equal(t, uint64(len(want[name])), c.fc.Stats().Renders, "renders of %s: one per key", name)
	}
}

// TestKeyHeadDoesNotKeepTheCacheAlive drops a Cache after rendering a named
// block through it: the block's site, which outlives it (templates are
// parsed once), must not keep it, and its store, reachable.
func TestKeyHeadDoesNotKeepTheCacheAlive(t *testing.T) {
	site := testSite()
	fc, _ := newTestCache(Options{})
	body, _ := countingBody("x")
	_, err := render(fc, Call{Site: site, Timeout: 60, Name: "sidebar"}, body)
	require.NoError(t, err)
	gone := weak.Make(fc)
	fc = nil
	assert.True(t, collected(gone), "the site keeps the Cache alive")
	runtime.KeepAlive(site)
}

// collected reports whether the object p points to is garbage collected
// within a few collections.
func collected[T any](p weak.Pointer[T]) bool {
	for range 5 {
		runtime.GC()
		if p.Value() == nil {
			return true
		}
	}
	return false
}
