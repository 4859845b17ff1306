//go:build unix

package bench

import (
	"syscall"
	"time"
)

// cpuClock reads the CPU time this process has used, user and system, over
// all its threads.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
