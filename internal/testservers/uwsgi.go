package testservers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// UWSGICacheName is the name of the cache a UWSGI server has when the test
// gives no --cache2 specification.
const UWSGICacheName = "fragcache"

// uwsgiDefaultCache is the --cache2 specification used when a test gives
// none: uWSGI's default 64 KiB item size, and room for 999 keys (slot 0 is
// reserved).
const uwsgiDefaultCache = "name=" + UWSGICacheName + ",items=1000,blocksize=65536"

// UWSGI starts a uWSGI server that serves only its cache plugin's remote
// interface on a uwsgi-protocol TCP socket, with one --cache2 cache per
// specification in caches (such as "name=c,items=100,blocksize=4096"), or
// one cache named UWSGICacheName when caches is empty. It returns the
// server once the first cache answers a clear.
//
// The server runs a master process, which uWSGI needs for its expiry
// sweeper, set to sweep every second (uWSGI's default is 3 s); the master
// kills its worker when it exits or dies (--no-orphans). SIGTERM stops it
// (--die-on-term) instead of reloading it, so Stop works as for the other
// servers. The cache lives in memory only: Restart empties it.
func UWSGI(t testing.TB, caches ...string) *Server {
	t.Helper()
	bin := RequireBinary(t, "uwsgi", "uwsgi-core")
	if len(caches) == 0 {
		caches = []string{uwsgiDefaultCache}
	}
	return startServer(t, serverSpec{
		bin: bin,
		dir: t.TempDir(),
		args: func(port int) ([]string, error) {
			args := []string{
				"--plugin", "cache", "--master", "--die-on-term", "--no-orphans",
				"--processes", "1", "--socket", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
				"--cache-expire-freq", "1",
			}
			for _, c := range caches {
				args = append(args, "--cache2", c)
			}
			return args, nil
		},
		ready: uwsgiReady,
	})
}

// uwsgiReady reports whether the server's first cache answers the cache
// plugin's magic "clear" command: a miss and a missing plugin both look like
// a closed connection, but a clear of an existing cache is confirmed. The
// server is new, so there is nothing to lose.
func uwsgiReady(s *Server) error {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := []byte{111, 0, 0, 17}
	req = binary.LittleEndian.AppendUint16(req, 3)
	req = append(req, "cmd"...)
	req = binary.LittleEndian.AppendUint16(req, 5)
	req = append(req, "clear"...)
	binary.LittleEndian.PutUint16(req[1:3], uint16(len(req)-4))
	if _, err := conn.Write(req); err != nil {
		return err
	}
	reply, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if len(reply) == 0 {
		return errors.New("cache clear was not answered (is the cache plugin loaded?)")
	}
	// 111, size, 17, then the var status=ok.
	want := []byte{111, 12, 0, 17, 6, 0, 's', 't', 'a', 't', 'u', 's', 2, 0, 'o', 'k'}
	if string(reply) != string(want) {
		return fmt.Errorf("cache clear answered % x, want % x", reply, want)
	}
	return nil
}
