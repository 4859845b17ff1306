// Package templatefuzz is the oracle the template engines' fuzz targets
// share: a template rendered through a fragment cache, first render and
// second, shows what it shows with no cache at all, and nothing in
// fragcache panics on the way. It is imported by tests only.
package templatefuzz

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

// module prefixes the functions of this module in stack traces.
const module = "github.com/fragcache/fragcache/"

// Recorder is a backends.Backend that stores nothing, as NullCache, so
// every block renders its body, and remembers what was written under each
// key: a key written with two different values is one that two executions
// share by design (the same name, or loop variables that are not vary_on
// values), where a cache serves the first value for both.
type Recorder struct {
	backends.Backend
	mu        sync.Mutex
	written   map[string][]byte
	conflicts map[string]bool
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{Backend: backends.NewNull(), written: map[string][]byte{}, conflicts: map[string]bool{}}
}

// Set records value under key and stores nothing.
func (r *Recorder) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.record(key, value)
	return r.Backend.Set(ctx, key, value, ttl)
}

// Add records value under key and stores nothing.
func (r *Recorder) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	r.record(key, value)
	return r.Backend.Add(ctx, key, value, ttl)
}

func (r *Recorder) record(key string, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.written[key]; ok && !bytes.Equal(old, value) {
		r.conflicts[key] = true
	}
	r.written[key] = bytes.Clone(value)
}

// Conflicts returns the keys written with two different values.
func (r *Recorder) Conflicts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.conflicts))
	for k := range r.conflicts {
		out = append(out, k)
	}
	return out
}

// Guard runs f. A panic raised in this module's code (outside tests) fails
// the test with its stack; a panic raised in an engine's own code is the
// engine's business, and Guard reports it as engine == true.
func Guard(t testing.TB, f func()) (engine bool) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f := panicOrigin(); strings.HasPrefix(f.Function, module) && !strings.HasSuffix(f.File, "_test.go") {
			t.Fatalf("panic in %s (%s:%d): %v\n%s", f.Function, f.File, f.Line, r, debug.Stack())
		}
		engine = true
	}()
	f()
	return false
}

// panicOrigin returns the frame that raised the panic being recovered: the
// first frame after runtime.gopanic that is not in the runtime. It must be
// called from the deferred function that recovers.
func panicOrigin() runtime.Frame {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	seenPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			seenPanic = true
		case seenPanic && !strings.HasPrefix(f.Function, "runtime."):
			return f
		}
		if !more {
			return runtime.Frame{}
		}
	}
}

// Render renders one template through fc.
type Render func(fc *fragment.Cache) (string, error)

// NullStore returns a cache that never holds anything.
func NullStore() *backends.Cache { return backends.New(backends.NewNull(), backends.CacheOptions{}) }

// Store returns a fragment cache over a fresh SimpleCache.
func Store() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
}

// BatchedStore returns a fragment cache over a fresh SimpleCache that
// batches pages (fragment.BatchOn), as a networked backend does: an
// engine's page entry point renders through fragment.Cache.Page.
func BatchedStore() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{Batch: fragment.BatchOn})
}

// CheckCachedEqualsUncached renders through a cache that never holds
// anything (twice: a template whose output changes between renders has no
// expected output) and then through a SimpleCache (twice: misses, then
// hits), rendering directly and in batched pages, and requires the same output from all of them, or an error from
// all of them.
//
// Where two executions of one key render different bodies, a cache rightly
// serves the first for both, so there is nothing to compare. mayShare says
// whether that is by design for a key: a name given twice, a block run
// again in a loop. For any other key it is two blocks sharing a key they
// must not share, and the test fails.
func CheckCachedEqualsUncached(t testing.TB, render Render, mayShare func(key string) bool) {
	t.Helper()
	rec := NewRecorder()
	null := fragment.New(backends.New(rec, backends.CacheOptions{}), fragment.Options{})
	var want, again string
	var wantErr, againErr error
	if Guard(t, func() { want, wantErr = render(null) }) || Guard(t, func() { again, againErr = render(null) }) {
		return
	}
	checkNoRuntimeError(t, wantErr)
	if want != again || (wantErr == nil) != (againErr == nil) {
		return
	}
	if conflicts := rec.Conflicts(); len(conflicts) > 0 {
		for _, k := range conflicts {
			if !mayShare(k) {
				t.Fatalf("blocks that must not share a key wrote different fragments under %q", k)
			}
		}
		return
	}
	for _, fc := range []*fragment.Cache{Store(), BatchedStore()} {
		checkCached(t, render, fc, want, wantErr)
	}
}

// checkCached renders twice through fc (misses, then hits) and requires
// want, or an error if wantErr is one.
func checkCached(t testing.TB, render Render, fc *fragment.Cache, want string, wantErr error) {
	t.Helper()
	mode := "direct"
	if fc.Batches() {
		mode = "batched"
	}
	for i, what := range []string{mode + " first render (misses)", mode + " second render (hits)"} {
		var got string
		var err error
		if Guard(t, func() { got, err = render(fc) }) {
			t.Fatalf("%s: the engine panicked with a cache but not without one", what)
		}
		checkNoRuntimeError(t, err)
		if wantErr != nil {
			if err == nil {
				t.Fatalf("%s: no error; without a cache: %v", what, wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v; without a cache the output is %q", what, err, want)
		}
		if got != want {
			t.Fatalf("%s (render %d): got %q, without a cache %q", what, i+1, got, want)
		}
	}
}

// DefaultKeyShared returns the mayShare function of
// CheckCachedEqualsUncached for a template whose unnamed blocks are keyed
// under path: a key of another name may be shared (a name given twice),
// and so may a default key if the template has a construct in repeat that
// runs a block more than once per render.
func DefaultKeyShared(path string, src string, repeat ...string) func(key string) bool {
	for _, w := range repeat {
		if strings.Contains(src, w) {
			return func(string) bool { return true }
		}
	}
	return func(key string) bool { return !strings.HasPrefix(key, keys.TemplateFragmentPrefix+path) }
}

// checkNoRuntimeError fails on an error that carries a runtime error: an
// engine that recovers panics in the functions it calls (text/template
// does) turns a nil dereference in a block into an error.
func checkNoRuntimeError(t testing.TB, err error) {
	t.Helper()
	var re runtime.Error
	if errors.As(err, &re) {
		t.Fatalf("runtime error: %v", err)
	}
}

// Bounded reports whether src is small and tame enough to render: the
// engines themselves loop or recurse without bound on some templates
// (nested loops over large numbers, recursion through include, yield or
// macros), which is not what these targets test. src has at most 512
// bytes, none of words (the engine's constructs that recurse or repeat),
// at most maxLoops occurrences of loop, and no number of more than three
// digits.
func Bounded(src string, words []string, loop string, maxLoops int) bool {
	if len(src) > 512 || strings.Count(src, loop) > maxLoops {
		return false
	}
	for _, w := range words {
		if strings.Contains(src, w) {
			return false
		}
	}
	digits := 0
	for i := 0; i < len(src); i++ {
		if c := src[i]; '0' <= c && c <= '9' {
			if digits++; digits > 3 {
				return false
			}
		} else {
			digits = 0
		}
	}
	return true
}
