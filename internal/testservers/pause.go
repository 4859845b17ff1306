package testservers

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Pause stops the server with SIGSTOP, its child processes too (uWSGI's
// worker), as a hung host would: connections are accepted by the kernel
// but nothing answers. Resume continues it.
func (s *Server) Pause() {
	s.t.Helper()
	pid := s.PID()
	s.signalTree(syscall.SIGSTOP)
	// A stopped child (uWSGI's worker) would outlive its killed parent
	// stopped: continue them all before the cleanup kills the server
	// (cleanups run last registered first).
	s.t.Cleanup(func() {
		if s.PID() == pid {
			for _, p := range append([]int{pid}, descendants(pid)...) {
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		}
	})
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.t.Helper()
	s.signalTree(syscall.SIGCONT)
}

// signalTree sends sig to the server process and its descendants, without
// waiting for anything.
func (s *Server) signalTree(sig syscall.Signal) {
	pid := s.PID()
	if pid == 0 {
		s.t.Fatalf("testservers: %s is not running", filepath.Base(s.bin))
	}
	for _, p := range append([]int{pid}, descendants(pid)...) {
		if err := syscall.Kill(p, sig); err != nil && err != syscall.ESRCH {
			s.t.Fatalf("testservers: signal %v to pid %d: %v", sig, p, err)
		}
	}
}

// descendants returns the processes below pid, from /proc (empty where
// there is no /proc).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(stat)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	frontier := []int{pid}
	for len(frontier) > 0 {
		var next []int
		for p, pp := range parent {
			for _, f := range frontier {
				if pp == f {
					out = append(out, p)
					next = append(next, p)
				}
			}
		}
		frontier = next
	}
	return out
}
