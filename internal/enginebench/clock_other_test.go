//go:build !unix

package enginebench

import "time"

var start = time.Now()

// cpuClock is wall time where getrusage is not available.
func cpuClock() time.Duration { return time.Since(start) }
