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
	"testing"
	"time"
)

// SentinelMasterName is the name under which a SentinelSet's sentinels
// monitor its master.
const SentinelMasterName = "mymaster"

// Redis starts a standalone redis-server without persistence and returns it
// once it answers PING.
func Redis(t testing.TB) *Server {
	t.Helper()
	bin := RequireBinary(t, "redis-server", "redis-server")
	dir := t.TempDir()
	return startServer(t, serverSpec{
		bin:   bin,
		dir:   dir,
		args:  func(port int) ([]string, error) { return redisArgs(port, dir), nil },
		ready: redisReady,
	})
}

// SentinelSet is a Redis master, its replica and three sentinels that
// monitor the master as MasterName with a quorum of 2 and a down-after of
// 1 s, so a killed master is failed over in about 2.5 s.
type SentinelSet struct {
	// MasterName is the name the sentinels know the master by.
	MasterName string
	// Master is the server the sentinels monitor at start.
	Master *Server
	// Replica replicates Master and is the candidate for failover.
	Replica *Server
	// Sentinels are the three sentinel processes.
	Sentinels []*Server
	// SentinelAddrs are the sentinels' addresses, for client configuration.
	SentinelAddrs []string

	t testing.TB
}

// Sentinel starts a SentinelSet and returns it once the replica is in sync
// and every sentinel knows the replica and reports a usable quorum of 3.
func Sentinel(t testing.TB) *SentinelSet {
	t.Helper()
	bin := RequireBinary(t, "redis-server", "redis-server")
	set := &SentinelSet{MasterName: SentinelMasterName, t: t}

	masterDir := t.TempDir()
	set.Master = startServer(t, serverSpec{
		bin:   bin,
		dir:   masterDir,
		args:  func(port int) ([]string, error) { return redisArgs(port, masterDir), nil },
		ready: redisReady,
	})
	replicaDir := t.TempDir()
	set.Replica = startServer(t, serverSpec{
		bin: bin,
		dir: replicaDir,
		args: func(port int) ([]string, error) {
			return redisArgs(port, replicaDir, "--replicaof", "127.0.0.1", strconv.Itoa(set.Master.Port)), nil
		},
		ready: redisReady,
	})
	// Sentinels learn replicas from the master's INFO, so the link must be
	// up before they start.
	if err := waitFor(10*time.Second, func() error {
		return redisInfoHas(set.Replica.Addr, "replication", "master_link_status:up")
	}); err != nil {
		t.Fatalf("testservers: replica %s never linked to master %s: %v", set.Replica.Addr, set.Master.Addr, err)
	}

	for range 3 {
		dir := t.TempDir()
		s := startServer(t, serverSpec{
			bin: bin,
			dir: dir,
			args: func(port int) ([]string, error) {
				// Sentinel rewrites its config file with what it learns,
				// so it must be a writable file of the server's own.
				conf := filepath.Join(dir, "sentinel.conf")
				body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir \"%s\"\n"+
					"sentinel monitor %s 127.0.0.1 %d 2\n"+
					"sentinel down-after-milliseconds %[3]s 1000\n"+
					"sentinel failover-timeout %[3]s 5000\n"+
					"sentinel parallel-syncs %[3]s 1\n",
					port, dir, set.MasterName, set.Master.Port)
				if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
					return nil, fmt.Errorf("write sentinel config: %w", err)
				}
				return []string{conf, "--sentinel"}, nil
			},
			ready: redisReady,
		})
		set.Sentinels = append(set.Sentinels, s)
		set.SentinelAddrs = append(set.SentinelAddrs, s.Addr)
	}

	// Sentinels find each other through hello messages sent every 2 s.
	if err := waitFor(15*time.Second, func() error {
		for _, addr := range set.SentinelAddrs {
			reply, err := redisString(addr, "SENTINEL", "CKQUORUM", set.MasterName)
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", addr, err)
			}
			if !strings.HasPrefix(reply, "OK 3 ") {
				return fmt.Errorf("sentinel %s: ckquorum: %s", addr, reply)
			}
			replicas, err := redisDo(addr, "SENTINEL", "REPLICAS", set.MasterName)
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", addr, err)
			}
			if list, _ := replicas.([]any); len(list) == 0 {
				return fmt.Errorf("sentinel %s does not know the replica yet", addr)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("testservers: sentinels not ready: %v", err)
	}
	return set
}

// KillMaster kills the current Master with SIGKILL, which the sentinels
// answer by promoting Replica; follow it with WaitMaster(set.Replica.Addr).
func (set *SentinelSet) KillMaster() {
	set.t.Helper()
	set.Master.Kill()
}

// WaitMaster waits up to 20 s until every sentinel reports addr as the
// master's address, and fails the test otherwise.
func (set *SentinelSet) WaitMaster(addr string) {
	set.t.Helper()
	if err := waitFor(20*time.Second, func() error {
		for _, s := range set.SentinelAddrs {
			got, err := sentinelMasterAddr(s, set.MasterName)
			if err != nil {
				return err
			}
			if got != addr {
				return fmt.Errorf("sentinel %s reports master %s", s, got)
			}
		}
		return nil
	}); err != nil {
		set.t.Fatalf("testservers: sentinels never agreed on master %s: %v", addr, err)
	}
}

