package memoize

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/failopen"
	"github.com/fragcache/fragcache/internal/flight"
	"github.com/fragcache/fragcache/internal/stalecopy"
	"github.com/fragcache/fragcache/internal/xfetch"
)

// Errors callers branch on with errors.Is.
var (
	// ErrUnsupportedArg is returned by Call and Delete for an argument that
	// cannot be part of a cache key: a func, a channel, an unsafe.Pointer, a
	// value nested deeper than 256 levels (a cycle), or a MarshalBinary
	// method that failed.
	ErrUnsupportedArg = errors.New("memoize: argument cannot be part of a cache key")
	// ErrReceiver is returned by a method's Call and Delete for a nil
	// receiver or one whose CacheID is empty: either would share entries
	// between receivers.
	ErrReceiver = errors.New("memoize: receiver has no identity")
	// ErrPanicked is returned to the calls that waited for a call with the
	// same arguments whose function panicked; the panic itself goes on up
	// the goroutine that ran the function.
	ErrPanicked = flight.ErrPanicked
	// ErrRecursive is returned when a memoized function calls itself with
	// the same arguments: it would wait for its own result forever. (A call
	// whose result is being computed by another goroutine that waits for
	// the caller, calls nested in opposite orders, of one memoized
	// function or of several, runs the function uncached instead.)
	ErrRecursive = flight.ErrRecursive
)

// Identifier gives a value its identity in cache keys. A method receiver
// must implement it (see [Method]): its CacheID keeps two receivers from
// sharing entries, and names the receiver in DeleteInstance. An argument
// that implements it, at any depth, is encoded as its CacheID alone rather
// than field by field, which is how a large or pointer-rich value (a
// database handle, a user session) becomes a short, stable key part. Two
// values with the same CacheID are the same for the cache, in every
// process that shares the store, so the ID must be stable across processes
// (a primary key, a tenant name) and must never be empty.
type Identifier interface {
	CacheID() string
}

// Options configure a memoized function. The zero value caches every
// non-nil result with the cache's default timeout under a name derived
// from the function, and fails open.
type Options struct {
	// Name identifies the function in keys and in its version key, instead
	// of its qualified Go name (runtime.FuncForPC). Required for function
	// literals and method values, whose Go names say where they were
	// written (main.main.func1) rather than what they compute, so that two
	// of them can share a name in one binary or swap names between builds.
	Name string
	// Timeout is how long results live: 0 means the cache's default
	// timeout, backends.NoExpiry never expires (only DeleteMemoized,
	// Delete and the store's own eviction remove them); any other
	// negative value is invalid.
	Timeout time.Duration
	// Unless, when it returns true, makes the call bypass the cache: the
	// function runs and nothing is read or stored (Flask's unless).
	Unless func(ctx context.Context) bool
	// ForcedUpdate, when it returns true, skips the lookup: the function
	// runs and its result replaces the stored one (Flask's forced_update).
	ForcedUpdate func(ctx context.Context) bool
	// CacheNone stores nil results — nil pointers, slices, maps and
	// interfaces — too (Flask's cache_none). By default they are returned
	// but not stored, so the function runs again next time. Results of
	// types that cannot be nil (numbers, strings, structs) are always
	// stored, zero values included.
	CacheNone bool
	// IgnoreFields names fields of the argument, a struct, that are left
	// out of the key, so calls that differ only there share one entry
	// (Flask's args_to_ignore, which names parameters: the fields of the
	// argument struct are a Go function's named parameters). A method's
	// receiver cannot be ignored: to share entries across receivers,
	// memoize a plain function.
	IgnoreFields []string
	// Version is added to every key; change it when the function's
	// behaviour changes so that older results are not read.
	Version string
	// SourceCheck adds a digest of the running executable to every key, so
	// that a rebuilt binary with any change in it starts with fresh
	// entries. Go binaries carry no source to hash (Flask hashes the
	// function's source), so the check is per build, not per function;
	// identical builds keep sharing entries, since Go builds are
	// reproducible. Use Version for per-function control.
	SourceCheck bool
	// Strict returns backend errors from Call (Flask-Caching's debug
	// behaviour) instead of running the function uncached.
	Strict bool
	// Logger receives backend error reports; nil means slog.Default().
	Logger *slog.Logger
	// LogInterval is the least time between two backend error reports;
	// errors in between are counted and summarised in the next report.
	// 0 means 10 s.
	LogInterval time.Duration

	// StaleWhileRevalidate is a grace period: results stay stored that
	// much longer than Timeout, and a call that finds its result past
	// Timeout returns it at once while the function runs again in the
	// background (once per process and arguments) to replace it. 0 is off.
	// Results that never expire have no grace period.
	StaleWhileRevalidate time.Duration
	// EarlyRefresh turns on probabilistic early refresh ("XFetch", see
	// internal/xfetch) with this β: a call re-runs the function in the
	// background before the result expires, with a probability that rises
	// as the expiry nears and with how long the function took. 1 is the
	// paper's recommendation; 0 is off.
	EarlyRefresh float64
	// RefreshTimeout bounds a background run of the function (with
	// StaleWhileRevalidate or EarlyRefresh), whose context keeps the
	// caller's values but not its cancellation. 0 means 10 s.
	RefreshTimeout time.Duration
	// StaleCopies is how many results, with StaleWhileRevalidate, are
	// kept in memory to return while the backend cannot be reached (its
	// circuit breaker open, or a call failing), each until its grace
	// period ends. Results are shared, as between concurrent callers:
	// treat them as read-only. During an outage an invalidation made by
	// another process cannot be seen, so such a result may be one another
	// process has invalidated. 0 means 1000; negative keeps none.
	StaleCopies int
	// StaleCopyBytes bounds the same results by size: each costs its
	// encoded size (msgpack) plus its key and a small overhead, an
	// estimate of what it holds in memory. 0 means DefaultStaleCopyBytes;
	// negative keeps none.
	StaleCopyBytes int
}

