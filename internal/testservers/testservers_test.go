package testservers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withServers runs body in a subtest, so that the cleanups of the servers
// it starts have run when withServers returns, and skips t if body was
// skipped because a server binary is missing.
func withServers(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	skipped := false
	t.Run("servers", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		body(t)
	})
	if skipped {
		t.SkipNow()
	}
}

// requireGone asserts that every pid has exited and been reaped.
func requireGone(t *testing.T, pids ...int) {
	t.Helper()
	require.NotEmpty(t, pids)
	for _, pid := range pids {
		require.NotZero(t, pid)
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "pid %d still exists", pid)
	}
}

// redisInfoField returns one field of an INFO section.
func redisInfoField(t *testing.T, addr, section, field string) string {
	t.Helper()
	info, err := redisString(addr, "INFO", section)
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return v
		}
	}
	t.Fatalf("INFO %s of %s has no %s", section, addr, field)
	return ""
}

// fakeTB records Skipf and Fatalf instead of ending the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Skipf(format string, args ...any)  { f.skipped = fmt.Sprintf(format, args...) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestRequireBinary(t *testing.T) {
	// The test binary itself is the one executable sure to exist.
	self, err := os.Executable()
	require.NoError(t, err)
	t.Setenv("PATH", filepath.Dir(self))
	name := filepath.Base(self)
	const missing = "fragcache-no-such-binary"
	tests := []struct {
		name, binary, env  string
		wantPath           string
		wantSkip, wantFail bool
	}{
		{name: "present binary returns its path", binary: name, wantPath: self},
		{name: "present binary ignores the env", binary: name, env: "1", wantPath: self},
		{name: "missing binary skips by default", binary: missing, wantSkip: true},
		{name: "missing binary skips unless env is 1", binary: missing, env: "yes", wantSkip: true},
		{name: "missing binary fails when env is 1", binary: missing, env: "1", wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireServersEnv, tt.env)
			f := &fakeTB{TB: t}
			got := RequireBinary(f, tt.binary, "some-package")
			assert.Equal(t, tt.wantPath, got)
			msg := f.skipped + f.failed
			assert.Equal(t, tt.wantSkip, f.skipped != "", "skipped: %q", f.skipped)
			assert.Equal(t, tt.wantFail, f.failed != "", "failed: %q", f.failed)
			if tt.wantSkip || tt.wantFail {
				assert.Contains(t, msg, tt.binary)
				assert.Contains(t, msg, "some-package")
				assert.Contains(t, msg, RequireServersEnv)
			}
		})
	}
}

func TestRedisStartsAndIsKilledByCleanup(t *testing.T) {
	t.Parallel()
	var pid int
	withServers(t, func(t *testing.T) {
		s := Redis(t)
		pid = s.PID()
		assert.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), s.Addr)
		reply, err := redisString(s.Addr, "PING")
		require.NoError(t, err)
		assert.Equal(t, "PONG", reply)
		assert.Equal(t, strconv.Itoa(pid), redisInfoField(t, s.Addr, "server", "process_id"))
		for _, cfg := range [][]any{{"save", ""}, {"appendonly", "no"}} {
			reply, err := redisDo(s.Addr, "CONFIG", "GET", cfg[0].(string))
			require.NoError(t, err)
			assert.Equal(t, cfg, reply, "the server must keep nothing on disk")
		}
	})
	requireGone(t, pid)
}

func TestServerStopKillRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		end        func(*Server) // nil: Restart a running server
		wantKilled bool          // ended by SIGKILL rather than a clean exit
	}{
		{name: "Kill then Restart", end: (*Server).Kill, wantKilled: true},
		{name: "Stop then Restart", end: (*Server).Stop},
		{name: "Restart while running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var pids []int
			withServers(t, func(t *testing.T) {
				s := Redis(t)
				oldPID, addr := s.PID(), s.Addr
				pids = append(pids, oldPID)
				_, err := redisString(s.Addr, "SET", "k", "v")
				require.NoError(t, err)
				if tt.end != nil {
					tt.end(s)
					requireGone(t, oldPID)
					status := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
					if tt.wantKilled {
						assert.Equal(t, syscall.SIGKILL, status.Signal(), "wait status %v", status)
					} else {
						assert.True(t, status.Exited() && status.ExitStatus() == 0, "wait status %v", status)
					}
					_, err = redisString(addr, "PING")
					require.Error(t, err, "nothing may answer on %s after the server ended", addr)
				}

				s.Restart()
				pids = append(pids, s.PID())
				assert.NotEqual(t, oldPID, s.PID())
				assert.Equal(t, addr, s.Addr)
				requireGone(t, oldPID)
				reply, err := redisDo(s.Addr, "GET", "k")
				require.NoError(t, err)
				assert.Nil(t, reply, "a restarted server keeps nothing on disk")
			})
			requireGone(t, pids...)
		})
	}
}

