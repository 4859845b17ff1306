package main

import (
	"context"
	"encoding/json"
	"flag"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// testDelay keeps the slow data source slow enough to be a data source
// and fast enough for the suite.
const testDelay = "1ms"

// site is one running server, driven over HTTP.
type site struct {
	t      *testing.T
	base   string // "http://127.0.0.1:port"
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startSite runs the command as main does, on a free loopback port, with
// the given environment and extra flags, and stops it when the test ends.
func startSite(t *testing.T, environ []string, args ...string) *site {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-delay", testDelay}, args...)
	go func() { done <- run(ctx, args, environ, t.Output(), func(a string) { addrs <- a }) }()

	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		cancel()
		t.Fatalf("site did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("site did not start within 10 s")
	}
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	s := &site{t: t, base: "http://" + addr, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}, cancel: cancel, done: done}
	t.Cleanup(func() { s.stop() })
	return s
}

// stop shuts the server down and checks that it stopped cleanly.
func (s *site) stop() {
	s.t.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			assert.NoError(s.t, err, "run after shutdown")
			close(s.done)
		}
	case <-time.After(10 * time.Second):
		s.t.Error("site did not shut down within 10 s")
	}
}

// get fetches a page and returns its status and body.
func (s *site) get(path string) (int, string) {
	s.t.Helper()
	resp, err := s.client.Get(s.base + path)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(body)
}

// page fetches a page that must exist.
func (s *site) page(path string) string {
	s.t.Helper()
	code, body := s.get(path)
	require.Equal(s.t, http.StatusOK, code, "GET %s: %s", path, body)
	return body
}

// post submits a form, following the redirect as a browser does.
func (s *site) post(path string, form url.Values) (int, string) {
	s.t.Helper()
	resp, err := s.client.PostForm(s.base+path, form)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(body)
}

// stats returns GET /stats.
func (s *site) stats() statsJSON {
	s.t.Helper()
	var st statsJSON
	require.NoError(s.t, json.Unmarshal([]byte(s.page("/stats")), &st))
	return st
}

// engineNames returns the name of every engine the site serves.
func engineNames(t *testing.T) []string {
	t.Helper()
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
	var names []string
	for _, f := range engineFactories {
		e, err := f(fc)
		require.NoError(t, err)
		names = append(names, e.Name())
	}
	return names
}

// fragments counts the cache blocks a page rendered: every block of every
// template wraps its output in one element of class "fragment".
func fragments(body string) uint64 {
	return uint64(strings.Count(body, `class="fragment"`))
}

var statCell = regexp.MustCompile(`id="(stat-[a-z-]+|render-time)">([^<]*)<`)

// shownStats returns the counters a page shows, by their element IDs.
func shownStats(t *testing.T, body string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range statCell.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestEveryPageOfEveryEngineShowsItsProducts(t *testing.T) {
	s := startSite(t, nil)
	type page struct {
		path string
		want []string // text the page must show, unescaped
	}
	var pages []page
	for _, e := range engineNames(t) {
		var all []string
		for _, p := range products {
			all = append(all, p.Name)
		}
		pages = append(pages, page{"/" + e + "/", all})
		for _, c := range categories {
			var in []string
			for _, p := range products {
				if p.Category == c.Slug {
					in = append(in, p.Name)
				}
			}
			pages = append(pages, page{"/" + e + "/?category=" + c.Slug, append(in, c.Name)})
		}
		for _, p := range products {
			want := []string{p.Name, p.Description, p.Price()}
			for _, r := range reviews[p.ID] {
				want = append(want, r.Text)
			}
			pages = append(pages, page{"/" + e + "/product/" + strconv.Itoa(p.ID), want})
		}
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			for _, round := range []string{"cold", "warm"} {
				text := html.UnescapeString(s.page(p.path))
				for _, w := range p.want {
					assert.Contains(t, text, w, "%s render", round)
				}
			}
		})
	}
}

