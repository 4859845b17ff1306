package testservers

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startAttempts bounds how many fresh ports a server is tried on, since
	// a port found free can be taken by another process before the server
	// binds it.
	startAttempts = 3
	// readyTimeout bounds how long one start waits for the server to answer.
	readyTimeout = 10 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before using SIGKILL.
	stopGrace = 10 * time.Second
	// pollInterval paces every readiness and state poll.
	pollInterval = 10 * time.Millisecond
)

// Server is one server process started for a test. Its methods must be
// called from the test's goroutine, like the testing.TB methods they use.
type Server struct {
	// Addr is the server's address, "127.0.0.1:<Port>".
	Addr string
	// Port is the TCP port the server listens on; it stays the same across
	// Restart.
	Port int

	t       testing.TB
	bin     string
	argv    []string
	env     []string
	logPath string
	ready   func(*Server) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd has been waited for
}

// serverSpec says how to start one kind of server.
type serverSpec struct {
	bin  string              // executable path, from RequireBinary
	dir  string              // the server's private directory (a t.TempDir)
	env  []string            // added to the test's environment
	port func() (int, error) // nil means freePort
	// args returns the command line for a port; it may write config files
	// into dir.
	args func(port int) ([]string, error)
	// ready reports nil once the server answers its protocol.
	ready func(*Server) error
}

// startServer starts spec on a free port, retrying on fresh ports when the
// server exits before answering, and fails t with the log tail if it never
// comes up. The server is killed when t's cleanup runs.
func startServer(t testing.TB, spec serverSpec) *Server {
	t.Helper()
	s := &Server{
		t:       t,
		bin:     spec.bin,
		env:     spec.env,
		logPath: filepath.Join(spec.dir, "server.log"),
		ready:   spec.ready,
	}
	t.Cleanup(func() {
		if err := s.signal(syscall.SIGKILL, 0); err != nil {
			t.Errorf("testservers: cleanup: %v", err)
		}
	})
	pickPort := spec.port
	if pickPort == nil {
		pickPort = freePort
	}
	var err error
	for range startAttempts {
		var port int
		if port, err = pickPort(); err != nil {
			break
		}
		if s.argv, err = spec.args(port); err != nil {
			break
		}
		s.Port = port
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.launch(); err == nil {
			return s
		}
	}
	t.Fatalf("testservers: %s did not start: %v", filepath.Base(spec.bin), err)
	return nil
}

// PID returns the process ID of the most recently started server process.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop ends the server gracefully with SIGTERM (SIGKILL after 10 s) and
// waits for the process to exit.
func (s *Server) Stop() {
	s.t.Helper()
	if err := s.signal(syscall.SIGTERM, stopGrace); err != nil {
		s.t.Fatalf("testservers: stop: %v", err)
	}
}

// Kill ends the server abruptly with SIGKILL, as a crash would, and waits for
// the process to exit.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.signal(syscall.SIGKILL, 0); err != nil {
		s.t.Fatalf("testservers: kill: %v", err)
	}
}

// Restart starts the server again with the same command line on the same
// port, stopping it first if it is running, and waits until it answers.
// Data that the server does not persist is gone afterwards.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range startAttempts {
		if err = s.launch(); err == nil {
			return
		}
		// The old process's port may take a moment to be released.
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("testservers: restart %s on port %d: %v", filepath.Base(s.bin), s.Port, err)
}

// launch starts the process and waits until it answers; on failure the
// process is gone and the error includes the tail of its log.
func (s *Server) launch() error {
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fmt.Fprintf(logFile, "=== testservers: %s %s\n", s.bin, strings.Join(s.argv, " "))
	cmd := exec.Command(s.bin, s.argv...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	// The child has its own copy of the descriptor.
	_ = logFile.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("pid %d exited before answering on %s (%v); log tail:\n%s",
				cmd.Process.Pid, s.Addr, cmd.ProcessState, s.logTail())
		default:
		}
		// A server that lost its port to another process must not be
		// mistaken for the winner, hence the ownership check.
		err = s.ready(s)
		if err == nil && !ownsListener(cmd.Process.Pid, s.Port) {
			err = fmt.Errorf("pid %d does not own the listener on %s", cmd.Process.Pid, s.Addr)
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = s.signal(syscall.SIGKILL, 0)
			return fmt.Errorf("pid %d not ready on %s after %v: %w; log tail:\n%s",
				cmd.Process.Pid, s.Addr, readyTimeout, err, s.logTail())
		}
		time.Sleep(pollInterval)
	}
}

// signal sends sig to the running process, if any, and waits for it to exit,
// escalating to SIGKILL after grace.
func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig != syscall.SIGKILL {
		select {
		case <-done:
			return nil
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("pid %d (%s) did not exit after SIGKILL", cmd.Process.Pid, s.bin)
	}
}

// logTail returns the last lines of the server's log for failure messages.
func (s *Server) logTail() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePort returns a TCP port on 127.0.0.1 that the kernel found free.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port can be listened on at 127.0.0.1 right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// ownsListener reports whether process pid holds the listening TCP socket on
// 127.0.0.1:port, by matching the socket inode from /proc/net/tcp against
// the process's descriptors. Where /proc cannot tell, it answers true and the
// protocol check alone decides.
func ownsListener(pid, port int) bool {
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true
	}
	// /proc/net/tcp prints the address as the raw 32-bit word, so its byte
	// order follows the host's.
	suffix := fmt.Sprintf(":%04X", port)
	sockets := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		const listen = "0A"
		if len(f) > 9 && f[3] == listen &&
			(f[1] == "0100007F"+suffix || f[1] == "7F000001"+suffix) {
			sockets["socket:["+f[9]+"]"] = true
		}
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && sockets[target] {
			return true
		}
	}
	return false
}

// waitFor polls check until it returns nil or timeout passes, and then
// returns check's last error.
func waitFor(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// freeClusterPort returns a port that is free together with port+10000,
// where Redis Cluster puts its bus. Both stay below the kernel's usual
// ephemeral range (32768 and up) so outgoing connections do not take them.
func freeClusterPort() (int, error) {
	for range 100 {
		p := 10000 + rand.IntN(12000)
		if portFree(p) && portFree(p+10000) {
			return p, nil
		}
	}
	return 0, errors.New("no free pair of ports (port, port+10000) found in 100 tries")
}
