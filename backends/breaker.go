package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/fragcache/fragcache/internal/cacheopt"
)

// ErrBreakerOpen is returned, without calling the backend, by every
// operation of a backend whose circuit breaker is open (or half-open with
// its probe in flight). Callers that fail open — fragment blocks, memoized
// functions — go on without the cache at once instead of waiting out a
// timeout per operation.
var ErrBreakerOpen = errors.New("backends: circuit breaker open, backend skipped")

// BreakerState is the state of a backend's circuit breaker.
type BreakerState int

// The states of a circuit breaker. The zero value is BreakerClosed, which
// is also what a cache without a breaker reports.
const (
	// BreakerClosed: operations reach the backend.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen: after the cool-down, one operation probes the
	// backend while the others are skipped; its success closes the
	// breaker, its failure opens it again.
	BreakerHalfOpen
	// BreakerOpen: operations are skipped (ErrBreakerOpen) until the
	// cool-down ends.
	BreakerOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// MarshalText makes a state read as its name in JSON and logs.
func (s BreakerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name, as MarshalText writes it.
func (s *BreakerState) UnmarshalText(b []byte) error {
	for _, st := range []BreakerState{BreakerClosed, BreakerHalfOpen, BreakerOpen} {
		if string(b) == st.String() {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("backends: %q is not a circuit breaker state", b)
}

// Breaker defaults, used by NewBreaker for zero options and by Open.
const (
	// DefaultBreakerFailures is how many consecutive failures open a
	// breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerCooldown is how long a breaker stays open before it
	// lets one operation probe the backend: short, so that hits resume
	// soon after the backend returns, and one probe per cool-down costs a
	// hung backend's timeout to one request at most.
	DefaultBreakerCooldown = 100 * time.Millisecond
	// DefaultBreakerSlowCall is how long a call must have run, when its
	// caller's deadline cuts it short, to count as a failure: far longer
	// than a healthy cache server takes to answer, far shorter than the
	// deadlines requests have.
	DefaultBreakerSlowCall = 100 * time.Millisecond
)

// BreakerOptions configure a Breaker. The zero value means the defaults.
type BreakerOptions struct {
	// Failures is how many consecutive failed operations open the
	// breaker; 0 means DefaultBreakerFailures.
	Failures int
	// Cooldown is how long the breaker stays open before a probe; 0
	// means DefaultBreakerCooldown.
	Cooldown time.Duration
	// SlowCall is how long a call cut short by its caller's deadline must
	// have run to count as a failure (the backend held it longer than a
	// healthy one would); 0 means DefaultBreakerSlowCall. A request that
	// reaches the cache with a few milliseconds of its deadline left (a
	// slow database before it, an expensive query) must not open the
	// breaker of a healthy backend for everyone.
	SlowCall time.Duration
	// Name names the backend in log lines (CACHE_TYPE, for Open).
	Name string
	// Logger receives one line per state change; nil means
	// slog.Default().
	Logger *slog.Logger
}

// BreakerStats counts what a Breaker did.
type BreakerStats struct {
	State   BreakerState
	Opens   uint64 // transitions to open
	Skipped uint64 // operations refused with ErrBreakerOpen
}

// Breaker is a Backend that guards another with a circuit breaker: after
// Failures consecutive operations fail with the backend unreachable,
// unresponsive or talking nonsense, it skips the backend — every
// operation returns ErrBreakerOpen at once — for Cooldown; then one
// operation probes it, and its success closes the breaker (its failure
// opens it for another cool-down). Every state change is logged once;
// operations are not.
//
// Only failures that say something about the backend count: network
// errors and timeouts (a deadline that passed while the backend held the
// call), connections closed or reset, and whatever else the backend
// reports with an error wrapping [ErrUnavailable] (replies that do not
// parse, a wait for a free connection that timed out, servers saying they
// cannot serve, such as Redis LOADING or CLUSTERDOWN). An answer the
// backend gave — a miss, a value too large, a wrong type, a refused
// password — is a success: the backend is up. A call whose context was
// cancelled, or had ended before the call, counts as neither, and so does
// one cut short by its caller's deadline before it ran for SlowCall, and
// one that panicked. So one bad key, or one caller out of time, never
// opens the breaker for every other.
//
// The state machine is github.com/sony/gobreaker's, in its two-step form
// (Allow, then report the outcome, in a defer), which fits a wrapper of
// many methods.
// It costs each operation two short lock holds and one small allocation,
// about 0.3 µs (BenchmarkBreakerGet), next to a network round trip of tens
// of microseconds; SimpleCache and NullCache are not guarded.
type Breaker struct {
	b        Backend
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	opens    atomic.Uint64
	skips    atomic.Uint64
	name     string
	logger   *slog.Logger
	slowCall time.Duration
}

var _ Backend = (*Breaker)(nil)

// NewBreaker returns b guarded by a circuit breaker.
func NewBreaker(b Backend, opts BreakerOptions) *Breaker {
	if opts.Failures <= 0 {
		opts.Failures = DefaultBreakerFailures
	}
	if opts.Cooldown <= 0 {
		opts.Cooldown = DefaultBreakerCooldown
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SlowCall <= 0 {
		opts.SlowCall = DefaultBreakerSlowCall
	}
	br := &Breaker{b: b, name: opts.Name, logger: opts.Logger, slowCall: opts.SlowCall}
	failures := uint32(opts.Failures)
	br.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        opts.Name,
		MaxRequests: 1, // one probe when half-open
		Timeout:     opts.Cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			return err == nil || !backendFailure(err)
		},
		IsExcluded: func(err error) bool {
			return err == errNotLearnt || errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed)
		},
		OnStateChange: br.stateChanged,
	})
	return br
}

// stateChanged logs a transition; gobreaker calls it with its lock held,
// once per transition.
func (br *Breaker) stateChanged(_ string, from, to gobreaker.State) {
	level := slog.LevelInfo
	msg := "fragcache: cache backend circuit breaker " + to.String()
	switch to {
	case gobreaker.StateOpen:
		br.opens.Add(1)
		level = slog.LevelWarn
		msg += ": skipping the backend (blocks render uncached)"
	case gobreaker.StateHalfOpen:
		msg += ": probing the backend"
	case gobreaker.StateClosed:
		msg += ": backend back"
	}
	br.logger.Log(context.Background(), level, msg, "backend", br.name, "from", from.String(), "to", to.String())
}

// Unwrap returns the guarded backend.
func (br *Breaker) Unwrap() Backend { return br.b }

// State returns the breaker's current state.
func (br *Breaker) State() BreakerState { return breakerState(br.cb.State()) }

// Stats returns the breaker's state and counters.
func (br *Breaker) Stats() BreakerStats {
	return BreakerStats{State: br.State(), Opens: br.opens.Load(), Skipped: br.skips.Load()}
}

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// errNotLearnt is the outcome reported for a call that says nothing about
// the backend (see do); IsExcluded recognises it.
var errNotLearnt = errors.New("backends: call says nothing about the backend")

// do runs op, one operation on the backend, if the breaker admits it, and
// reports its outcome; a refused operation returns ErrBreakerOpen. The
// outcome is reported even when op panics (as an exclusion), so that a
// panicking probe never keeps the half-open breaker's one probe slot.
// A call cut short by its caller's deadline counts only if it ran for at
// least SlowCall: a caller with 1 ms left says nothing about a backend
// that answers in 20.
func (br *Breaker) do(ctx context.Context, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err // the caller is gone: no call, and nothing learnt
	}
	done, err := br.cb.Allow()
	if err != nil {
		br.skips.Add(1)
		return ErrBreakerOpen
	}
	began := time.Now()
	outcome := errNotLearnt // until op returns: a panic is not learnt from
	defer func() { done(outcome) }()
	err = op()
	outcome = err
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && time.Since(began) < br.slowCall {
		outcome = errNotLearnt
	}
	return err
}