// sentinelMasterAddr asks the sentinel at addr for the current address of
// the master called name.
func sentinelMasterAddr(addr, name string) (string, error) {
	reply, err := redisDo(addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", addr, err)
	}
	hostPort, ok := reply.([]any)
	if !ok || len(hostPort) != 2 {
		return "", fmt.Errorf("sentinel %s: get-master-addr-by-name replied %v", addr, reply)
	}
	return net.JoinHostPort(fmt.Sprint(hostPort[0]), fmt.Sprint(hostPort[1])), nil
}

// ClusterSet is a Redis Cluster of three masters without replicas, which
// split the 16384 hash slots evenly.
type ClusterSet struct {
	// Nodes are the cluster's master processes.
	Nodes []*Server
	// Addrs are the nodes' addresses, for client configuration.
	Addrs []string
}

// Cluster starts a ClusterSet and returns it once every node reports
// cluster_state:ok, which takes about 2 s because a master waits that long
// after startup before it accepts writes.
func Cluster(t testing.TB) *ClusterSet {
	t.Helper()
	bin := RequireBinary(t, "redis-server", "redis-server")
	const nodes = 3
	set := &ClusterSet{}
	for range nodes {
		dir := t.TempDir()
		s := startServer(t, serverSpec{
			bin:  bin,
			dir:  dir,
			port: freeClusterPort,
			args: func(port int) ([]string, error) {
				return redisArgs(port, dir,
					"--cluster-enabled", "yes",
					"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
					"--cluster-node-timeout", "2000",
					"--cluster-announce-ip", "127.0.0.1"), nil
			},
			ready: redisReady,
		})
		set.Nodes = append(set.Nodes, s)
		set.Addrs = append(set.Addrs, s.Addr)
	}

	// What `redis-cli --cluster create` does, without needing redis-cli:
	// split the slots, give each node its own config epoch, then introduce
	// the nodes to the first one and let gossip do the rest.
	const slots = 16384
	for i, s := range set.Nodes {
		args := []string{"CLUSTER", "ADDSLOTS"}
		for slot := i * slots / nodes; slot < (i+1)*slots/nodes; slot++ {
			args = append(args, strconv.Itoa(slot))
		}
		if _, err := redisString(s.Addr, args...); err != nil {
			t.Fatalf("testservers: cluster addslots on %s: %v", s.Addr, err)
		}
		if _, err := redisString(s.Addr, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			t.Fatalf("testservers: cluster set-config-epoch on %s: %v", s.Addr, err)
		}
	}
	for _, s := range set.Nodes[1:] {
		if _, err := redisString(set.Addrs[0], "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(s.Port)); err != nil {
			t.Fatalf("testservers: cluster meet %s: %v", s.Addr, err)
		}
	}
	if err := waitFor(15*time.Second, func() error {
		for _, addr := range set.Addrs {
			if err := redisInfoHas(addr, "cluster", "cluster_state:ok"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("testservers: cluster not ok: %v", err)
	}
	return set
}

// redisArgs is the command line of a foreground redis-server on port that
// keeps nothing on disk; extra options follow.
func redisArgs(port int, dir string, extra ...string) []string {
	return append([]string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--daemonize", "no",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		// The default 5 s delay would make every replica wait that long
		// for its first sync.
		"--repl-diskless-sync-delay", "0",
	}, extra...)
}

// redisReady reports whether the server answers PING with PONG.
func redisReady(s *Server) error {
	reply, err := redisString(s.Addr, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("PING answered %q", reply)
	}
	return nil
}

// redisInfoHas reports nil when the INFO section of the server at addr, or
// CLUSTER INFO for section "cluster", contains the line want.
func redisInfoHas(addr, section, want string) error {
	args := []string{"INFO", section}
	if section == "cluster" {
		args = []string{"CLUSTER", "INFO"}
	}
	info, err := redisString(addr, args...)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if line == want {
			return nil
		}
	}
	return fmt.Errorf("%s: %s has no line %q", addr, strings.Join(args, " "), want)
}

// redisString runs one command and expects a string reply.
func redisString(addr string, args ...string) (string, error) {
	reply, err := redisDo(addr, args...)
	if err != nil {
		return "", err
	}
	s, ok := reply.(string)
	if !ok {
		return "", fmt.Errorf("%s: %s replied %v, not a string", addr, args[0], reply)
	}
	return s, nil
}

// redisDo sends one command on a new connection and returns the reply:
// string for simple and bulk strings, int64, []any, nil for a nil bulk
// string, or an error for an error reply. It is just enough RESP for
// readiness checks without depending on redis-cli or a client library.
func redisDo(addr string, args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(conn))
}

// readRESP reads one RESP2 reply.
func readRESP(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP reply line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, fmt.Errorf("redis replied: %s", body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2) // with the trailing CRLF
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		items := make([]any, n)
		for i := range items {
			if items[i], err = readRESP(r); err != nil {
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("unexpected RESP reply %q", line)
}
