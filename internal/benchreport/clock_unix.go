//go:build unix

package benchreport

import (
	"syscall"
	"time"
)

// CPUClock reads the CPU time this process has used (user and system, all
// threads, so the garbage collector's background work counts too). On a
// machine shared with other busy processes it measures what a render
// costs without the time spent waiting for a CPU, which wall time adds at
// random.
func CPUClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