// DefaultStaleCopyBytes is the StaleCopyBytes a 0 means: 8 MiB, as for
// fragments.
const DefaultStaleCopyBytes = 8 << 20

// Stats counts what a memoized function did.
type Stats struct {
	Hits          uint64 // calls answered from the cache
	Misses        uint64 // calls that found nothing stored (or were forced)
	Calls         uint64 // executions of the function for a miss
	Waits         uint64 // misses answered by another call's execution
	Bypasses      uint64 // calls for which Unless returned true
	BackendErrors uint64 // backend failures, whether failed open or returned
	// Skips counts backend calls skipped because the backend's circuit
	// breaker was open (not in BackendErrors, and not logged: the breaker
	// logs its state changes).
	Skips uint64
	// Breaker is the state of the backend's circuit breaker
	// (backends.Cache.Breaker); BreakerClosed when it has none.
	Breaker backends.BreakerState
	// StaleHits counts calls answered with a result past its timeout,
	// within the grace period, while the function ran again.
	StaleHits uint64
	// Refreshes counts background runs of the function for a stale
	// result or an early refresh (not in Calls).
	Refreshes uint64
}

// memo is what functions and methods share: keys, versions, lookups, stores,
// deduplication and error policy, for results of type R.
type memo[R any] struct {
	cache  *backends.Cache
	opts   Options
	name   string
	verKey string
	seed   []byte // hashed before the argument: name, types, version, build
	ignore []bool // by field of the argument; nil when none is ignored
	group  flight.Group[R]
	// offline deduplicates calls whose lookup failed (see offline.go).
	offline flight.Group[R]

	hits, misses, calls, waits, bypasses atomic.Uint64
	staleHits, refreshes                 atomic.Uint64
	failures                             *failopen.Reporter

	copies *stalecopy.Copies[R] // results kept to return while the backend fails; nil when off
}

// anonymous matches the Go names of function literals (pkg.F.func1,
// pkg.init.func2.3) and method values (pkg.T.M-fm).
var anonymous = regexp.MustCompile(`(\.func\d+(\.\d+)*|-fm)$`)

