package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validRESP are replies Redis sends (RESP2 and RESP3), each complete.
var validRESP = []string{
	"+OK\r\n",
	"-ERR unknown command 'HELLO'\r\n",
	":-42\r\n",
	"$-1\r\n",
	"*-1\r\n",
	"$0\r\n\r\n",
	"$5\r\nhello\r\n",
	"$8\r\nwith\r\nnl\r\n",
	"*0\r\n",
	"*3\r\n$1\r\na\r\n$-1\r\n:1\r\n",
	"*2\r\n*2\r\n+a\r\n+b\r\n*1\r\n*1\r\n:1\r\n",
	"_\r\n",
	",3.14\r\n",
	"#t\r\n",
	"(3492890328409238509324850943850943825024385\r\n",
	"=15\r\ntxt:Some string\r\n",
	"!21\r\nSYNTAX invalid syntax\r\n",
	"%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n$1\r\nx\r\n",
	"~2\r\n+a\r\n+b\r\n",
	">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n",
	"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n",
	"|0\r\n+OK\r\n",
	"*1\r\n|1\r\n+k\r\n+v\r\n:5\r\n",
	fakeHelloForTest,
}

const fakeHelloForTest = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n" +
	"$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"

// feedSplit feeds data to s in pieces of n bytes.
func feedSplit(s *respScanner, data []byte, n int) error {
	for len(data) > 0 {
		k := min(n, len(data))
		if err := s.feed(data[:k]); err != nil {
			return err
		}
		data = data[k:]
	}
	return nil
}

func TestRESPScannerAcceptsRedisReplies(t *testing.T) {
	all := strings.Join(validRESP, "")
	for _, piece := range []int{1, 2, 3, 7, 64, len(all)} {
		s := respScanner{limit: 1 << 20, addr: "test"}
		require.NoError(t, feedSplit(&s, []byte(all), piece), "pieces of %d bytes", piece)
		assert.Equal(t, respType, s.state, "ends between replies")
		assert.Zero(t, s.depth)
	}
	for _, r := range validRESP {
		s := respScanner{limit: 1 << 20, addr: "test"}
		require.NoError(t, s.feed([]byte(r)), "%q", r)
		assert.Zero(t, s.depth, "%q is one whole reply", r)
		assert.Zero(t, s.debt, "%q is one whole reply", r)
		assert.Equal(t, respType, s.state, "%q is one whole reply", r)
	}
}

func TestRESPScannerLimits(t *testing.T) {
	const limit = 1000
	tests := []struct {
		name  string
		reply string
		ok    bool
	}{
		{"bulk string at the limit", "$1000\r\n" + strings.Repeat("x", 1000) + "\r\n", true},
		{"bulk string over the limit", "$1001\r\n", false},
		{"verbatim string over the limit", "=1001\r\n", false},
		{"blob error over the limit", "!1001\r\n", false},
		{"array at the limit", "*62\r\n" + strings.Repeat(":1\r\n", 62), true},
		{"array over the limit", "*63\r\n", false},
		{"map over the limit", "%21\r\n", false},
		{"line at the limit", "+" + strings.Repeat("x", 1000) + "\r\n", true},
		{"line over the limit", "+" + strings.Repeat("x", 1001) + "\r\n", false},
		{"error line over the limit", "-" + strings.Repeat("x", 1001) + "\r\n", false},
		{"nesting at the limit", strings.Repeat("*1\r\n", respMaxDepth) + ":1\r\n", true},
		{"nesting over the limit", strings.Repeat("*1\r\n", respMaxDepth+1), false},
		{"announcing too much ahead", "*3\r\n*62\r\n*62\r\n*62\r\n", false},
		{"announcing within twice the limit", "*2\r\n*62\r\n" + strings.Repeat(":1\r\n", 62) + "*62\r\n" + strings.Repeat(":1\r\n", 62), true},
		{"many full replies in a row", strings.Repeat("*62\r\n"+strings.Repeat("$-1\r\n", 62), 100), true},
		{"length of 19 digits", "$1000000000000000000\r\n", false},
		{"negative length other than -1", "$-2\r\n", false},
		{"length without digits", "$\r\n", false},
		{"length with a space", "$ 5\r\n", false},
		{"CR not followed by LF", "*1\rx", false},
		{"unknown type byte", "?1\r\n", false},
		{"inline reply", "OK\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, piece := range []int{1, 5, len(tt.reply)} {
				s := respScanner{limit: limit, addr: "10.0.0.1:6379"}
				err := feedSplit(&s, []byte(tt.reply), piece)
				if tt.ok {
					require.NoError(t, err)
					continue
				}
				require.Error(t, err)
				assert.Contains(t, err.Error(), "10.0.0.1:6379")
				require.Equal(t, err, s.feed([]byte("+OK\r\n")), "the error is sticky")
			}
		})
	}
}