func TestPagesLinkToTheSamePageInEveryEngine(t *testing.T) {
	s := startSite(t, nil)
	names := engineNames(t)
	for _, e := range names {
		for _, rest := range []string{"/", "/?category=garden", "/product/2"} {
			body := s.page("/" + e + rest)
			for _, other := range names {
				href := html.EscapeString("/" + other + rest)
				assert.Contains(t, body, `href="`+href+`"`, "/%s%s links to %s", e, rest, other)
			}
		}
	}
}

func TestSecondRequestIsServedFromTheCache(t *testing.T) {
	for _, e := range engineNames(t) {
		for _, path := range []string{"/" + e + "/", "/" + e + "/product/1"} {
			t.Run(path, func(t *testing.T) {
				s := startSite(t, nil)
				cold := s.page(path)
				blocks := fragments(cold)
				require.NotZero(t, blocks, "the page has cache blocks")
				before := s.stats()
				assert.Equal(t, blocks, before.Misses, "a cold page misses every block")
				assert.Equal(t, blocks, before.Renders, "and renders each once")
				assert.Zero(t, before.Hits)

				warm := s.page(path)
				after := s.stats()
				assert.Equal(t, before.Hits+blocks, after.Hits, "every block hits")
				assert.Equal(t, before.Renders, after.Renders, "no block renders")
				assert.Equal(t, before.Misses, after.Misses)
				assert.Equal(t, before.Queries, after.Queries, "no slow query runs")
				assert.Equal(t, stripVolatile(cold), stripVolatile(warm), "cached output is the rendered output")
				require.Len(t, badges(cold), int(blocks), "every fragment has a badge")
				assert.Equal(t, allBadges(cold, "miss"), badges(cold), "the cold page shows MISS on every fragment")
				assert.Equal(t, allBadges(warm, "hit"), badges(warm), "the warm page shows HIT on every fragment")
			})
		}
	}
}