func TestSentinel(t *testing.T) {
	t.Parallel()
	var pids []int
	withServers(t, func(t *testing.T) {
		set := Sentinel(t)
		require.Len(t, set.Sentinels, 3)
		require.Len(t, set.SentinelAddrs, 3)
		for _, s := range append([]*Server{set.Master, set.Replica}, set.Sentinels...) {
			pids = append(pids, s.PID())
		}
		assert.Equal(t, "master", redisInfoField(t, set.Master.Addr, "replication", "role"))
		assert.Equal(t, "slave", redisInfoField(t, set.Replica.Addr, "replication", "role"))
		for i, addr := range set.SentinelAddrs {
			assert.Equal(t, set.Sentinels[i].Addr, addr)
			got, err := sentinelMasterAddr(addr, set.MasterName)
			require.NoError(t, err)
			assert.Equal(t, set.Master.Addr, got)
		}

		_, err := redisString(set.Master.Addr, "SET", "before-failover", "1")
		require.NoError(t, err)
		acked, err := redisDo(set.Master.Addr, "WAIT", "1", "2000")
		require.NoError(t, err)
		require.Equal(t, int64(1), acked, "the replica must have the key before the master dies")
		set.KillMaster()
		requireGone(t, pids[0])
		set.WaitMaster(set.Replica.Addr)
		require.NoError(t, waitFor(5*time.Second, func() error {
			return redisInfoHas(set.Replica.Addr, "replication", "role:master")
		}))
		got, err := redisString(set.Replica.Addr, "GET", "before-failover")
		require.NoError(t, err)
		assert.Equal(t, "1", got)
	})
	requireGone(t, pids...)
}

func TestCluster(t *testing.T) {
	t.Parallel()
	var pids []int
	withServers(t, func(t *testing.T) {
		set := Cluster(t)
		require.Len(t, set.Nodes, 3)
		require.Len(t, set.Addrs, 3)
		for i, n := range set.Nodes {
			pids = append(pids, n.PID())
			assert.Equal(t, n.Addr, set.Addrs[i])
			info, err := redisString(n.Addr, "CLUSTER", "INFO")
			require.NoError(t, err)
			assert.Contains(t, info, "cluster_state:ok\r\n")
			assert.Contains(t, info, "cluster_known_nodes:3\r\n")
			assert.Contains(t, info, "cluster_slots_assigned:16384\r\n")
		}
		// Exactly one node owns a key's slot; the others redirect to it by
		// its announced address.
		var owners, redirects []string
		for _, addr := range set.Addrs {
			_, err := redisString(addr, "SET", "foo", "bar")
			if err == nil {
				owners = append(owners, addr)
				continue
			}
			require.ErrorContains(t, err, "MOVED ")
			redirects = append(redirects, err.Error()[strings.LastIndex(err.Error(), " ")+1:])
		}
		require.Len(t, owners, 1)
		assert.Equal(t, []string{owners[0], owners[0]}, redirects)
	})
	requireGone(t, pids...)
}

func TestMemcached(t *testing.T) {
	t.Parallel()
	var pid int
	withServers(t, func(t *testing.T) {
		s := Memcached(t)
		pid = s.PID()
		conn, err := net.Dial("tcp", s.Addr)
		require.NoError(t, err)
		defer conn.Close()
		r := bufio.NewReader(conn)
		_, err = io.WriteString(conn, "version\r\nstats\r\n")
		require.NoError(t, err)
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(line, "VERSION "), "version answered %q", line)
		var statPID string
		for line != "END\r\n" {
			line, err = r.ReadString('\n')
			require.NoError(t, err)
			if v, ok := strings.CutPrefix(line, "STAT pid "); ok {
				statPID = strings.TrimSpace(v)
			}
		}
		assert.Equal(t, strconv.Itoa(pid), statPID)
	})
	requireGone(t, pid)
}

func TestSASLMemcached(t *testing.T) {
	t.Parallel()
	const (
		opGet      = 0x00
		opSet      = 0x01
		opSASLAuth = 0x21
		statusOK   = 0x00
		statusAuth = 0x20
	)
	var pid int
	withServers(t, func(t *testing.T) {
		s := SASLMemcached(t)
		pid = s.PID()
		tests := []struct {
			name       string
			password   string
			wantStatus uint16
		}{
			{name: "right password authenticates", password: s.Password, wantStatus: statusOK},
			{name: "wrong password is refused", password: s.Password + "x", wantStatus: statusAuth},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", s.Addr)
				require.NoError(t, err)
				defer conn.Close()
				require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
				status, _, err := binaryRequest(conn, opSASLAuth, nil, []byte("PLAIN"),
					[]byte("\x00"+s.Username+"\x00"+tt.password))
				require.NoError(t, err)
				require.Equal(t, tt.wantStatus, status)
				if status != statusOK {
					return
				}
				flagsAndExpiry := make([]byte, 8)
				status, _, err = binaryRequest(conn, opSet, flagsAndExpiry, []byte("k"), []byte(tt.name))
				require.NoError(t, err)
				require.Equal(t, uint16(statusOK), status)
				status, value, err := binaryRequest(conn, opGet, nil, []byte("k"), nil)
				require.NoError(t, err)
				require.Equal(t, uint16(statusOK), status)
				assert.Equal(t, tt.name, string(value))
			})
		}
		t.Run("unauthenticated get is refused", func(t *testing.T) {
			conn, err := net.Dial("tcp", s.Addr)
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
			status, _, err := binaryRequest(conn, opGet, nil, []byte("k"), nil)
			require.NoError(t, err)
			assert.Equal(t, uint16(statusAuth), status)
		})
	})
	requireGone(t, pid)
}

