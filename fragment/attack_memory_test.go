package fragment

import (
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// TestAttackStaleCopiesBoundCountsKeys: StaleCopyBytes "bounds the
// fragments kept in memory", but the bound counts fragment bytes only. A
// block whose vary_on comes from the request (a search term, a page
// number, a path) and renders little or nothing is kept under a key the
// client chose, at a cost of zero: 2000 requests with 4 KiB terms keep
// about 8 MiB under a 4 KiB bound, and there is no limit at all.
func TestAttackStaleCopiesBoundCountsKeys(t *testing.T) {
	const (
		bound = 4 << 10
		n     = 2000
		term  = 4 << 10
	)
	c := New(backends.New(backends.NewNull(), backends.CacheOptions{}), Options{
		StaleWhileRevalidate: time.Minute,
		StaleCopyBytes:       bound,
	})
	site := testSite()
	empty := func(io.Writer) error { return nil }
	grew := testkit.Retained(func() {
		for i := range n {
			v := strings.Repeat("q", term-8) + strconv.Itoa(10000000+i)
			_, err := render(c, Call{Site: site, Timeout: 60, Name: "results", VaryOn: []any{v}}, empty)
			require.NoError(t, err)
		}
	})
	runtime.KeepAlive(c)
	t.Logf("retained %d KiB after %d renders (StaleCopyBytes %d KiB)", grew>>10, n, bound>>10)
	assert.Less(t, grew, int64(16*bound), "memory kept for stale copies should stay within a small multiple of StaleCopyBytes")
}

// TestAttackLastKeysOutliveTheirTemplates: blockKey remembers the last key
// of every *Site in a sync.Map that is never pruned. Sites are made when a
// template is parsed, so an app that parses templates per request
// (pongo2.FromString for user-edited or e-mail templates, Jet in
// development mode, html/template parsed per call) leaks one entry — the
// Site and its key — per parse, for the life of the process.
func TestAttackLastKeysOutliveTheirTemplates(t *testing.T) {
	const n = 5000
	c, _ := newTestCache(Options{})
	body, _ := countingBody("x")
	grew := testkit.Retained(func() {
		for i := range n {
			// A fresh parse of the same template: a new Site each time.
			site := &Site{Path: "emails/welcome-" + strings.Repeat("x", 200) + ".html", Line: 3, Col: 1}
			_, err := render(c, Call{Site: site, Timeout: 60, Name: "footer-" + strconv.Itoa(i%2)}, body)
			require.NoError(t, err)
		}
	})
	runtime.KeepAlive(c)
	t.Logf("retained %d KiB after %d renders of freshly parsed sites", grew>>10, n)
	assert.Less(t, grew, int64(256<<10), "sites that are no longer reachable should not be kept alive by the cache")
}