// newMemo builds the shared part of a memoized function. fn is the wrapped
// function (for its name), recv the receiver type or nil, arg the static
// argument type. It panics on programming errors, which show on first run.
func newMemo[R any](cache *backends.Cache, fn any, recv reflect.Type, arg reflect.Type, opts Options) *memo[R] {
	if cache == nil {
		panic("memoize: nil *backends.Cache")
	}
	fv := reflect.ValueOf(fn)
	if fv.IsNil() {
		panic("memoize: nil function")
	}
	name := opts.Name
	if name == "" {
		goName := runtime.FuncForPC(fv.Pointer()).Name()
		if anonymous.MatchString(goName) {
			panic(fmt.Sprintf("memoize: %s is a function literal or method value; set Options.Name (or use Method with a method expression such as (*T).M)", goName))
		}
		name = goName
	}
	if opts.Timeout < 0 && opts.Timeout != backends.NoExpiry {
		panic(fmt.Sprintf("memoize: %s: negative Timeout %v (use backends.NoExpiry for entries that never expire)", name, opts.Timeout))
	}
	ignore := ignoredFields(name, arg, opts.IgnoreFields)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StaleWhileRevalidate < 0 || opts.EarlyRefresh < 0 || opts.RefreshTimeout < 0 {
		panic(fmt.Sprintf("memoize: %s: negative StaleWhileRevalidate, EarlyRefresh or RefreshTimeout", name))
	}
	if opts.RefreshTimeout == 0 {
		opts.RefreshTimeout = 10 * time.Second
	}

	var seed argEncoder
	seed.str("memoize/v1")
	seed.str(name)
	if recv != nil {
		seed.str(typeName(recv))
	}
	seed.str(typeName(arg))
	seed.str(typeName(reflect.TypeFor[R]()))
	seed.str(opts.Version)
	if opts.SourceCheck {
		seed.str(buildDigest())
	} else {
		seed.str("")
	}
	m := &memo[R]{
		cache:  cache,
		opts:   opts,
		name:   name,
		verKey: name + "_memver",
		seed:   seed.buf,
		ignore: ignore,

		failures: failopen.New(opts.Logger, opts.LogInterval, "fragcache: memoize: cache failed"),
	}
	if opts.StaleWhileRevalidate > 0 && opts.StaleCopies >= 0 && opts.StaleCopyBytes >= 0 {
		n, size := opts.StaleCopies, opts.StaleCopyBytes
		if n == 0 {
			n = 1000
		}
		if size == 0 {
			size = DefaultStaleCopyBytes
		}
		m.copies = stalecopy.New(size, resultSize[R], nil).LimitCount(n)
	}
	return m
}

// ignoredFields returns, by field index of the struct type arg, the fields
// names lists, or nil when it lists none.
func ignoredFields(name string, arg reflect.Type, names []string) []bool {
	if len(names) == 0 {
		return nil
	}
	if arg.Kind() != reflect.Struct || arg.Implements(identifierType) || arg.Implements(marshalerType) {
		panic(fmt.Sprintf("memoize: %s: IgnoreFields needs a struct argument encoded field by field; %s is not one", name, arg))
	}
	ignore := make([]bool, arg.NumField())
	for _, n := range names {
		f, ok := arg.FieldByName(n)
		if !ok || len(f.Index) != 1 { // a field of an embedded struct: ignore the embedded field
			panic(fmt.Sprintf("memoize: %s: IgnoreFields: %s has no field %q", name, arg, n))
		}
		ignore[f.Index[0]] = true
	}
	return ignore
}

var encoders = sync.Pool{New: func() any { return &argEncoder{buf: make([]byte, 0, 256)} }}

// hash returns the 22-character digest naming one call: the function's
// seed, the receiver's identity and the argument.
func (m *memo[R]) hash(inst *string, arg any) (string, error) {
	e := encoders.Get().(*argEncoder)
	defer encoders.Put(e)
	e.buf = append(e.buf[:0], m.seed...)
	if inst != nil {
		e.buf = append(e.buf, tagIdentifier)
		e.str(*inst)
	} else {
		e.buf = append(e.buf, tagNil)
	}
	var err error
	if m.ignore == nil {
		err = e.arg(arg)
	} else {
		err = e.fields(reflect.ValueOf(arg), m.ignore)
	}
	if err != nil {
		return "", fmt.Errorf("memoize %s: argument (%T): %w", m.name, arg, err)
	}
	sum := sha256.Sum256(e.buf)
	return base64.RawURLEncoding.EncodeToString(sum[:16]), nil
}

// instanceKey is where a receiver's version lives.
func (m *memo[R]) instanceKey(inst string) string { return m.verKey + "/" + inst }

