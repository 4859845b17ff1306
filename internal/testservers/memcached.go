package testservers

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Memcached starts a memcached with 64 MiB of memory and returns it once it
// answers the text protocol's version command.
func Memcached(t testing.TB) *Server {
	t.Helper()
	bin := RequireBinary(t, "memcached", "memcached")
	return startServer(t, serverSpec{
		bin:   bin,
		dir:   t.TempDir(),
		args:  func(port int) ([]string, error) { return memcachedArgs(port), nil },
		ready: memcachedReady,
	})
}

// SASLMemcachedServer is a memcached that requires SASL PLAIN
// authentication over the binary protocol, the only protocol it then
// speaks.
type SASLMemcachedServer struct {
	*Server
	// Username is the one user the server accepts.
	Username string
	// Password is Username's password.
	Password string
}

// SASLMemcached starts a memcached that authenticates Username and Password
// against a private sasldb, configured through SASL_CONF_PATH so nothing
// under /etc is touched, and returns it once it offers SASL PLAIN.
func SASLMemcached(t testing.TB) *SASLMemcachedServer {
	t.Helper()
	bin := RequireBinary(t, "memcached", "memcached")
	saslpasswd2 := RequireBinary(t, "saslpasswd2", "sasl2-bin")
	s := &SASLMemcachedServer{Username: "fragcache", Password: "fragcache-secret"}
	dir := t.TempDir()

	db := filepath.Join(dir, "sasldb2")
	cmd := exec.Command(saslpasswd2, "-a", "memcached", "-c", "-p", "-f", db, s.Username)
	cmd.Stdin = strings.NewReader(s.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testservers: saslpasswd2: %v: %s", err, out)
	}
	conf := fmt.Sprintf("mech_list: plain\nsasldb_path: %s\n", db)
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o600); err != nil {
		t.Fatalf("testservers: write SASL config: %v", err)
	}

	s.Server = startServer(t, serverSpec{
		bin:   bin,
		dir:   dir,
		env:   []string{"SASL_CONF_PATH=" + dir},
		args:  func(port int) ([]string, error) { return append(memcachedArgs(port), "-S"), nil },
		ready: func(s *Server) error { _, err := saslMechanisms(s.Addr); return err },
	})
	// Without the PLAIN plugin memcached starts fine but can never
	// authenticate anyone.
	mechs, err := saslMechanisms(s.Addr)
	if err != nil {
		t.Fatalf("testservers: list SASL mechanisms: %v", err)
	}
	if !strings.Contains(" "+mechs+" ", " PLAIN ") {
		missingDependency(t, fmt.Sprintf("memcached offers SASL mechanisms %q but not PLAIN (install the package libsasl2-modules)", mechs))
	}
	return s
}

// memcachedArgs is the command line of a foreground memcached on port.
func memcachedArgs(port int) []string {
	args := []string{"-p", strconv.Itoa(port), "-l", "127.0.0.1", "-U", "0", "-m", "64"}
	// memcached refuses to run as root unless told which user to be.
	if os.Geteuid() == 0 {
		name := "root"
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		args = append(args, "-u", name)
	}
	return args
}

// memcachedReady reports whether the server answers "version".
func memcachedReady(s *Server) error {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "version\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("version answered %q", line)
	}
	return nil
}

// saslMechanisms asks a memcached for its SASL mechanisms, which it answers
// before authentication, as a space-separated list.
func saslMechanisms(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	const opSASLListMechs = 0x20
	status, value, err := binaryRequest(conn, opSASLListMechs, nil, nil, nil)
	if err != nil {
		return "", err
	}
	if status != 0 {
		return "", fmt.Errorf("SASL list mechanisms: status %#x: %s", status, value)
	}
	return string(value), nil
}

// binaryRequest sends one memcached binary-protocol request and returns the
// response's status and value (the body after extras and key).
func binaryRequest(rw io.ReadWriter, opcode byte, extras, key, value []byte) (status uint16, respValue []byte, err error) {
	req := make([]byte, 24, 24+len(extras)+len(key)+len(value))
	req[0] = 0x80 // request magic
	req[1] = opcode
	binary.BigEndian.PutUint16(req[2:4], uint16(len(key)))
	req[4] = byte(len(extras))
	binary.BigEndian.PutUint32(req[8:12], uint32(len(extras)+len(key)+len(value)))
	req = append(append(append(req, extras...), key...), value...)
	if _, err := rw.Write(req); err != nil {
		return 0, nil, err
	}
	var hdr [24]byte
	if _, err := io.ReadFull(rw, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0] != 0x81 {
		return 0, nil, fmt.Errorf("memcached response magic %#x, want 0x81", hdr[0])
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[8:12]))
	if _, err := io.ReadFull(rw, body); err != nil {
		return 0, nil, err
	}
	skip := int(hdr[4]) + int(binary.BigEndian.Uint16(hdr[2:4]))
	if skip > len(body) {
		return 0, nil, fmt.Errorf("memcached response: extras and key (%d bytes) exceed body (%d bytes)", skip, len(body))
	}
	return binary.BigEndian.Uint16(hdr[6:8]), body[skip:], nil
}
