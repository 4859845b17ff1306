// Package xfetch judges how fresh a cached value is, for
// stale-while-revalidate and probabilistic early refresh, in one place for
// fragment blocks and memoized functions.
//
// Early refresh is probabilistic early expiration ("XFetch": Vattani,
// Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
// Prevention", VLDB 2015): each read refreshes the value early when
// now − Δ·β·ln(U) ≥ expiry, for U uniform in (0, 1] and Δ the time the
// value took to compute; the closer the expiry and the longer the
// computation, the likelier, so a hot value is recomputed about once,
// shortly before it expires, and never by all its readers at once.
package xfetch

import (
	"math"
	"math/rand/v2"
	"time"
)

// Freshness is what a cached value is worth at a moment.
type Freshness uint8

const (
	// Fresh: serve it.
	Fresh Freshness = iota
	// Early: serve it, and let one reader refresh it.
	Early
	// Stale: past its expiry, still stored for a grace period: serve it
	// only while one reader refreshes it.
	Stale
)

// Judge returns the freshness at now (Unix ms) of a value that goes stale
// at expiry (Unix ms; 0 = never) and took took µs to compute, with early
// refresh's β (0 = off).
func Judge(expiry int64, took uint32, now int64, beta float64) Freshness {
	switch {
	case expiry == 0:
		return Fresh
	case now >= expiry:
		return Stale
	case beta > 0 && took > 0:
		gap := float64(took) / 1000 * beta * -math.Log(1-rand.Float64()) // ms
		if float64(now)+gap >= float64(expiry) {
			return Early
		}
	}
	return Fresh
}

// Micros is d in whole microseconds, at least 1, as Judge's took holds it.
func Micros(d time.Duration) uint32 {
	us := d.Microseconds()
	switch {
	case us < 1:
		return 1
	case us > math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(us)
}