// newVersion returns a fresh random version: 48 bits in 8 URL-safe
// characters, so a key never needs escaping for any store.
func newVersion() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// entry is what a result is stored as: with the version it was computed
// under. Keeping the version in the value rather than in the key (Flask's
// way) lets one GetMany read the versions and the entry together, so a hit
// costs one round trip, and makes an invalidated entry be overwritten by
// the next call instead of lingering under a key nobody reads.
type entry[R any] struct {
	Version string `msgpack:"v" json:"v"`
	Result  R      `msgpack:"r" json:"r"`
	// With StaleWhileRevalidate or EarlyRefresh: when the result goes
	// stale (Unix ms) and how long the function took (µs).
	Stale int64  `msgpack:"s,omitempty" json:"s,omitempty"`
	Took  uint32 `msgpack:"t,omitempty" json:"t,omitempty"`
}

// read fetches, in one round trip, the function's version, the receiver's
// (when inst is not nil) and the entry under key. ver is the version data
// a valid entry must carry; fnFound=false means the function has no
// version yet, so no stored entry can be valid. r and found describe a
// valid entry.
func (m *memo[R]) read(ctx context.Context, inst *string, key string) (ver string, fnFound bool, e entry[R], found bool, err error) {
	keys := []string{m.verKey, key}
	if inst != nil {
		keys = append(keys, m.instanceKey(*inst))
	}
	vals, err := m.cache.GetMany(ctx, keys...)
	if err != nil {
		return "", false, e, false, err
	}
	fnVer, ok := vals[0].Bytes()
	if !ok {
		return "", false, e, false, nil
	}
	ver = string(fnVer)
	if inst != nil {
		instVer, _ := vals[2].Bytes() // none until DeleteInstance writes one
		ver += "/" + string(instVer)
	}
	e, found = m.decode(vals[1], key, ver)
	return ver, true, e, found, nil
}

// decode returns the result v holds if it was stored under version ver. A
// value that does not decode (one written by an older build with another
// result type under the same name and version) is a miss, logged, and
// gets overwritten.
func (m *memo[R]) decode(v backends.Value, key, ver string) (entry[R], bool) {
	var e entry[R]
	if !v.Found() {
		return e, false
	}
	if err := v.Decode(&e); err != nil {
		m.report("decode", fmt.Errorf("memoize %s: stored result under %q: %w", m.name, key, err))
		return entry[R]{}, false
	}
	return e, e.Version == ver
}

// createVersion stores a first version for the function, or reads the one
// a concurrent caller stored first, so all callers agree on it. It never
// expires: Flask's version key expired with the entries' timeout and
// orphaned every entry written after it was created (issue #531).
func (m *memo[R]) createVersion(ctx context.Context, inst *string) (string, error) {
	v := newVersion()
	added, err := m.cache.Add(ctx, m.verKey, v, backends.NoExpiry)
	if err != nil {
		return "", err
	}
	if !added {
		got, err := m.cache.GetValue(ctx, m.verKey)
		if err != nil {
			return "", err
		}
		b, ok := got.Bytes()
		if !ok {
			return "", fmt.Errorf("memoize %s: version key %q vanished while it was being created", m.name, m.verKey)
		}
		v = string(b)
	}
	if inst != nil {
		got, err := m.cache.GetValue(ctx, m.instanceKey(*inst))
		if err != nil {
			return "", err
		}
		b, _ := got.Bytes()
		v += "/" + string(b)
	}
	return v, nil
}

// call is Call of functions and methods: inst is the receiver's CacheID
// (nil for plain functions), arg the argument, fn runs the function.
func (m *memo[R]) call(ctx context.Context, inst *string, arg any, fn func(context.Context) (R, error)) (R, error) {
	var zero R
	if m.opts.Unless != nil && m.opts.Unless(ctx) {
		m.bypasses.Add(1)
		return fn(ctx)
	}
	key, err := m.hash(inst, arg)
	if err != nil {
		return zero, err
	}
	ver, fnFound, e, found, err := m.read(ctx, inst, key)
	if err == nil && !fnFound {
		ver, err = m.createVersion(ctx, inst)
	}
	if err != nil {
		if err := m.backendError("get", err); err != nil {
			return zero, err
		}
		if r, ok := m.copies.Get(key, time.Now().UnixMilli()); ok {
			m.staleHits.Add(1)
			return r, nil
		}
		return m.callOffline(ctx, key, fn)
	}
	forced := m.opts.ForcedUpdate != nil && m.opts.ForcedUpdate(ctx)
	if found && !forced {
		switch xfetch.Judge(e.Stale, e.Took, time.Now().UnixMilli(), m.opts.EarlyRefresh) {
		case xfetch.Fresh:
			m.hits.Add(1)
			m.keep(key, e)
		case xfetch.Early:
			m.hits.Add(1)
			m.refreshInBackground(ctx, key, ver, fn)
		case xfetch.Stale:
			m.staleHits.Add(1)
			m.refreshInBackground(ctx, key, ver, fn)
		}
		return e.Result, nil
	}
	m.misses.Add(1)
	return m.fill(ctx, key, ver, forced, fn)
}

