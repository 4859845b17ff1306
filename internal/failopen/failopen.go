// Package failopen is how fragment blocks, memoized functions and cached
// HTTP handlers treat a cache backend that fails: they go on without the
// cache, and the failure is counted and reported here. A call the
// backend's circuit breaker skipped (backends.ErrBreakerOpen) is counted
// apart and not logged, since the breaker logs its own state changes; any
// other failure is logged at most once per interval, with the number of
// reports suppressed since the last one, so that an outage costs a log line
// per interval rather than one per page.
//
// It imports backends (for ErrBreakerOpen) and the standard library.
package failopen

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// DefaultInterval is the least time between two reports when New is given
// 0.
const DefaultInterval = 10 * time.Second

// Reporter counts and logs a cache user's backend failures. It is safe for
// concurrent use.
type Reporter struct {
	logger   *slog.Logger
	msg      string
	interval time.Duration

	errors, skips atomic.Uint64

	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// New returns a Reporter that logs msg at level Warn to logger (nil means
// slog.Default()), at most once per interval (0 means DefaultInterval).
func New(logger *slog.Logger, interval time.Duration, msg string) *Reporter {
	if logger == nil {
		logger = slog.Default()
	}
	if interval == 0 {
		interval = DefaultInterval
	}
	return &Reporter{logger: logger, msg: msg, interval: interval}
}

// Count counts a backend failure and reports whether the backend's circuit
// breaker skipped the call (backends.ErrBreakerOpen), in which case it
// must not be logged.
func (r *Reporter) Count(err error) (skipped bool) {
	if errors.Is(err, backends.ErrBreakerOpen) {
		r.skips.Add(1)
		return true
	}
	r.errors.Add(1)
	return false
}

// Report logs err with attrs (slog key-value pairs), unless a report was
// logged less than the interval ago: then it is counted, and the count is
// logged with the next report as suppressed_since_last_report.
func (r *Reporter) Report(err error, attrs ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < r.interval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	r.logger.Warn(r.msg, append(attrs, "err", err, "suppressed_since_last_report", suppressed)...)
}

// Errors returns how many failures Count counted, skips excluded.
func (r *Reporter) Errors() uint64 { return r.errors.Load() }

// Skips returns how many calls the circuit breaker skipped.
func (r *Reporter) Skips() uint64 { return r.skips.Load() }

// Interval returns the least time between two reports.
func (r *Reporter) Interval() time.Duration { return r.interval }

// PassInterval makes the last report one interval older, as if the
// interval had passed: tests use it instead of waiting.
func (r *Reporter) PassInterval() {
	r.mu.Lock()
	r.last = r.last.Add(-r.interval)
	r.mu.Unlock()
}
