//go:build !unix

package benchreport

import "time"

var start = time.Now()

// CPUClock is wall time since the program started where getrusage is not
// available.
func CPUClock() time.Duration { return time.Since(start) }
