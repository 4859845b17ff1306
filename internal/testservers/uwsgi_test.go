package testservers

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// childPIDs lists the children of pid (Linux only; empty elsewhere).
func childPIDs(t *testing.T, pid int) []int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, n)
	}
	return pids
}

// requireGoneSoon waits up to 5 s for every pid to disappear: a uWSGI
// worker is not our child, so nothing here waits for it directly.
func requireGoneSoon(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.NoError(t, waitFor(5*time.Second, func() error {
			if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
				return fmt.Errorf("pid %d still exists (kill 0: %v)", pid, err)
			}
			return nil
		}))
	}
}

func TestUWSGI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		caches []string
		stop   func(s *Server)
	}{
		{"default cache, stopped by Stop", nil, func(s *Server) { s.Stop() }},
		{"two caches, killed by Kill", []string{"name=a,items=10", "name=b,items=10,blocksize=4096"}, func(s *Server) { s.Kill() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var pids []int
			withServers(t, func(t *testing.T) {
				s := UWSGI(t, tc.caches...)
				pids = append([]int{s.PID()}, childPIDs(t, s.PID())...)
				require.NoError(t, uwsgiReady(s))

				s.Restart()
				require.NoError(t, uwsgiReady(s), "after Restart on port %d", s.Port)
				requireGoneSoon(t, pids...)
				pids = append([]int{s.PID()}, childPIDs(t, s.PID())...)

				tc.stop(s)
				requireGoneSoon(t, pids...)
			})
			requireGoneSoon(t, pids...)
		})
	}
}

func TestUWSGIIsKilledByCleanup(t *testing.T) {
	t.Parallel()
	var pids []int
	withServers(t, func(t *testing.T) {
		s := UWSGI(t)
		pids = append([]int{s.PID()}, childPIDs(t, s.PID())...)
	})
	requireGoneSoon(t, pids...)
	require.Greater(t, len(pids), 1, "the master should have had a worker")
}