// backendFailure reports whether err says the backend is unreachable,
// unresponsive or misbehaving (see Breaker).
func backendFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, ErrUnavailable)
}

// Get reads through the breaker.
func (br *Breaker) Get(ctx context.Context, key string) (v []byte, found bool, err error) {
	err = br.do(ctx, func() error {
		v, found, err = br.b.Get(ctx, key)
		return err
	})
	return v, found, err
}

// GetMany reads through the breaker.
func (br *Breaker) GetMany(ctx context.Context, keys []string) (v [][]byte, err error) {
	err = br.do(ctx, func() error {
		v, err = br.b.GetMany(ctx, keys)
		return err
	})
	return v, err
}

// Set writes through the breaker.
func (br *Breaker) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return br.do(ctx, func() error { return br.b.Set(ctx, key, value, ttl) })
}

// SetMany writes through the breaker.
func (br *Breaker) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	return br.do(ctx, func() error { return br.b.SetMany(ctx, items, ttl) })
}

// Add writes through the breaker.
func (br *Breaker) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (added bool, err error) {
	err = br.do(ctx, func() error {
		added, err = br.b.Add(ctx, key, value, ttl)
		return err
	})
	return added, err
}

// Delete deletes through the breaker.
func (br *Breaker) Delete(ctx context.Context, key string) (deleted bool, err error) {
	err = br.do(ctx, func() error {
		deleted, err = br.b.Delete(ctx, key)
		return err
	})
	return deleted, err
}

