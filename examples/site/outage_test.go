package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
)

// This file measures what an outage of Redis costs the demo site: the
// figures in BENCHMARKS.md and the README's outage table. It is a
// measurement, not a pass/fail test, so it runs only when asked:
//
//	FRAGCACHE_OUTAGE=1 go test -run TestOutageFigures -v -timeout 30m ./examples/site
//
// FRAGCACHE_OUTAGE_PHASE sets how long each phase lasts (default 3s) and
// FRAGCACHE_OUTAGE_ROUNDS how many outages of each kind are measured
// (default 3). Eight clients request every page of every engine in turn,
// alternating request by request between the site over Redis and the same
// site with caching off (NullCache), so that both are measured under the
// same load of the machine; the data source answers at once (-delay 0), so
// that the page cost is the engines' and the cache's. The site runs in this process
// on an httptest server, its Redis is a real redis-server, and an outage is
// either the server killed (refusing connections) or stopped with SIGSTOP
// (hung: connections accepted, nothing answered), then restored.

const outageClients = 8

// sample is one request.
type sample struct {
	site  int // index of the site requested
	start time.Time
	took  time.Duration
	ok    bool // 200 and the page expected
	err   string
}

// load drives a site with outageClients clients until stopped.
type load struct {
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	wg      sync.WaitGroup
}

var (
	renderedAt = regexp.MustCompile(`rendered at \d\d:\d\d:\d\d\.\d{3}`)
	backendRE  = regexp.MustCompile(`(?i)(nullcache|rediscache)`)
)

// normalize drops what differs between two correct renders of a page:
// the counters, the render time, the fragments' render times and the
// backend's name.
func normalize(body string) string {
	body = stripVolatile(body)
	body = renderedAt.ReplaceAllString(body, "rendered at T")
	return backendRE.ReplaceAllString(body, "BACKEND")
}

// sitePaths are the pages the clients request: every page of every engine.
func sitePaths(s *server) []string {
	var out []string
	for _, e := range s.engines {
		out = append(out, "/"+e.Name()+"/", "/"+e.Name()+"/?category=garden")
		for _, p := range products[:3] {
			out = append(out, "/"+e.Name()+"/product/"+strconv.Itoa(p.ID))
		}
	}
	return out
}

// fetch gets one page.
func fetch(client *http.Client, url string) (string, int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode, err
}

