package uwsgi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/internal/testservers"
)

// newClient returns a client for cache of a new uWSGI server started with
// the given --cache2 specifications.
func newClient(t *testing.T, cache string, caches ...string) *Client {
	t.Helper()
	srv := testservers.UWSGI(t, caches...)
	return &Client{Addr: srv.Addr, Cache: cache, DialTimeout: time.Second, Timeout: 3 * time.Second}
}

func TestCommandsAgainstUWSGI(t *testing.T) {
	ctx := t.Context()
	c := newClient(t, "c", "name=c,items=10,blocksize=1024")

	require.ErrorIs(t, c.Exists(ctx, "k"), ErrNoReply, "Exists of a missing key")
	_, _, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, ErrNoReply, "Get of a missing key")
	require.ErrorIs(t, c.Del(ctx, "k"), ErrNoReply, "Del of a missing key")

	require.NoError(t, c.Set(ctx, "k", 0, []byte("he"), nil, []byte("llo")), "Set of a missing key")
	v, expires, err := c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(v), "the value is the concatenation of the pieces")
	assert.Zero(t, expires, "ttl 0 never expires")
	require.NoError(t, c.Exists(ctx, "k"))

	require.ErrorIs(t, c.Set(ctx, "k", 0, []byte("other")), ErrNoReply, "Set refuses a present key")
	v, _, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(v))

	const ttl = 100
	before := time.Now().Unix()
	require.NoError(t, c.Update(ctx, "k", ttl, []byte("new")), "Update replaces a present key")
	after := time.Now().Unix()
	v, expires, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "new", string(v))
	assert.True(t, expires >= before+ttl && expires <= after+ttl, "expires %d, want the write time (%d..%d) + %d", expires, before, after, ttl)

	require.NoError(t, c.Update(ctx, "k", 0, []byte("lasting")))
	_, expires, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.Zero(t, expires, "Update with ttl 0 removes the expiry")

	require.NoError(t, c.Del(ctx, "k"))
	require.ErrorIs(t, c.Exists(ctx, "k"), ErrNoReply, "Exists after Del")

	for _, k := range []string{"a", "b", "bin\x00key"} {
		require.NoError(t, c.Update(ctx, k, 0, []byte{0, 0xff, '\n'}))
	}
	v, _, err = c.Get(ctx, "bin\x00key")
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0xff, '\n'}, v, "keys and values are binary-safe")
	require.NoError(t, c.Clear(ctx))
	for _, k := range []string{"a", "b", "bin\x00key"} {
		assert.ErrorIs(t, c.Exists(ctx, k), ErrNoReply, "Exists(%q) after Clear", k)
	}
}

func TestRefusals(t *testing.T) {
	ctx := t.Context()
	const blocksize = 1024
	c := newClient(t, "c", "name=c,items=3,blocksize="+strconv.Itoa(blocksize))

	big := bytes.Repeat([]byte("x"), 64<<10)
	assert.ErrorIs(t, c.Update(ctx, "big", 0, big), ErrReset,
		"a value far over the item size is refused before it is read")
	require.NoError(t, c.Update(ctx, "fits", 0, big[:blocksize]), "a value of exactly the item size")

	// items=3 leaves 2 usable slots: slot 0 is reserved.
	require.NoError(t, c.Update(ctx, "second", 0, []byte("v")))
	assert.ErrorIs(t, c.Update(ctx, "third", 0, []byte("v")), ErrNoReply, "Update of a new key in a full cache")
	assert.NoError(t, c.Update(ctx, "second", 0, []byte("w")), "Update of a present key in a full cache")

	unknown := *c
	unknown.Cache = "nosuch"
	_, _, err := unknown.Get(ctx, "fits")
	assert.ErrorIs(t, err, ErrNoReply, "Get from an unknown cache")
	assert.ErrorIs(t, unknown.Clear(ctx), ErrNoReply, "Clear of an unknown cache")
	assert.ErrorIs(t, unknown.Update(ctx, "k", 0, big), ErrReset, "Update of an unknown cache")
}

func TestMaxValueSizeOfReplies(t *testing.T) {
	ctx := t.Context()
	c := newClient(t, "c", "name=c,items=3,blocksize=1024")
	require.NoError(t, c.Update(ctx, "k", 0, make([]byte, 100)))
	c.MaxValueSize = 99
	_, _, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "100 bytes")
	c.MaxValueSize = 100
	_, _, err = c.Get(ctx, "k")
	assert.NoError(t, err)
}

