package testkit

import (
	"errors"
	"sync/atomic"
	"time"
)

// Gate is a template function for the body of a cache block in stampede
// tests: it counts its calls and, while armed, holds the render until Want
// other renders wait for it (as Waiting reports, e.g. from
// fragment.Stats.Waiting), then returns Fail, or "body" when Fail is nil.
type Gate struct {
	Waiting func() uint64
	Want    int
	Fail    error
	Calls   atomic.Int64
	Armed   atomic.Bool
}

// Call is the template function.
func (g *Gate) Call() (string, error) {
	g.Calls.Add(1)
	if g.Armed.Load() {
		stop := time.Now().Add(Deadline)
		for g.Waiting() < uint64(g.Want) {
			if time.Now().After(stop) {
				return "", errors.New("gate: timed out waiting for the other renders")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if g.Fail != nil {
		return "", g.Fail
	}
	return "body", nil
}
