package jettag

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
)

// testLoader names the loader of newEnv's Set: every unnamed block's path
// starts with it.
const testLoader = "app"

// env is a Set with cache tags over an in-memory loader and a SimpleCache.
type env struct {
	store *backends.Cache
	fc    *fragment.Cache
	tags  *Tags
	mem   *jet.InMemLoader
	set   *jet.Set
}

type envConfig struct {
	backend  backends.Backend // nil: a fresh SimpleCache
	store    backends.CacheOptions
	fragment fragment.Options
	tags     Options
	jet      []jet.Option
}

func newEnv(t testing.TB, cfg envConfig, files map[string]string) *env {
	t.Helper()
	if cfg.backend == nil {
		cfg.backend = backends.NewSimple(0)
	}
	e := &env{store: backends.New(cfg.backend, cfg.store), mem: jet.NewInMemLoader()}
	e.fc = fragment.New(e.store, cfg.fragment)
	e.tags = New(e.fc, cfg.tags)
	for p, src := range files {
		e.mem.Set(p, src)
	}
	set, err := e.tags.NewSet(testLoader, e.mem, cfg.jet...)
	require.NoError(t, err)
	e.set = set
	return e
}

func (e *env) render(path string, vars jet.VarMap, data any) (string, error) {
	tpl, err := e.set.GetTemplate(path)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = tpl.Execute(&out, vars, data)
	return out.String(), err
}

// uncachedTag matches cache and endcache tags written with the default
// delimiters and without "}" in their arguments.
var uncachedTag = regexp.MustCompile(`\{\{(- )?\s*(?:cache\b[^}]*?|endcache)\s*( -)?\}\}`)

// uncached returns src with every cache block reduced to its body: each tag
// becomes an action printing "" with the same trim markers and newlines,
// which is what the page must look like whatever the cache does.
func uncached(src string) string {
	return uncachedTag.ReplaceAllStringFunc(src, func(tag string) string {
		m := uncachedTag.FindStringSubmatch(tag)
		return "{{" + m[1] + `""` + strings.Repeat("\n", strings.Count(tag, "\n")) + m[2] + "}}"
	})
}

// renderPlain renders path with a plain Jet Set over the uncached files.
func renderPlain(t testing.TB, files map[string]string, path string, vars jet.VarMap, data any) (string, error) {
	t.Helper()
	mem := jet.NewInMemLoader()
	for p, src := range files {
		mem.Set(p, uncached(src))
	}
	tpl, err := jet.NewSet(mem).GetTemplate(path)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = tpl.Execute(&out, vars, data)
	return out.String(), err
}

// errBackend is a Backend whose every call fails.
type errBackend struct{}

var errDown = errors.New("backend down")

func (errBackend) Get(context.Context, string) ([]byte, bool, error) { return nil, false, errDown }
func (errBackend) GetMany(context.Context, []string) ([][]byte, error) {
	return nil, errDown
}
func (errBackend) Set(context.Context, string, []byte, time.Duration) error { return errDown }
func (errBackend) SetMany(context.Context, map[string][]byte, time.Duration) error {
	return errDown
}
func (errBackend) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errDown
}
func (errBackend) Delete(context.Context, string) (bool, error)      { return false, errDown }
func (errBackend) DeleteMany(context.Context, []string) (int, error) { return 0, errDown }
func (errBackend) Has(context.Context, string) (bool, error)         { return false, errDown }
func (errBackend) Inc(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, errDown
}
func (errBackend) Clear(context.Context, string) error { return errDown }
func (errBackend) Close() error                        { return nil }

// recordingBackend is a SimpleCache that remembers the TTL of each Set and
// the context of each Get.
type recordingBackend struct {
	*backends.Simple
	mu   sync.Mutex
	ttls map[string]time.Duration
	ctxs []context.Context
}

func newRecordingBackend() *recordingBackend {
	return &recordingBackend{Simple: backends.NewSimple(0), ttls: map[string]time.Duration{}}
}

func (r *recordingBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.ttls[key] = ttl
	r.mu.Unlock()
	return r.Simple.Set(ctx, key, value, ttl)
}

func (r *recordingBackend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r.mu.Lock()
	r.ctxs = append(r.ctxs, ctx)
	r.mu.Unlock()
	return r.Simple.Get(ctx, key)
}

func (r *recordingBackend) ttl(key string) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.ttls[key]
	return d, ok
}
