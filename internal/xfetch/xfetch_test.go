package xfetch

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		expiry int64
		took   uint32
		now    int64
		beta   float64
		want   Freshness
	}{
		{"no expiry", 0, 1000, 1e15, 1, Fresh},
		{"at expiry", 100, 1000, 100, 0, Stale},
		{"past expiry", 100, 1000, 5000, 1, Stale},
		{"before expiry without β", 100, 1000, 99, 0, Fresh},
		{"before expiry with a huge β", 100, math.MaxUint32, 99, 1e9, Early},
		{"long before expiry with a tiny β", 1e12, 1000, 0, 1e-9, Fresh},
		{"no compute time recorded", 100, 0, 99, 1e9, Fresh},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Judge(tt.expiry, tt.took, tt.now, tt.beta), tt.name)
	}
}

// With β = 1, a value that took 100 ms is refreshed early by about
// e^(−gap/Δ) of its reads at gap ms before expiry.
func TestJudgeEarlyProbability(t *testing.T) {
	const reads = 20000
	early := 0
	for range reads {
		if Judge(1000, 100_000, 1000-100, 1) == Early { // 100 ms before, Δ = 100 ms
			early++
		}
	}
	assert.InDelta(t, math.Exp(-1), float64(early)/reads, 0.03)
}

func TestMicros(t *testing.T) {
	assert.EqualValues(t, 1, Micros(0))
	assert.EqualValues(t, 1, Micros(time.Nanosecond))
	assert.EqualValues(t, 1500, Micros(1500*time.Microsecond))
	assert.EqualValues(t, uint32(math.MaxUint32), Micros(100*time.Hour))
}