func TestRESPScannerLinesStayShortUnderALargeLimit(t *testing.T) {
	for _, n := range []int{respMaxLine, respMaxLine + 1} {
		s := respScanner{limit: 64 << 20, addr: "a"}
		err := feedSplit(&s, []byte("-"+strings.Repeat("x", n)+"\r\n"), 32<<10)
		if n <= respMaxLine {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, ErrReplyTooLarge)
		}
	}
}

func TestRESPScannerTooLargeIsErrRedisReplyTooLarge(t *testing.T) {
	s := respScanner{limit: 10, addr: "a"}
	err := s.feed([]byte("$68719476736\r\n"))
	require.ErrorIs(t, err, ErrReplyTooLarge)
	assert.Contains(t, err.Error(), "68719476736")
	assert.Contains(t, err.Error(), "max_value_size")
	s = respScanner{limit: 10, addr: "a"}
	err = s.feed([]byte("?"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrReplyTooLarge, "not RESP is another error")
}

// replayConn is a net.Conn whose peer sends data and then closes; writes
// go nowhere.
type replayConn struct{ data []byte }

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzRedisLimit is the reply limit of FuzzRedisReplies.
const fuzzRedisLimit = 4096

// FuzzRedisReplies sends arbitrary bytes as a server's answers to go-redis
// through the bounded connection, and checks that the scanner does not
// depend on how the bytes are split, that nothing panics, and that go-redis
// allocates no more than 512 KiB (its connection buffers and client state)
// plus twice the limit plus 64 bytes per byte received.
func FuzzRedisReplies(f *testing.F) {
	for _, r := range validRESP {
		f.Add([]byte(r))
	}
	f.Add([]byte(fakeHelloForTest + "$68719476736\r\n"))
	f.Add([]byte(fakeHelloForTest + "$1073741824\r\n"))
	f.Add([]byte(fakeHelloForTest + "*4294967296\r\n"))
	f.Add([]byte(fakeHelloForTest + strings.Repeat("*1\r\n", 200)))
	f.Add([]byte(fakeHelloForTest + strings.Repeat("*100\r\n", 8)))
	f.Add([]byte("-ERR unknown command\r\n$3\r\nabc\r\n*2\r\n$1\r\na\r\n$-1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := respScanner{limit: fuzzRedisLimit}
		bytewise := respScanner{limit: fuzzRedisLimit}
		errWhole, errBytes := whole.feed(data), feedSplit(&bytewise, data, 1)
		if (errWhole == nil) != (errBytes == nil) || whole.state != bytewise.state || whole.depth != bytewise.depth {
			t.Fatalf("split-dependent scan: %v / %v", errWhole, errBytes)
		}

		// No retries, no waiting for a pooled connection, no CLIENT SETINFO:
		// each command reads the data from its start.
		opt := &goredis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1, PoolSize: 1, PoolTimeout: 10 * time.Millisecond, DisableIdentity: true,
			Dialer: func(context.Context, string, string) (net.Conn, error) {
				return newBoundedConn(&replayConn{data: data}, "fuzz:6379", fuzzRedisLimit), nil
			}}
		client := goredis.NewClient(opt)
		defer client.Close()
		ctx := context.Background()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_ = client.Get(ctx, "k").Err()
		_ = client.MGet(ctx, "a", "b").Err()
		runtime.ReadMemStats(&after)
		// Each command dials afresh (the replay ends in EOF) and reads at
		// most the whole data.
		bound := uint64(512<<10 + 2*(2*fuzzRedisLimit+64*len(data)))
		if got := after.TotalAlloc - before.TotalAlloc; got > bound {
			t.Fatalf("%d bytes of replies made go-redis allocate %d bytes (bound %d)", len(data), got, bound)
		}
	})
}

func TestBoundedConnKeepsSyscallConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer nc.Close()
	c := newBoundedConn(nc, "x", 10)
	sc, ok := c.(syscall.Conn)
	require.True(t, ok, "a TCP connection keeps its descriptor for go-redis's health check")
	_, err = sc.SyscallConn()
	require.NoError(t, err)
	assert.Equal(t, nc, c.(interface{ NetConn() net.Conn }).NetConn())

	plain := newBoundedConn(&replayConn{}, "x", 10)
	_, ok = plain.(syscall.Conn)
	assert.False(t, ok, "a connection without a descriptor does not pretend to have one")
	_, err = plain.Read(make([]byte, 1))
	assert.True(t, errors.Is(err, io.EOF))
}