func TestConcurrentColdRequestsRenderEachFragmentOnce(t *testing.T) {
	const clients = 16
	for _, e := range engineNames(t) {
		t.Run(e, func(t *testing.T) {
			// Slow enough that the requests overlap, though the test
			// holds however they interleave.
			s := startSite(t, nil, "-delay", "20ms")
			path := "/" + e + "/"
			bodies := make(chan string, clients)
			var wg sync.WaitGroup
			for range clients {
				wg.Go(func() {
					resp, err := s.client.Get(s.base + path)
					if !assert.NoError(t, err) {
						bodies <- ""
						return
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					assert.NoError(t, err)
					assert.Equal(t, http.StatusOK, resp.StatusCode)
					bodies <- string(b)
				})
			}
			wg.Wait()
			close(bodies)
			first := stripVolatile(<-bodies)
			for b := range bodies {
				assert.Equal(t, first, stripVolatile(b), "every client gets the same page")
			}
			st := s.stats()
			t.Logf("after %d concurrent cold requests: %+v", clients, st.Stats)
			blocks := fragments(first)
			assert.Equal(t, blocks, st.Renders, "each fragment rendered once")
			assert.Equal(t, st.Renders+st.Waits, st.Misses, "every other miss waited for that render")
			assert.Equal(t, clients*blocks, st.Hits+st.Misses)
		})
	}
}

// stripVolatile removes what differs between two renders of a page other
// than through the cache: the counters and the render time.
func stripVolatile(body string) string {
	return badgeRe.ReplaceAllString(statCell.ReplaceAllString(body, `id="$1"><`), `data-fragment="$1">`)
}

// badgeRe matches the HIT/MISS badge the server adds to each fragment.
var badgeRe = regexp.MustCompile(`data-fragment="([a-z0-9-]+)" data-cache="([a-z_]+)"><span class="cache-badge">[A-Z ]+</span>`)

// badges returns each fragment's badge state ("hit", "miss"…), by name.
func badges(body string) map[string]string {
	out := map[string]string{}
	for _, m := range badgeRe.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// allBadges returns a map giving every fragment of body the state want.
func allBadges(body, want string) map[string]string {
	out := map[string]string{}
	for name := range badges(body) {
		out[name] = want
	}
	return out
}

func TestPagesShowTheStatsAndRenderTime(t *testing.T) {
	s := startSite(t, nil)
	for _, e := range engineNames(t) {
		t.Run(e, func(t *testing.T) {
			body := s.page("/" + e + "/")
			shown := shownStats(t, body)
			// Nothing else runs, so the counters after the request are
			// those the end of the page saw.
			st := s.stats()
			want := map[string]uint64{
				"stat-hits": st.Hits, "stat-misses": st.Misses, "stat-renders": st.Renders,
				"stat-waits": st.Waits, "stat-invalidated": st.Invalidated, "stat-backend-errors": st.BackendErrors,
				"stat-queries": st.Queries,
			}
			for id, n := range want {
				assert.Equal(t, strconv.FormatUint(n, 10), shown[id], id)
			}
			ms, ok := strings.CutSuffix(shown["render-time"], " ms")
			require.True(t, ok, "render time %q is in ms", shown["render-time"])
			_, err := strconv.ParseFloat(ms, 64)
			assert.NoError(t, err, "render time %q", shown["render-time"])
			assert.Contains(t, body, "SimpleCache", "the page names the backend")
		})
	}
}

func TestInvalidateDeletesTheFragmentTheTemplateStored(t *testing.T) {
	names := engineNames(t)
	tests := []struct {
		group string
		extra url.Values
		warm  func(e string) []string // pages holding the group's fragments
	}{
		{"sidebar", nil, func(e string) []string { return []string{"/" + e + "/"} }},
		{"products", nil, func(e string) []string { return []string{"/" + e + "/", "/" + e + "/?category=books"} }},
		{"product", url.Values{"id": {"6"}}, func(e string) []string { return []string{"/" + e + "/product/6"} }},
	}
	for _, tt := range tests {
		t.Run(tt.group, func(t *testing.T) {
			s := startSite(t, nil)
			var pages []string
			for _, e := range names {
				pages = append(pages, tt.warm(e)...)
			}
			for _, p := range pages {
				assert.Contains(t, s.page(p), `<button name="fragment" value="`+tt.group+`">`, "%s has the button", p)
			}
			before := s.stats()

			form := url.Values{"fragment": {tt.group}, "return": {pages[0]}}
			for k, v := range tt.extra {
				form[k] = v
			}
			code, body := s.post("/invalidate", form)
			require.Equal(t, http.StatusOK, code, body)
			// Every page warmed one fragment of the group.
			assert.Contains(t, body, strconv.Itoa(len(pages))+" stored fragment(s) deleted")
			assert.NotContains(t, body, "invalidated=", "links and forms lead back without the notice")

			// The redirect rendered pages[0]; then render the rest.
			for _, p := range pages[1:] {
				s.page(p)
			}
			after := s.stats()
			var blocks uint64
			for _, p := range pages {
				blocks += fragments(s.page(p)) // a third render, all hits
			}
			final := s.stats()
			require.Equal(t, blocks, final.Hits-after.Hits, "the third renders hit")

			n := uint64(len(pages))
			assert.Equal(t, before.Renders+n, after.Renders, "each deleted fragment renders again, nothing else")
			assert.Equal(t, before.Misses+n, after.Misses)
			assert.Equal(t, before.Hits+blocks-n, after.Hits, "every other block hits")
		})
	}
}

func TestSwitchingUserRendersTheirOwnFragment(t *testing.T) {
	s := startSite(t, nil)
	for _, e := range engineNames(t) {
		t.Run(e, func(t *testing.T) {
			home := "/" + e + "/"
			for _, u := range s.shopUsers() {
				code, body := s.post("/signin", url.Values{"user": {u.Name}, "return": {home}})
				require.Equal(t, http.StatusOK, code)
				text := html.UnescapeString(body)
				assert.Contains(t, text, "Recommended for "+u.Name)
				for _, p := range (&Shop{}).Recommended(context.Background(), u.ID) {
					assert.Contains(t, text, p.Name, "recommended to %s", u.Name)
				}
				assert.Contains(t, text, "for user "+strconv.Itoa(u.ID)+" rendered", "the fragment is %s's", u.Name)
			}
		})
	}
}

func (s *site) shopUsers() []User {
	s.t.Helper()
	us := (&Shop{}).Users()
	require.GreaterOrEqual(s.t, len(us), 2, "the demo needs two users to vary on")
	return us
}

func TestHostileProductNameIsEscapedByEveryEngine(t *testing.T) {
	s := startSite(t, nil)
	var hostile Product
	for _, p := range products {
		if p.Name == hostileName {
			hostile = p
		}
	}
	require.NotZero(t, hostile.ID, "the catalogue has the hostile product")
	require.Contains(t, hostile.Name, "<script>")
	for _, e := range engineNames(t) {
		for _, path := range []string{"/" + e + "/", "/" + e + "/?category=" + hostile.Category, "/" + e + "/product/" + strconv.Itoa(hostile.ID)} {
			t.Run(path, func(t *testing.T) {
				for _, round := range []string{"cold", "warm"} {
					body := s.page(path)
					assert.NotContains(t, body, "<script", "%s render", round)
					assert.NotContains(t, body, "<b>", "%s render: review text is escaped", round)
					assert.Contains(t, body, "&lt;script&gt;", "%s render", round)
					assert.Contains(t, html.UnescapeString(body), hostile.Name, "%s render", round)
				}
			})
		}
	}
}

func TestBadRequests(t *testing.T) {
	s := startSite(t, nil)
	e := engineNames(t)[0]
	tests := []struct {
		name   string
		method string
		path   string
		form   url.Values
		want   int
	}{
		{"unknown product", "GET", "/" + e + "/product/999", nil, http.StatusNotFound},
		{"product ID not a number", "GET", "/" + e + "/product/abc", nil, http.StatusNotFound},
		{"unknown category", "GET", "/" + e + "/?category=nope", nil, http.StatusNotFound},
		{"unknown engine", "GET", "/mustache/", nil, http.StatusNotFound},
		{"invalidate unknown group", "POST", "/invalidate", url.Values{"fragment": {"header"}}, http.StatusBadRequest},
		{"invalidate product without ID", "POST", "/invalidate", url.Values{"fragment": {"product"}}, http.StatusBadRequest},
		{"invalidate unknown product", "POST", "/invalidate", url.Values{"fragment": {"product"}, "id": {"999"}}, http.StatusBadRequest},
		{"invalidate by GET", "GET", "/invalidate", nil, http.StatusMethodNotAllowed},
		{"sign in as nobody", "POST", "/signin", url.Values{"user": {"mallory"}}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			if tt.method == "POST" {
				code, _ = s.post(tt.path, tt.form)
			} else {
				code, _ = s.get(tt.path)
			}
			assert.Equal(t, tt.want, code)
		})
	}
}

func TestFormsOnlyRedirectWithinTheSite(t *testing.T) {
	s := startSite(t, nil)
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	tests := []struct {
		ret, want string
	}{
		{"/jet/?category=books", "/jet/?category=books&deleted=0&invalidated=sidebar"},
		{"https://evil.example/x", "/?deleted=0&invalidated=sidebar"},
		{"//evil.example/x", "/?deleted=0&invalidated=sidebar"},
		{"", "/?deleted=0&invalidated=sidebar"},
		{"/html/?deleted=99&invalidated=products", "/html/?deleted=0&invalidated=sidebar"},
	}
	for _, tt := range tests {
		t.Run(tt.ret, func(t *testing.T) {
			resp, err := noFollow.PostForm(s.base+"/invalidate", url.Values{"fragment": {"sidebar"}, "return": {tt.ret}})
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
			assert.Equal(t, tt.want, resp.Header.Get("Location"))
		})
	}
}

func TestRootRedirectsToTheFirstEngine(t *testing.T) {
	s := startSite(t, nil)
	resp, err := s.client.Get(s.base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "/"+engineNames(t)[0]+"/", resp.Request.URL.Path)
}

func TestCacheBackendFromTheEnvironment(t *testing.T) {
	tests := []struct {
		name     string
		environ  []string
		backend  string
		warmHits bool // whether a second request hits
	}{
		{"default is SimpleCache, not Flask's null", []string{"PATH=/bin", "HOME=/root"}, "SimpleCache", true},
		{"SimpleCache", []string{"CACHE_TYPE=SimpleCache", "CACHE_THRESHOLD=10"}, "SimpleCache", true},
		{"FileSystemCache", []string{"CACHE_TYPE=FileSystemCache", "CACHE_DIR=" + t.TempDir()}, "FileSystemCache", true},
		{"NullCache caches nothing", []string{"CACHE_TYPE=NullCache", "CACHE_NO_NULL_WARNING=true"}, "NullCache", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startSite(t, tt.environ)
			path := "/" + engineNames(t)[0] + "/"
			blocks := fragments(s.page(path))
			s.page(path)
			st := s.stats()
			assert.Equal(t, tt.backend, st.Backend)
			if tt.warmHits {
				assert.Equal(t, blocks, st.Hits)
				assert.Equal(t, blocks, st.Renders)
			} else {
				assert.Zero(t, st.Hits)
				assert.Equal(t, 2*blocks, st.Renders)
			}
		})
	}
}