// DeleteMany deletes through the breaker.
func (br *Breaker) DeleteMany(ctx context.Context, keys []string) (n int, err error) {
	err = br.do(ctx, func() error {
		n, err = br.b.DeleteMany(ctx, keys)
		return err
	})
	return n, err
}

// Has reads through the breaker.
func (br *Breaker) Has(ctx context.Context, key string) (ok bool, err error) {
	err = br.do(ctx, func() error {
		ok, err = br.b.Has(ctx, key)
		return err
	})
	return ok, err
}

// Inc writes through the breaker.
func (br *Breaker) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (n int64, err error) {
	err = br.do(ctx, func() error {
		n, err = br.b.Inc(ctx, key, delta, ttl)
		return err
	})
	return n, err
}

// Clear clears through the breaker.
func (br *Breaker) Clear(ctx context.Context, prefix string) error {
	return br.do(ctx, func() error { return br.b.Clear(ctx, prefix) })
}

// Close closes the guarded backend; it never waits for the breaker.
func (br *Breaker) Close() error { return br.b.Close() }

// Ping pings the guarded backend if it is a [Pinger], whatever the
// breaker's state, and is not counted by the breaker: a readiness probe
// asks about the server, not about the breaker. It returns nil for a
// backend that is not a Pinger.
func (br *Breaker) Ping(ctx context.Context) error {
	if p, ok := br.b.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Breaker returns the circuit breaker guarding the cache's backend, or nil
// if it has none (see Open).
func (c *Cache) Breaker() *Breaker {
	b := c.backend
	if n, ok := b.(*NearCache); ok { // Open puts a near cache outside the breaker
		b = n.b
	}
	br, _ := b.(*Breaker)
	return br
}

// unwrapBreaker returns the backend a Breaker guards, or b itself.
func unwrapBreaker(b Backend) Backend {
	if br, ok := b.(*Breaker); ok {
		return br.b
	}
	return b
}

// The CACHE_OPTIONS keys of the circuit breaker Open puts around a
// backend; every backend accepts them.
const (
	breakerFailuresOption = "breaker_failures" // 0 turns the breaker off
	breakerCooldownOption = "breaker_cooldown"
)

// takeBreakerOptions reads the breaker's CACHE_OPTIONS for the backend
// name and removes them from cfg.Options (on a copy), so that the
// backend's factory does not see keys it does not know. on reports
// whether Open should guard the backend: by default for networked
// backends, or when breaker_failures asks for it.
func takeBreakerOptions(name string, cfg *Config) (opts BreakerOptions, on bool, err error) {
	opts = BreakerOptions{Name: name, Logger: cfg.Logger}
	on = builtins[name].networked
	fv, hasF := cfg.Options[breakerFailuresOption]
	_, hasC := cfg.Options[breakerCooldownOption]
	if !hasF && !hasC {
		return opts, on, nil
	}
	if hasF {
		n, ok := cacheopt.AsInt(fv)
		if !ok || n < 0 {
			return opts, false, fmt.Errorf("%w: CACHE_OPTIONS %s: got %v (%T), want a number of failures (0 turns the breaker off)", ErrConfig, breakerFailuresOption, fv, fv)
		}
		opts.Failures, on = n, n > 0
	}
	if cv, ok := cfg.Options[breakerCooldownOption]; ok {
		d, err := cacheopt.ParseDuration(cv)
		if err != nil {
			return opts, false, fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, breakerCooldownOption, err)
		}
		opts.Cooldown = d
	}
	opts2 := make(map[string]any, len(cfg.Options))
	for k, v := range cfg.Options {
		if k != breakerFailuresOption && k != breakerCooldownOption {
			opts2[k] = v
		}
	}
	cfg.Options = opts2
	return opts, on, nil
}