// refreshInBackground runs fn again for key, once per process at a time,
// on a goroutine of its own with a context detached from ctx's
// cancellation and bounded by RefreshTimeout, and stores its result. A
// panic in fn is logged, not let loose on a goroutine nobody recovers.
func (m *memo[R]) refreshInBackground(ctx context.Context, key, ver string, fn func(context.Context) (R, error)) {
	fkey := key + "/" + ver
	if m.group.InFlight(fkey) {
		return // a refresh or a miss is running it already
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.RefreshTimeout)
	go func() {
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				m.opts.Logger.Error("fragcache: memoize: background refresh panicked", "func", m.name, "panic", fmt.Sprint(p))
			}
		}()
		_, _, err := m.group.TryDo(rctx, fkey, func() (R, error) {
			m.refreshes.Add(1)
			return m.run(rctx, key, ver, fn)
		})
		if err != nil {
			m.report("refresh", fmt.Errorf("memoize %s: background refresh: %w", m.name, err))
		}
	}()
}

// run runs fn and stores its result (unless it failed, or is nil and
// CacheNone is off).
func (m *memo[R]) run(ctx context.Context, key, ver string, fn func(context.Context) (R, error)) (R, error) {
	var zero R
	began := time.Now()
	r, err := fn(ctx)
	if err != nil {
		return r, err // errors are never stored
	}
	if !m.opts.CacheNone && isNil(r) {
		return r, nil
	}
	e := entry[R]{Version: ver, Result: r}
	if m.opts.StaleWhileRevalidate > 0 || m.opts.EarlyRefresh > 0 {
		if life := m.lifetime(); life > 0 {
			e.Stale = time.Now().Add(life).UnixMilli()
		}
		e.Took = xfetch.Micros(time.Since(began))
	}
	if err := m.store(ctx, key, e); err != nil {
		if err := m.backendError("set", err); err != nil {
			return zero, err
		}
	}
	m.keep(key, e)
	return r, nil
}

// keep records a result to return while the backend fails.
func (m *memo[R]) keep(key string, e entry[R]) {
	if m.copies != nil && e.Stale != 0 {
		m.copies.Keep(key, e.Stale, e.Stale+m.opts.StaleWhileRevalidate.Milliseconds(), e.Result)
	}
}

// ttl is the TTL results are stored with: positive, or backends.NoExpiry.
func (m *memo[R]) ttl() time.Duration {
	if m.opts.Timeout != 0 {
		return m.opts.Timeout
	}
	return m.cache.DefaultTimeout()
}

// lifetime is how long a result stays fresh; 0 means forever.
func (m *memo[R]) lifetime() time.Duration { return max(m.ttl(), 0) }

// fill runs fn for a missed key, once per key and version across
// concurrent callers, and stores its result. When the caller that runs fn
// is cancelled midway, a waiter whose context is alive takes over (see
// internal/flight) rather than inherit the cancellation.
func (m *memo[R]) fill(ctx context.Context, key, ver string, forced bool, fn func(context.Context) (R, error)) (R, error) {
	servedByOther := false
	r, shared, err := m.group.Do(ctx, key+"/"+ver, func() (R, error) {
		// A concurrent call may have stored the result between the
		// lookup and the start of this flight: look once more rather
		// than run twice. (A failed lookup here just runs fn.)
		if !forced {
			if v, err := m.cache.GetValue(ctx, key); err == nil {
				if e, ok := m.decode(v, key, ver); ok && xfetch.Judge(e.Stale, 0, time.Now().UnixMilli(), 0) != xfetch.Stale {
					servedByOther = true
					return e.Result, nil
				}
			}
		}
		m.calls.Add(1)
		return m.run(ctx, key, ver, fn)
	})
	if err == flight.ErrCycle {
		// Another goroutine computes this call and waits, through calls
		// nested the other way round, for this one: run it here,
		// uncached, rather than deadlock or fail.
		m.calls.Add(1)
		return fn(ctx)
	}
	if shared || servedByOther {
		m.waits.Add(1)
	}
	return r, err
}

