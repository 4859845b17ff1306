package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chromiumNames are the executables the browser test looks for, in
// order; FRAGCACHE_CHROMIUM names another.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// browser starts a headless Chromium for one test and returns a chromedp
// context on a tab of it, bounded by a generous deadline (a loaded machine
// starts a browser slowly; a hung test must still end). Without Chromium
// the test is skipped, or fails under FRAGCACHE_REQUIRE_SERVERS=1, as the
// server tests do: `make test` installs it (.ci/install-test-deps.sh).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("FRAGCACHE_CHROMIUM")
	for _, name := range chromiumNames {
		if path != "" {
			break
		}
		path, _ = exec.LookPath(name)
	}
	if path == "" {
		msg := "no Chromium (looked for " + strings.Join(chromiumNames, ", ") + " and $FRAGCACHE_CHROMIUM); `make test` installs it"
		if os.Getenv("FRAGCACHE_REQUIRE_SERVERS") == "1" {
			t.Fatal(msg + " (FRAGCACHE_REQUIRE_SERVERS=1)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Only these flags: quiet, no network of its own, a fresh profile.
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(bctx), "starting %s", path)
	return bctx
}

// shownFragment is what the browser sees of one fragment.
type shownFragment struct {
	Cache    string `json:"cache"`    // the badge's state: "hit", "miss"…
	Rendered string `json:"rendered"` // the "rendered at" line
}

// readFragments returns every fragment on the current page, by name.
const readFragments = `Object.fromEntries([...document.querySelectorAll("[data-fragment]")].map(e =>
	[e.dataset.fragment, {cache: e.dataset.cache, rendered: e.querySelector(".rendered").textContent}]))`

// read returns every fragment on the current page.
func read(t *testing.T, ctx context.Context) map[string]shownFragment {
	t.Helper()
	m, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]shownFragment](readFragments))
	require.NoError(t, err)
	return m
}

func TestBrowserInvalidateRerendersExactlyThatFragment(t *testing.T) {
	s := startSite(t, nil)
	ctx := browser(t) // closed before the site stops (cleanups run last first)
	for _, e := range engineNames(t) {
		t.Run(e, func(t *testing.T) {
			home := s.base + "/" + e + "/"
			load := func() map[string]shownFragment {
				t.Helper()
				require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(home)))
				return read(t, ctx)
			}
			cold := load()
			warm := load()
			sidebar := e + "-sidebar"
			require.Contains(t, warm, sidebar)
			require.Greater(t, len(warm), 1, "the page has other fragments than the sidebar")
			for name, f := range cold {
				assert.Equal(t, "miss", f.Cache, "%s on the cold page", name)
			}
			for name, f := range warm {
				assert.Equal(t, "hit", f.Cache, "%s on the warm page", name)
				assert.Equal(t, cold[name].Rendered, f.Rendered, "%s served as rendered", name)
			}

			// Chromium renders timestamps to the millisecond: wait until
			// a re-render would print a different one.
			time.Sleep(5 * time.Millisecond)
			require.NoError(t, chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`button[name="fragment"][value="sidebar"]`)),
				chromedp.WaitVisible(chromedp.CSS(`.flash`)),
			))
			after := read(t, ctx)
			require.Equal(t, keysOf(warm), keysOf(after), "the same fragments after the redirect")
			for name, f := range after {
				if name == sidebar {
					assert.Equal(t, "miss", f.Cache, "the invalidated fragment is rendered again")
					assert.NotEqual(t, warm[name].Rendered, f.Rendered, "with a new timestamp")
					continue
				}
				assert.Equal(t, "hit", f.Cache, "%s is untouched", name)
				assert.Equal(t, warm[name].Rendered, f.Rendered, "%s is untouched", name)
			}
		})
	}
}

func TestBrowserShowsXCacheOfTheHTTPCachePage(t *testing.T) {
	s := startSite(t, nil)
	ctx := browser(t) // closed before the site stops (cleanups run last first)
	fetchOnce := func() (xcache string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(s.base+"/httpcache"),
			chromedp.Click(chromedp.CSS(`#fetch`)),
		))
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("xcache").textContent !== "–"`))
		require.NoError(t, err)
		xcache, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#xcache`)))
		require.NoError(t, err)
		return xcache
	}
	assert.Equal(t, "MISS", fetchOnce())
	assert.Equal(t, "HIT", fetchOnce())
}

func keysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