func TestRequestTooLargeIsRefusedBeforeConnecting(t *testing.T) {
	// Nothing listens there, so reaching the network would be a different
	// error.
	c := &Client{Addr: "127.0.0.1:1", DialTimeout: time.Second}
	_, _, err := c.Get(t.Context(), strings.Repeat("k", maxVars))
	require.ErrorIs(t, err, ErrTooLarge)
}

// fakeServer accepts connections on l and hands each to serve; it stops
// when the test ends.
func fakeServer(t *testing.T, l net.Listener, serve func(conn net.Conn)) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			serve(conn)
			conn.Close()
		}
	}()
}

func tcpListener(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l
}

// readRequest reads one request and returns its vars and the body that
// followed them, reading size bytes of body if a size var is present.
func readRequest(conn net.Conn) (map[string]string, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, nil, err
	}
	if hdr[0] != modifier1 || hdr[3] != modifier2 {
		return nil, nil, errors.New("bad modifiers")
	}
	b := make([]byte, binary.LittleEndian.Uint16(hdr[1:3]))
	if _, err := io.ReadFull(conn, b); err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	if err := parseVars(b, func(k, v []byte) error { vars[string(k)] = string(v); return nil }); err != nil {
		return nil, nil, err
	}
	var body []byte
	if s, ok := vars["size"]; ok {
		n, _ := strconv.Atoi(s)
		body = make([]byte, n)
		if _, err := io.ReadFull(conn, body); err != nil {
			return nil, nil, err
		}
	}
	return vars, body, nil
}

func encodeReply(vars ...string) []byte {
	b := []byte{modifier1, 0, 0, modifier2}
	for i := 0; i < len(vars); i += 2 {
		b = appendVar(b, vars[i], vars[i+1])
	}
	binary.LittleEndian.PutUint16(b[1:3], uint16(len(b)-4))
	return b
}

func TestRequestEncoding(t *testing.T) {
	type request struct {
		vars map[string]string
		body string
	}
	tests := []struct {
		name  string
		cache string
		call  func(ctx context.Context, c *Client) error
		want  request
	}{
		{"get", "", func(ctx context.Context, c *Client) error { _, _, err := c.Get(ctx, "k"); return err },
			request{vars: map[string]string{"cmd": "get", "key": "k"}}},
		{"get from a named cache", "mine", func(ctx context.Context, c *Client) error { _, _, err := c.Get(ctx, "k"); return err },
			request{vars: map[string]string{"cmd": "get", "key": "k", "cache": "mine"}}},
		{"exists", "", func(ctx context.Context, c *Client) error { return c.Exists(ctx, "k") },
			request{vars: map[string]string{"cmd": "exists", "key": "k"}}},
		{"set without ttl", "", func(ctx context.Context, c *Client) error { return c.Set(ctx, "k", 0, []byte("ab"), []byte("c")) },
			request{vars: map[string]string{"cmd": "set", "key": "k", "size": "3"}, body: "abc"}},
		{"update with ttl", "mine", func(ctx context.Context, c *Client) error { return c.Update(ctx, "k", 42, []byte("v")) },
			request{vars: map[string]string{"cmd": "update", "key": "k", "cache": "mine", "size": "1", "expires": "42"}, body: "v"}},
		{"del", "", func(ctx context.Context, c *Client) error { return c.Del(ctx, "k") },
			request{vars: map[string]string{"cmd": "del", "key": "k"}}},
		{"clear", "mine", func(ctx context.Context, c *Client) error { return c.Clear(ctx) },
			request{vars: map[string]string{"cmd": "clear", "cache": "mine"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tcpListener(t)
			got := make(chan request, 1)
			fakeServer(t, l, func(conn net.Conn) {
				vars, body, err := readRequest(conn)
				if err != nil {
					t.Errorf("server: %v", err)
				}
				got <- request{vars, string(body)}
				if vars["cmd"] == "get" {
					_, _ = conn.Write(append(encodeReply("status", "ok", "size", "1"), 'v'))
					return
				}
				_, _ = conn.Write(encodeReply("status", "ok"))
			})
			c := &Client{Addr: l.Addr().String(), Cache: tc.cache, Timeout: 3 * time.Second}
			require.NoError(t, tc.call(t.Context(), c))
			assert.Equal(t, tc.want, <-got)
		})
	}
}

func TestMalformedReplies(t *testing.T) {
	tests := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"no reply", nil, ErrNoReply},
		{"wrong modifier1", []byte{110, 0, 0, 17}, ErrProtocol},
		{"wrong modifier2", []byte{111, 0, 0, 7}, ErrProtocol},
		{"truncated header", []byte{111, 0}, ErrProtocol},
		{"vars shorter than the header says", []byte{111, 10, 0, 17, 1, 0}, ErrProtocol},
		{"a var longer than the block", []byte{111, 4, 0, 17, 9, 0, 'a', 'b'}, ErrProtocol},
		{"status other than ok", encodeReply("status", "notfound"), ErrNoReply},
		{"no status", encodeReply("size", "1"), ErrNoReply},
		{"size not a number", encodeReply("status", "ok", "size", "x"), ErrProtocol},
		{"negative size", encodeReply("status", "ok", "size", "-1"), ErrProtocol},
		{"expires not a number", encodeReply("status", "ok", "size", "0", "expires", "soon"), ErrProtocol},
		{"no size", encodeReply("status", "ok"), ErrProtocol},
		{"value shorter than its size", append(encodeReply("status", "ok", "size", "5"), "abc"...), ErrProtocol},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := tcpListener(t)
			fakeServer(t, l, func(conn net.Conn) {
				_, _, _ = readRequest(conn)
				_, _ = conn.Write(tc.reply)
			})
			c := &Client{Addr: l.Addr().String(), Timeout: 3 * time.Second}
			_, _, err := c.Get(t.Context(), "k")
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uwsgi.sock")
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	fakeServer(t, l, func(conn net.Conn) {
		_, _, _ = readRequest(conn)
		_, _ = conn.Write(append(encodeReply("status", "ok", "size", "2", "expires", "7"), "hi"...))
	})
	c := &Client{Network: "unix", Addr: path, Timeout: 3 * time.Second}
	v, expires, err := c.Get(t.Context(), "k")
	require.NoError(t, err)
	assert.Equal(t, "hi", string(v))
	assert.Equal(t, int64(7), expires)
}