func (m *memo[R]) store(ctx context.Context, key string, e entry[R]) error {
	ttl := m.ttl()
	if grace := m.opts.StaleWhileRevalidate; grace > 0 && ttl > 0 {
		ttl = min(ttl, math.MaxInt64-grace) + grace
	}
	return m.cache.Set(ctx, key, e, ttl)
}

// isNil reports whether r is a nil pointer, slice, map, interface, func
// or channel: what Flask's None is to Go.
func isNil[R any](r R) bool {
	v := reflect.ValueOf(&r).Elem()
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// deleteOne removes the entry of one call; deleted reports whether one
// was stored, valid or already invalidated. It creates no version.
func (m *memo[R]) deleteOne(ctx context.Context, inst *string, arg any) (deleted bool, err error) {
	key, err := m.hash(inst, arg)
	if err != nil {
		return false, err
	}
	m.copies.Clear() // rare; a copy of this key must not outlive it
	deleted, err = m.cache.Delete(ctx, key)
	return deleted, wrap(m.name, "delete", err)
}

// deleteMemoized replaces the function's version, so that no entry stored
// before is read again: O(1) however many argument combinations there are.
func (m *memo[R]) deleteMemoized(ctx context.Context) error {
	m.copies.Clear()
	return wrap(m.name, "delete memoized", m.cache.Set(ctx, m.verKey, newVersion(), backends.NoExpiry))
}

// deleteVerhash removes the function's version key; the next call creates
// a fresh one.
func (m *memo[R]) deleteVerhash(ctx context.Context) error {
	m.copies.Clear()
	_, err := m.cache.Delete(ctx, m.verKey)
	return wrap(m.name, "delete verhash", err)
}

// deleteInstance gives one receiver a new version, so that none of its
// entries is read again; other receivers keep theirs.
func (m *memo[R]) deleteInstance(ctx context.Context, inst string) error {
	m.copies.Clear() // copies are not kept by receiver: drop them all
	return wrap(m.name, "delete instance", m.cache.Set(ctx, m.instanceKey(inst), newVersion(), backends.NoExpiry))
}

func wrap(name, op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("memoize %s: %s: %w", name, op, err)
}

func (m *memo[R]) stats() Stats {
	return Stats{
		Hits:          m.hits.Load(),
		Misses:        m.misses.Load(),
		Calls:         m.calls.Load(),
		Waits:         m.waits.Load(),
		Bypasses:      m.bypasses.Load(),
		BackendErrors: m.failures.Errors(),
		Skips:         m.failures.Skips(),
		Breaker:       breakerState(m.cache),
		StaleHits:     m.staleHits.Load(),
		Refreshes:     m.refreshes.Load(),
	}
}

func breakerState(c *backends.Cache) backends.BreakerState {
	if br := c.Breaker(); br != nil {
		return br.State()
	}
	return backends.BreakerClosed
}

// backendError counts a backend failure and, in strict mode, returns it;
// otherwise it reports it and returns nil, and the caller goes on without
// the cache.
func (m *memo[R]) backendError(op string, err error) error {
	skipped := m.failures.Count(err)
	err = wrap(m.name, op, err)
	if m.opts.Strict {
		return err
	}
	if !skipped { // a skip is not logged: the breaker logged that it opened
		m.report(op, err)
	}
	return nil
}

// report logs err at most once per LogInterval, counting the rest.
func (m *memo[R]) report(op string, err error) {
	m.failures.Report(err, "op", op, "func", m.name)
}

// receiverID returns the identity of a method receiver.
func receiverID[T Identifier](recv T) (string, error) {
	v := reflect.ValueOf(recv)
	if !v.IsValid() || (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
		return "", fmt.Errorf("%w: nil %s", ErrReceiver, reflect.TypeFor[T]())
	}
	id := recv.CacheID()
	if strings.TrimSpace(id) == "" {
		return "", fmt.Errorf("%w: %s.CacheID returned %q", ErrReceiver, reflect.TypeFor[T](), id)
	}
	return id, nil
}