// startLoad starts outageClients clients; each requests the pages in turn,
// alternating between the sites request by request, so that every site is
// measured under the same load of the machine (which other jobs share).
func startLoad(sites ...*outageSite) *load {
	l := &load{stop: make(chan struct{})}
	for c := range outageClients {
		l.wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			for i := c; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				si := i % len(sites)
				site := sites[si]
				p := site.paths[(i/len(sites))%len(site.paths)]
				begin := time.Now()
				body, code, err := fetch(client, site.http.URL+p)
				s := sample{site: si, start: begin, took: time.Since(begin)}
				switch {
				case err != nil:
					s.err = err.Error()
				case code != http.StatusOK:
					s.err = fmt.Sprintf("%s: status %d", p, code)
				case normalize(body) != site.want[p]:
					s.err = p + ": wrong page"
				default:
					s.ok = true
				}
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) end() []sample {
	close(l.stop)
	l.wg.Wait()
	return l.samples
}

// between returns the samples of site that started in [from, to).
func between(ss []sample, site int, from, to time.Time) []sample {
	var out []sample
	for _, s := range ss {
		if s.site == site && !s.start.Before(from) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// stats summarises samples: count, failures, p50, p99, max.
type stats struct {
	n, failed     int
	p50, p99, max time.Duration
	firstFailure  string
}

func summarize(ss []sample) stats {
	st := stats{n: len(ss)}
	if len(ss) == 0 {
		return st
	}
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.took
		if !s.ok {
			st.failed++
			if st.firstFailure == "" {
				st.firstFailure = s.err
			}
		}
	}
	slices.Sort(d)
	st.p50 = d[len(d)*50/100]
	st.p99 = d[min(len(d)-1, len(d)*99/100)]
	st.max = d[len(d)-1]
	return st
}

func (st stats) String() string {
	return fmt.Sprintf("%d requests, %d failed; p50 %v, p99 %v, max %v", st.n, st.failed,
		st.p50.Round(10*time.Microsecond), st.p99.Round(10*time.Microsecond), st.max.Round(10*time.Microsecond))
}

// outageSite is the demo site over one backend, served by httptest.
type outageSite struct {
	s     *server
	store *backends.Cache
	http  *httptest.Server
	want  map[string]string
	paths []string
}

func newOutageSite(t *testing.T, settings map[string]any) *outageSite {
	cfg, err := backends.FromMap(settings)
	require.NoError(t, err)
	cfg.Logger = slog.New(slog.DiscardHandler)
	store, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	s, err := newServer(&Shop{}, store, cfg.Type, cfg.Logger)
	require.NoError(t, err)
	hs := httptest.NewServer(s.handler())
	t.Cleanup(hs.Close)
	o := &outageSite{s: s, store: store, http: hs, want: map[string]string{}, paths: sitePaths(s)}
	for _, p := range o.paths {
		body, code, err := fetch(hs.Client(), hs.URL+p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		o.want[p] = normalize(body)
	}
	return o
}

func phaseLength() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("FRAGCACHE_OUTAGE_PHASE")); err == nil && d > 0 {
		return d
	}
	return 3 * time.Second
}

func rounds() int {
	if n, err := strconv.Atoi(os.Getenv("FRAGCACHE_OUTAGE_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

func TestOutageFigures(t *testing.T) {
	if os.Getenv("FRAGCACHE_OUTAGE") == "" {
		t.Skip("a measurement: set FRAGCACHE_OUTAGE=1 to run it")
	}
	phase := phaseLength()
	var report strings.Builder
	logf := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		report.WriteString(line + "\n")
	}
	defer func() { fmt.Fprint(os.Stdout, "\n=== outage figures\n"+report.String()) }()

	redis.SetLogger(slog.New(slog.DiscardHandler)) // go-redis's dial failures are expected here
	t.Cleanup(func() { redis.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))) })

	// The baseline: the same site with caching off, every block rendered,
	// requested by the same clients in alternation with the Redis site.
	nocache := newOutageSite(t, map[string]any{"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": true})
	const redisSite, nocacheSite = 0, 1
	type roundFigures struct{ openDelta, openMax, opening, resumed time.Duration }
	figures := map[string][]roundFigures{}

	srv := testservers.Redis(t)
	site := newOutageSite(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": "redis://" + srv.Addr})
	fc := site.s.fc
	for _, kind := range []string{"refused", "hung"} {
		for round := range rounds() {
			l := startLoad(site, nocache)
			time.Sleep(phase)
			healthyEnd := time.Now()

			// The outage, and a monitor noting when the breaker opened.
			var opened atomic.Pointer[time.Time]
			monitorDone := make(chan struct{})
			stopMonitor := make(chan struct{})
			go func() {
				defer close(monitorDone)
				for {
					select {
					case <-stopMonitor:
						return
					case <-time.After(time.Millisecond):
					}
					if st := fc.Stats(); st.Breaker != backends.BreakerClosed && opened.Load() == nil {
						now := time.Now()
						opened.Store(&now)
					}
				}
			}()
			outageStart := time.Now()
			if kind == "refused" {
				srv.Kill()
			} else {
				srv.Pause()
			}
			time.Sleep(phase)
			restoreAt := time.Now()
			// A poller notes the first hit after the restore began: a
			// restarted server answers before Restart has finished
			// checking that it does.
			hitsAtRestore := fc.Stats().Hits
			firstHit := make(chan time.Time, 1)
			go func() {
				for limit := time.Now().Add(20 * time.Second); time.Now().Before(limit); time.Sleep(time.Millisecond) {
					if fc.Stats().Hits > hitsAtRestore {
						firstHit <- time.Now()
						return
					}
				}
				firstHit <- time.Time{}
			}()
			if kind == "refused" {
				srv.Restart()
			} else {
				srv.Resume()
			}
			restored := time.Now()
			hitAt := <-firstHit
			close(stopMonitor)
			<-monitorDone
			time.Sleep(phase)
			ss := l.end()

			all := summarize(ss)
			healthy := summarize(between(ss, redisSite, healthyEnd.Add(-phase/2), healthyEnd))
			logf("%s, round %d: all requests to both sites: %v", kind, round+1, all)
			if all.failed > 0 {
				logf("  first failure: %s", all.firstFailure)
			}
			logf("  healthy Redis site (last half of the phase): %v", healthy)
			var fig roundFigures
			if op := opened.Load(); op != nil {
				opening := summarize(between(ss, redisSite, outageStart.Add(-time.Second), *op))
				once := summarize(between(ss, redisSite, *op, restoreAt))
				base := summarize(between(ss, nocacheSite, *op, restoreAt))
				fig.openDelta, fig.openMax, fig.opening = once.p99-base.p99, once.max, opening.max
				logf("  breaker opened %v after the outage began", op.Sub(outageStart).Round(time.Millisecond))
				logf("  Redis site, requests up to the opening (from 1 s before the outage): %v", opening)
				logf("  Redis site, requests once open: %v", once)
				logf("  no-cache site, same time: %v (p99 difference %v)", base, (once.p99 - base.p99).Round(10*time.Microsecond))
			} else {
				logf("  the breaker never opened")
			}
			fig.resumed = max(0, hitAt.Sub(restored))
			figures[kind] = append(figures[kind], fig)
			switch {
			case hitAt.IsZero():
				logf("  after the restore: no hit within 20 s")
			case hitAt.Before(restored):
				logf("  after the restore: hits resumed before the server was confirmed back (%v into a restore that took %v)",
					hitAt.Sub(restoreAt).Round(time.Millisecond), restored.Sub(restoreAt).Round(time.Millisecond))
			default:
				logf("  after the restore: hits resumed %v after the server was back (restore took %v)",
					hitAt.Sub(restored).Round(time.Millisecond), restored.Sub(restoreAt).Round(time.Millisecond))
			}
			require.Zero(t, all.failed, "failed or wrong pages; first: %s", all.firstFailure)
		}
	}
	for _, kind := range []string{"refused", "hung"} {
		var delta, openMax, opening, resumed []time.Duration
		for _, f := range figures[kind] {
			delta, openMax, opening, resumed = append(delta, f.openDelta), append(openMax, f.openMax), append(opening, f.opening), append(resumed, f.resumed)
		}
		logf("%s, %d rounds (median [min–max]): once open, page p99 − no-cache p99 %s; slowest request once open %s; slowest request up to the opening %s; hits resumed %s after the server was back",
			kind, len(figures[kind]), spread(delta), spread(openMax), spread(opening), spread(resumed))
	}
}

// spread formats durations as "median [min–max]".
func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "n/a"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	r := func(x time.Duration) time.Duration { return x.Round(100 * time.Microsecond) }
	return fmt.Sprintf("%v [%v–%v]", r(d[len(d)/2]), r(d[0]), r(d[len(d)-1]))
}