func TestServerStartFailureReportsLogTail(t *testing.T) {
	t.Parallel()
	bin := RequireBinary(t, "redis-server", "redis-server")
	f := &fakeTB{TB: t}
	// A fakeTB's Fatalf returns, so startServer tries every attempt and
	// then reports the last one.
	startServer(f, serverSpec{
		bin:   bin,
		dir:   t.TempDir(),
		args:  func(int) ([]string, error) { return []string{"--no-such-option", "x"}, nil },
		ready: redisReady,
	})
	assert.Contains(t, f.failed, "exited before answering")
	assert.Contains(t, f.failed, "no-such-option", "the failure must quote the server's own log")
}

func TestReadRESP(t *testing.T) {
	tests := []struct {
		name, in string
		want     any
		wantErr  string
	}{
		{name: "simple string", in: "+OK\r\n", want: "OK"},
		{name: "error", in: "-ERR bad\r\n", wantErr: "ERR bad"},
		{name: "integer", in: ":42\r\n", want: int64(42)},
		{name: "bulk string with CRLF inside", in: "$4\r\na\r\nb\r\n", want: "a\r\nb"},
		{name: "nil bulk string", in: "$-1\r\n", want: nil},
		{name: "nested array", in: "*2\r\n+a\r\n*1\r\n:1\r\n", want: []any{"a", []any{int64(1)}}},
		{name: "unknown type", in: "?x\r\n", wantErr: "unexpected RESP reply"},
		{name: "truncated bulk", in: "$5\r\nab", wantErr: io.ErrUnexpectedEOF.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readRESP(bufio.NewReader(strings.NewReader(tt.in)))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBinaryRequestRejectsBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		resp    []byte
		wantErr string
	}{
		{name: "wrong magic", resp: make([]byte, 24), wantErr: "magic"},
		{name: "key longer than body", resp: func() []byte {
			h := make([]byte, 24)
			h[0], h[3] = 0x81, 5
			return h
		}(), wantErr: "exceed body"},
		{name: "short header", resp: []byte{0x81}, wantErr: io.ErrUnexpectedEOF.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := &struct {
				io.Reader
				io.Writer
			}{strings.NewReader(string(tt.resp)), io.Discard}
			_, _, err := binaryRequest(rw, 0x0a, nil, nil, nil)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestOwnsListener(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp here; ownsListener answers true by design")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	closedPort, err := freePort()
	require.NoError(t, err)
	tests := []struct {
		name      string
		pid, port int
		want      bool
	}{
		{name: "this process owns its listener", pid: os.Getpid(), port: port, want: true},
		{name: "no listener on a closed port", pid: os.Getpid(), port: closedPort, want: false},
		{name: "another process does not own it", pid: os.Getppid(), port: port, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ownsListener(tt.pid, tt.port))
		})
	}
}

func TestFreeClusterPortLeavesTheBusPortFree(t *testing.T) {
	for range 5 {
		p, err := freeClusterPort()
		require.NoError(t, err)
		assert.True(t, p+10000 <= 65535, "bus port %d out of range", p+10000)
		for _, port := range []int{p, p + 10000} {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			require.NoError(t, err, "port %d", port)
			require.NoError(t, l.Close())
		}
	}
}

func TestCountingProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { // after the proxy's cleanup, which closes its connections
		echo.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})

	p := CountingProxy(t, "tcp", echo.Addr().String())
	const n = 5
	var conns []net.Conn
	for i := range n {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		conns = append(conns, c)
		msg := []byte{byte('a' + i)}
		_, err = c.Write(msg)
		require.NoError(t, err)
		got := make([]byte, 1)
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		assert.Equal(t, msg, got, "bytes pass through both ways")
	}
	assert.Equal(t, n, p.Open())
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool { return p.Open() == 0 }, 10*time.Second, pollInterval)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool { return p.Open() == 1 }, 10*time.Second, pollInterval)
	assert.Equal(t, n, p.Max())
	assert.Equal(t, n+1, p.Total())
}

func TestPauseAndResume(t *testing.T) {
	withServers(t, func(t *testing.T) {
		for _, srv := range []*Server{Redis(t), UWSGI(t)} {
			srv.Pause()
			conn, err := net.DialTimeout("tcp", srv.Addr, time.Second)
			require.NoError(t, err, "the kernel still accepts connections")
			_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
			_, _ = conn.Write([]byte("PING\r\n"))
			_, err = conn.Read(make([]byte, 16))
			var ne net.Error
			require.True(t, errors.As(err, &ne) && ne.Timeout(), "a paused server does not answer: %v", err)
			_ = conn.Close()
			srv.Resume()
			require.NoError(t, srv.ready(srv), "a resumed server answers")
		}
	})
}