func TestStartupErrorsNameWhatIsWrong(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		environ  []string
		sentinel error
		mentions []string
	}{
		{"unknown CACHE_TYPE", nil, []string{"CACHE_TYPE=Memcachd"}, backends.ErrUnknownBackend, []string{"CACHE_TYPE", `"Memcachd"`, "SimpleCache"}},
		{"empty CACHE_TYPE", nil, []string{"CACHE_TYPE="}, backends.ErrUnknownBackend, []string{"CACHE_TYPE", `""`}},
		// A misspelt CACHE_* name is ignored (logged at debug), as FromEnv ignores every variable it does
		// not own; a known one holding a Kubernetes service link is an error.
		{"service link in a setting", nil, []string{"CACHE_TYPE=SimpleCache", "CACHE_REDIS_PORT=tcp://10.0.0.5:6379"}, backends.ErrConfig, []string{"CACHE_REDIS_PORT"}},
		{"bad setting value", nil, []string{"CACHE_DEFAULT_TIMEOUT=soon"}, backends.ErrConfig, []string{"CACHE_DEFAULT_TIMEOUT", "soon"}},
		{"backend needs a setting", nil, []string{"CACHE_TYPE=FileSystemCache"}, backends.ErrConfig, []string{"CACHE_DIR"}},
		{"unknown flag", []string{"-port", "80"}, nil, nil, []string{"-port"}},
		{"negative delay", []string{"-delay", "-1s"}, nil, nil, []string{"-delay", "negative"}},
		{"stray argument", []string{"serve"}, nil, nil, []string{"serve"}},
		{"address in use or bad", []string{"-addr", "127.0.0.1:notaport"}, nil, nil, []string{"notaport"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			started := false
			err := run(ctx, tt.args, tt.environ, io.Discard, func(string) { started = true; cancel() })
			require.Error(t, err)
			assert.False(t, started, "the server must not start")
			if tt.sentinel != nil {
				assert.ErrorIs(t, err, tt.sentinel)
			}
			for _, m := range tt.mentions {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-h"}, nil, &out, nil)
	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out.String(), "-delay")
	assert.Contains(t, out.String(), "CACHE_")
}

func TestShutdownLetsRequestsInFlightFinish(t *testing.T) {
	// A slow source, so that the request is still running when the
	// server is told to stop.
	s := startSite(t, nil, "-delay", "100ms")
	type result struct {
		code int
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := s.client.Get(s.base + "/" + engineNames(t)[0] + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, string(b), err}
	}()
	// The first query has started once the counter moves.
	require.Eventually(t, func() bool { return s.statsNow().Queries > 0 }, 5*time.Second, 5*time.Millisecond)
	s.stop()
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Contains(t, r.body, "</html>")
}

// statsNow returns GET /stats, or zero counters on any error; unlike
// stats it may be called from require.Eventually's goroutine.
func (s *site) statsNow() statsJSON {
	var st statsJSON
	resp, err := s.client.Get(s.base + "/stats")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func TestMetricsShowFragmentAndBackendSeries(t *testing.T) {
	s := startSite(t, nil)
	s.page("/html/")
	s.page("/html/")
	metrics := s.page("/metrics")
	for _, want := range []string{
		`fragcache_fragment_lookups_total{fragment="html-sidebar",outcome="miss"} 1`,
		`fragcache_fragment_lookups_total{fragment="html-sidebar",outcome="hit"} 1`,
		`fragcache_fragment_renders_total{fragment="html-products"} 1`,
		`fragcache_fragment_render_duration_seconds_count{fragment="html-recommended"} 1`,
		`fragcache_backend_operations_total{backend="SimpleCache",op="get"}`,
		`fragcache_backend_operation_duration_seconds_bucket{backend="SimpleCache",op="set",le="+Inf"}`,
		`fragcache_backend_breaker_state{backend="SimpleCache",state="closed"} 1`,
	} {
		assert.Contains(t, metrics, want)
	}
	assert.NotContains(t, metrics, `fragment="html-recommended",`+"\n", "vary_on values never become labels")
	assert.NotRegexp(t, `fragment="[^"]*_`, metrics, "no fragment label holds a vary_on value (the key joins them with _)")
}

func TestMemoizePageShowsMissThenHit(t *testing.T) {
	s := startSite(t, nil)
	state := regexp.MustCompile(`id="memoize-state">([A-Z]+)<`)
	computed := regexp.MustCompile(`id="memoize-computed">([^<]+)<`)
	first := s.page("/memoize")
	second := s.page("/memoize")
	require.Regexp(t, state, first)
	assert.Equal(t, "MISS", state.FindStringSubmatch(first)[1])
	assert.Equal(t, "HIT", state.FindStringSubmatch(second)[1])
	assert.Equal(t, computed.FindStringSubmatch(first)[1], computed.FindStringSubmatch(second)[1], "the stored result is served")

	code, body := s.post("/memoize/forget", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "MISS", state.FindStringSubmatch(body)[1], "forgetting makes the next call run the function")
}

func TestHTTPCacheEndpointSetsXCache(t *testing.T) {
	s := startSite(t, nil)
	get := func() (xcache, body string) {
		resp, err := s.client.Get(s.base + bestsellersPath)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp.Header.Get("X-Cache"), string(b)
	}
	x1, b1 := get()
	x2, b2 := get()
	assert.Equal(t, "MISS", x1)
	assert.Equal(t, "HIT", x2)
	assert.Equal(t, b1, b2)
	assert.Contains(t, s.page("/httpcache"), bestsellersPath, "the page links the endpoint")

	code, _ := s.post("/httpcache/purge", nil)
	require.Equal(t, http.StatusOK, code)
	x3, _ := get()
	assert.Equal(t, "MISS", x3, "purged")
}

// A browser opens connections ahead of its requests (preconnect); the
// server must not wait for them to send one before it stops. net/http's
// Shutdown counts such a connection as busy for its first 5 s, which is
// what made TestShutdownLetsRequestsInFlightFinish and the browser tests
// fail now and then with "shutdown: context deadline exceeded".
func TestShutdownDoesNotWaitForConnectionsWithoutARequest(t *testing.T) {
	s := startSite(t, nil, "-shutdown-timeout", "2s")
	s.page("/stats") // the server is serving
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	s.page("/stats") // accepted after conn, so conn was accepted too
	s.stop()         // fails the test if run returns an error
}