func TestDeadlinesAndCancellation(t *testing.T) {
	// A server that reads the request and never answers.
	l := tcpListener(t)
	release := make(chan struct{})
	fakeServer(t, l, func(conn net.Conn) {
		_, _, _ = readRequest(conn)
		<-release
	})
	t.Cleanup(func() { close(release) })

	const short = 200 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func(t *testing.T) context.Context
		want    error
	}{
		{"the client's timeout", short, func(t *testing.T) context.Context { return t.Context() }, errTimeout},
		{"a context deadline sooner than the timeout", time.Hour, func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), short)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"a cancelled context", time.Hour, func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(short, cancel)
			return ctx
		}, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name+" ends a request the server does not answer", func(t *testing.T) {
			c := &Client{Addr: l.Addr().String(), Timeout: tc.timeout}
			start := time.Now()
			_, _, err := c.Get(tc.ctx(t), "k")
			elapsed := time.Since(start)
			if tc.want == errTimeout {
				var ne net.Error
				require.True(t, errors.As(err, &ne) && ne.Timeout(), "error %v is not a timeout", err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			assert.GreaterOrEqual(t, elapsed, short)
			assert.Less(t, elapsed, short+2*time.Second)
		})
	}
}

// errTimeout marks a row that expects a net.Error timeout.
var errTimeout = errors.New("timeout")

func TestAServerThatKeepsTheConnectionOpenDoesNotStallReplies(t *testing.T) {
	l := tcpListener(t)
	release := make(chan struct{})
	fakeServer(t, l, func(conn net.Conn) {
		_, _, _ = readRequest(conn)
		_, _ = conn.Write(encodeReply("status", "ok"))
		<-release
	})
	t.Cleanup(func() { close(release) }) // runs before fakeServer's cleanup
	// Without the bounded wait, the call would return at this timeout.
	c := &Client{Addr: l.Addr().String(), Timeout: 5 * time.Second}
	start := time.Now()
	require.NoError(t, c.Exists(t.Context(), "k"))
	assert.Less(t, time.Since(start), closeWait+time.Second)
}
