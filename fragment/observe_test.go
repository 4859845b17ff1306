package fragment_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// event is one report to a recorder.
type event struct {
	name    string
	outcome string // an Outcome's name, or "render"
	bytes   int
	err     error
}

// recorder is an Observer that keeps every report.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) ObserveLookup(_ context.Context, b fragment.Block, o fragment.Outcome, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{name: b.Name, outcome: o.String(), bytes: bytes})
}

func (r *recorder) ObserveRender(_ context.Context, b fragment.Block, took time.Duration, bytes int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if took < 0 {
		panic("negative render time")
	}
	r.events = append(r.events, event{name: b.Name, outcome: "render", bytes: bytes, err: err})
}

func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.events
	r.events = nil
	return e
}

func TestObserverSeesOutcomesRendersAndNames(t *testing.T) {
	ctx := context.Background()
	site := &fragment.Site{Path: "shop/index.html", Line: 12, Col: 3}
	const out = "<p>fragment</p>"
	body := func(w io.Writer) error { _, err := io.WriteString(w, out); return err }
	errBody := errors.New("body failed")
	failing := func(io.Writer) error { return errBody }

	var rec recorder
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{Observer: &rec})
	named := func(varyOn ...any) fragment.Call {
		return fragment.Call{Site: site, Timeout: 300, Name: "sidebar", VaryOn: varyOn}
	}
	unnamed := fragment.Call{Site: site, Timeout: 300}
	numbered := fragment.Call{Site: site, Timeout: 300, Name: 42}
	del := fragment.Call{Site: site, Timeout: "del", Name: "sidebar"}

	steps := []struct {
		what string
		call fragment.Call
		body func(io.Writer) error
		want []event
	}{
		{"cold", named(), body, []event{{"sidebar", "miss", 0, nil}, {"sidebar", "render", len(out), nil}}},
		{"warm", named(), body, []event{{"sidebar", "hit", len(out), nil}}},
		{"vary_on values never name the fragment", named(7, "en"), body,
			[]event{{"sidebar", "miss", 0, nil}, {"sidebar", "render", len(out), nil}}},
		{"unnamed is path:line", unnamed, body,
			[]event{{"shop/index.html:12", "miss", 0, nil}, {"shop/index.html:12", "render", len(out), nil}}},
		{"unnamed again", unnamed, body, []event{{"shop/index.html:12", "hit", len(out), nil}}},
		{"a non-string name in its key text", numbered, body,
			[]event{{"42", "miss", 0, nil}, {"42", "render", len(out), nil}}},
		{"del", del, body, []event{{"sidebar", "delete", 0, nil}}},
		{"a failed render is reported with its error", named(), failing,
			[]event{{"sidebar", "miss", 0, nil}, {"sidebar", "render", 0, errBody}}},
	}
	for _, st := range steps {
		var sb strings.Builder
		err := fc.Render(ctx, st.call, &sb, st.body)
		if st.want[len(st.want)-1].err != nil {
			require.ErrorIs(t, err, errBody, st.what)
		} else {
			require.NoError(t, err, st.what)
		}
		assert.Equal(t, st.want, rec.take(), st.what)
	}
}

// switchable fails every Get while down is set.
type switchable struct {
	backends.Backend
	down atomic.Bool
}

func (s *switchable) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.down.Load() {
		return nil, false, testkit.ErrDown
	}
	return s.Backend.Get(ctx, key)
}

func TestObserverSeesUncachedAndStaleHits(t *testing.T) {
	ctx := context.Background()
	site := &fragment.Site{Path: "p.html", Line: 1, Col: 1}
	body := func(w io.Writer) error { _, err := io.WriteString(w, "xyz"); return err }
	quiet := slog.New(slog.DiscardHandler)

	var rec recorder
	down := backends.New(testkit.Failing{}, backends.CacheOptions{})
	fc := fragment.New(down, fragment.Options{Observer: &rec, Logger: quiet})
	require.NoError(t, fc.Render(ctx, fragment.Call{Site: site, Timeout: 60}, io.Discard, body))
	assert.Equal(t, []event{{"p.html:1", "uncached", 0, nil}}, rec.take(), "a failed backend renders uncached, no cache render")

	sw := &switchable{Backend: backends.NewSimple(0)}
	fc = fragment.New(backends.New(sw, backends.CacheOptions{}), fragment.Options{Observer: &rec, Logger: quiet, StaleWhileRevalidate: time.Hour})
	require.NoError(t, fc.Render(ctx, fragment.Call{Site: site, Timeout: 60}, io.Discard, body))
	rec.take()
	sw.down.Store(true)
	require.NoError(t, fc.Render(ctx, fragment.Call{Site: site, Timeout: 60}, io.Discard, body))
	assert.Equal(t, []event{{"p.html:1", "stale_hit", 3, nil}}, rec.take(), "the copy kept in memory is served")
}

func TestOutcomeNames(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range fragment.Outcomes() {
		name := o.String()
		assert.Regexp(t, `^[a-z_]+$`, name, "label-safe")
		assert.False(t, seen[name], "unique: %s", name)
		seen[name] = true
	}
	assert.Equal(t, "outcome(200)", fragment.Outcome(200).String())
}

// nopObserver is the cheapest possible Observer, for the benchmark.
type nopObserver struct{}

func (nopObserver) ObserveLookup(context.Context, fragment.Block, fragment.Outcome, int) {}
func (nopObserver) ObserveRender(context.Context, fragment.Block, time.Duration, int, error) {
}

// BenchmarkRenderHitObserver compares a hit without an Observer (the
// default: one nil check) with one that has a no-op Observer. Compare
// "none" with BenchmarkRenderHit/named from a build without the hook to see
// the cost of the nil check.
func BenchmarkRenderHitObserver(b *testing.B) {
	site := &fragment.Site{Path: "bench.html", Line: 3, Col: 1}
	for _, tc := range []struct {
		name string
		obs  fragment.Observer
	}{{"none", nil}, {"nop", nopObserver{}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{Observer: tc.obs})
			body := func(w io.Writer) error { _, err := w.Write(benchBody); return err }
			call := fragment.Call{Site: site, Timeout: 300, Name: "sidebar"}
			if err := fc.Render(ctx, call, io.Discard, body); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := fc.Render(ctx, call, io.Discard, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestObserverSeesARefresh(t *testing.T) {
	ctx := context.Background()
	site := &fragment.Site{Path: "p.html", Line: 2, Col: 1}
	body := func(w io.Writer) error { _, err := io.WriteString(w, "fresh"); return err }
	var rec recorder
	fc := fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}),
		fragment.Options{Observer: &rec, StaleWhileRevalidate: time.Hour})
	call := fragment.Call{Site: site, Timeout: 10 * time.Millisecond}
	require.NoError(t, fc.Render(ctx, call, io.Discard, body))
	rec.take()
	time.Sleep(50 * time.Millisecond) // only ever longer than the timeout: past it for sure
	require.NoError(t, fc.Render(ctx, call, io.Discard, body))
	assert.Equal(t, []event{{"p.html:2", "render", len("fresh"), nil}, {"p.html:2", "refresh", 0, nil}}, rec.take(),
		"the request that finds the fragment stale renders it and is told Refresh")
}
