package redis_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// fakeRESP is a hostile Redis impersonator on 127.0.0.1: it answers the
// commands go-redis sends when it connects (HELLO, CLIENT, PING, SELECT)
// as Redis 7 does, and every other command as reply says. A nil reply
// closes the connection; a reply is otherwise written and the connection
// kept open, so that a client waiting for bytes a header announced would
// wait until its read timeout.
type fakeRESP struct {
	ln    net.Listener
	reply func(cmd []string) []byte

	mu    sync.Mutex
	conns []net.Conn
	cmds  []string
	wg    sync.WaitGroup
}

func startFakeRESP(t *testing.T, reply func(cmd []string) []byte) *fakeRESP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeRESP{ln: ln, reply: reply}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	return f
}

func (f *fakeRESP) addr() string { return f.ln.Addr().String() }

func (f *fakeRESP) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeRESP) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeRESP) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Go(func() { f.handle(c) })
	}
}

const fakeHello = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.0\r\n$5\r\nproto\r\n:3\r\n" +
	"$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"

func (f *fakeRESP) handle(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		cmd, err := readCommand(r)
		if err != nil {
			return
		}
		f.mu.Lock()
		f.cmds = append(f.cmds, strings.Join(cmd, " "))
		f.mu.Unlock()
		var out []byte
		switch strings.ToUpper(cmd[0]) {
		case "HELLO":
			out = []byte(fakeHello)
		case "CLIENT", "SELECT", "AUTH":
			out = []byte("+OK\r\n")
		case "PING":
			out = []byte("+PONG\r\n")
		default:
			if out = f.reply(cmd); out == nil {
				return
			}
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// readCommand reads one command as clients send them: an array of bulk
// strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 4 || line[0] != '*' {
		return nil, fmt.Errorf("not a command: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, fmt.Errorf("bad command length %q", line)
	}
	cmd := make([]string, n)
	for i := range cmd {
		if line, err = r.ReadString('\n'); err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil || size < 0 || size > 1<<20 {
			return nil, fmt.Errorf("bad argument length %q", line)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		cmd[i] = string(b[:size])
	}
	return cmd, nil
}

// splitHostPort splits addr into the CACHE_REDIS_HOST and CACHE_REDIS_PORT
// settings.
func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(port)
	require.NoError(t, err)
	return host, n
}

// hostileReplies are what an impersonator answers to a read. Each would
// make go-redis allocate far beyond its size; the first kills the process
// without the bound.
var hostileReplies = []struct {
	name  string
	reply string
}{
	{"64 GiB bulk string", "$68719476736\r\n"},
	{"1 GiB bulk string", "$1073741824\r\n"},
	{"bulk string of 18 digits", "$999999999999999999\r\n"},
	{"bulk string of 30 digits", "$999999999999999999999999999999\r\n"},
	{"4 Gi-element array", "*4294967296\r\n"},
	{"billion-pair map", "%1000000000\r\n"},
	{"billion-pair attribute", "|1000000000\r\n"},
	{"arrays nested 100000 deep", strings.Repeat("*1\r\n", 100000)},
	{"nested arrays announcing 48 MiB each", strings.Repeat("*3000000\r\n", 8)},
	{"verbatim string of 16 GiB", "=17179869184\r\n"},
	{"blob error of 16 GiB", "!17179869184\r\n"},
	{"never-ending simple string", "+" + strings.Repeat("x", 2<<20)},
	{"never-ending error", "-ERR " + strings.Repeat("x", 2<<20)},
}

// hostileMaxValueSize is the limit of these tests: small, so that a line
// of a few MiB already breaks it.
const hostileMaxValueSize = 1 << 20

func TestRedisHostileServerReplies(t *testing.T) {
	for _, typ := range []string{"RedisCache", "RedisCache over RESP2"} {
		for _, h := range hostileReplies {
			t.Run(typ+"/"+h.name, func(t *testing.T) {
				fake := startFakeRESP(t, func(cmd []string) []byte { return []byte(h.reply) })
				host, port := splitHostPort(t, fake.addr())
				opts := map[string]any{"read_timeout": "20s", "max_value_size": hostileMaxValueSize}
				if typ != "RedisCache" {
					opts["protocol"] = 2
				}
				b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host,
					"CACHE_REDIS_PORT": port, "CACHE_OPTIONS": opts})
				var err2 error
				alloc := testkit.Allocated(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_, _, err2 = b.Get(ctx, "k")
				})
				require.ErrorIs(t, err2, redis.ErrReplyTooLarge)
				assert.Contains(t, err2.Error(), "max_value_size")
				assert.Contains(t, err2.Error(), fake.addr(), "the error names the server")
				assert.Less(t, alloc, uint64(2*hostileMaxValueSize+8<<20), "bytes allocated by Get")
				var gets int
				for _, c := range fake.commands() {
					if strings.HasPrefix(c, "get ") {
						gets++
					}
				}
				assert.Equal(t, 1, gets, "the refusal is not retried")
			})
		}
	}
}

// TestRedisHostileServerSentinelAndCluster checks that the connections of
// Sentinel clients (to the sentinels and to the master) and of cluster
// clients are bounded too.
func TestRedisHostileServerSentinelAndCluster(t *testing.T) {
	const huge = "$68719476736\r\n"
	opts := map[string]any{"read_timeout": "20s", "max_value_size": hostileMaxValueSize, "max_retries": 0}
	run := func(t *testing.T, b backends.Backend) error {
		var err error
		alloc := testkit.Allocated(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _, err = b.Get(ctx, "k")
		})
		assert.Less(t, alloc, uint64(2*hostileMaxValueSize+8<<20), "bytes allocated by Get")
		return err
	}
	t.Run("sentinel answering the master query", func(t *testing.T) {
		sentinel := startFakeRESP(t, func(cmd []string) []byte { return []byte(huge) })
		b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisSentinelCache",
			"CACHE_REDIS_SENTINELS": []string{sentinel.addr()}, "CACHE_OPTIONS": opts})
		require.Error(t, run(t, b))
		assert.Contains(t, strings.Join(sentinel.commands(), "\n"), "get-master-addr-by-name")
	})
	t.Run("master behind an honest sentinel", func(t *testing.T) {
		master := startFakeRESP(t, func(cmd []string) []byte {
			if strings.EqualFold(cmd[0], "ROLE") {
				return []byte("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")
			}
			return []byte(huge)
		})
		host, port, err := net.SplitHostPort(master.addr())
		require.NoError(t, err)
		sentinel := startFakeRESP(t, func(cmd []string) []byte {
			if len(cmd) > 1 && strings.EqualFold(cmd[1], "get-master-addr-by-name") {
				return fmt.Appendf(nil, "*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(host), host, len(port), port)
			}
			if strings.EqualFold(cmd[0], "SUBSCRIBE") {
				// go-redis's pubsub trusts these answers' shape: *0 here
				// panics in its goroutine (PubSub.newMessage).
				var out []byte
				for i, ch := range cmd[1:] {
					out = fmt.Appendf(out, "*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n", len(ch), ch, i+1)
				}
				return out
			}
			return []byte("*0\r\n")
		})
		b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisSentinelCache",
			"CACHE_REDIS_SENTINELS": []string{sentinel.addr()}, "CACHE_OPTIONS": opts})
		require.ErrorIs(t, run(t, b), redis.ErrReplyTooLarge)
	})
	t.Run("cluster node answering CLUSTER SLOTS", func(t *testing.T) {
		node := startFakeRESP(t, func(cmd []string) []byte { return []byte(huge) })
		b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisClusterCache",
			"CACHE_REDIS_CLUSTER": node.addr(), "CACHE_OPTIONS": opts})
		err := run(t, b)
		require.Error(t, err)
		assert.Contains(t, strings.ToLower(strings.Join(node.commands(), "\n")), "cluster slots")
	})
}

// TestRedisRepliesUpToTheLimitPass stores values around the limit in a real
// Redis: those within it read back, a larger one is refused on write and,
// written by another client, fails to read with ErrReplyTooLarge; the
// backend goes on working afterwards.
func TestRedisRepliesUpToTheLimitPass(t *testing.T) {
	srv := testservers.Redis(t)
	host, port := splitHostPort(t, srv.Addr)
	const limit = 64 << 10
	for _, protocol := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(protocol), func(t *testing.T) {
			ctx := context.Background()
			b := openBackend(t, map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": port,
				"CACHE_OPTIONS": map[string]any{"max_value_size": limit, "protocol": protocol}})
			values := map[string][]byte{}
			for _, n := range []int{0, 1, limit - 1, limit} {
				k := "fits-" + strconv.Itoa(n)
				values[k] = []byte(strings.Repeat("v", n))
				require.NoError(t, b.Set(ctx, k, values[k], backends.NoExpiry))
			}
			for k, v := range values {
				got, ok, err := b.Get(ctx, k)
				require.NoError(t, err, k)
				require.True(t, ok, k)
				assert.Equal(t, v, got, k)
			}
			keys := []string{"fits-0", "fits-1", "missing", "fits-" + strconv.Itoa(limit)}
			many, err := b.GetMany(ctx, keys)
			require.NoError(t, err)
			for i, k := range keys {
				assert.Equal(t, values[k], many[i], k)
			}

			require.ErrorIs(t, b.Set(ctx, "too-big", make([]byte, limit+1), backends.NoExpiry), backends.ErrValueTooLarge,
				"the backend refuses to write what it could not read")
			// Another program (or an older fragcache) wrote it anyway.
			other := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
			t.Cleanup(func() { _ = other.Close() })
			require.NoError(t, other.Set(ctx, "too-big", make([]byte, limit+1), 0).Err())
			_, _, err = b.Get(ctx, "too-big")
			require.ErrorIs(t, err, redis.ErrReplyTooLarge)
			assert.Contains(t, err.Error(), fmt.Sprintf("bulk string of %d bytes", limit+1))
			_, err = b.GetMany(ctx, []string{"fits-1", "too-big"})
			require.ErrorIs(t, err, redis.ErrReplyTooLarge)

			got, ok, err := b.Get(ctx, "fits-1")
			require.NoError(t, err, "the next command gets a fresh connection")
			assert.True(t, ok)
			assert.Equal(t, values["fits-1"], got)
		})
	}
}

func TestLimitRedisReplies(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := context.Background()
	t.Run("a client for New", func(t *testing.T) {
		opt := &goredis.Options{Addr: srv.Addr}
		require.NoError(t, redis.LimitReplies(opt, 1000))
		client := goredis.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		b := redis.New(client, redis.Options{})
		require.NoError(t, b.Set(ctx, "small", []byte("v"), backends.NoExpiry))
		require.NoError(t, b.Set(ctx, "big", make([]byte, 1001), backends.NoExpiry))
		_, _, err := b.Get(ctx, "big")
		require.ErrorIs(t, err, redis.ErrReplyTooLarge)
		v, ok, err := b.Get(ctx, "small")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, []byte("v"), v)
	})
	t.Run("wraps the application's dialer", func(t *testing.T) {
		var dials int
		var mu sync.Mutex
		opt := &goredis.Options{Addr: srv.Addr, Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dials++
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		require.NoError(t, redis.LimitReplies(opt, 1000))
		client := goredis.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		require.NoError(t, client.Set(ctx, "big", make([]byte, 1001), backends.NoExpiry).Err())
		require.ErrorIs(t, client.Get(ctx, "big").Err(), redis.ErrReplyTooLarge)
		mu.Lock()
		assert.Positive(t, dials)
		mu.Unlock()
	})
	t.Run("every options type", func(t *testing.T) {
		for _, opt := range []any{&goredis.Options{}, &goredis.FailoverOptions{}, &goredis.ClusterOptions{}, &goredis.UniversalOptions{}} {
			require.NoError(t, redis.LimitReplies(opt, 0), "%T", opt)
		}
		require.ErrorIs(t, redis.LimitReplies(&goredis.Options{}, -1), backends.ErrConfig)
		require.Error(t, redis.LimitReplies(&goredis.RingOptions{}, 0))
		require.Error(t, redis.LimitReplies(nil, 0))
	})
	t.Run("TLS through the default dialer", func(t *testing.T) {
		// A TLS server that answers like Redis: the bounded dialer must
		// speak TLS when the options ask for it.
		certFile, keyFile := writeSelfSignedCert(t, t.TempDir())
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		require.NoError(t, err)
		fake := &fakeRESP{ln: ln, reply: func(cmd []string) []byte { return []byte("$68719476736\r\n") }}
		fake.wg.Go(fake.serve)
		t.Cleanup(fake.close)
		opt := &goredis.Options{Addr: ln.Addr().String(), TLSConfig: &tls.Config{InsecureSkipVerify: true}, MaxRetries: -1}
		require.NoError(t, redis.LimitReplies(opt, 1000))
		client := goredis.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		require.NoError(t, client.Ping(ctx).Err())
		require.ErrorIs(t, client.Get(ctx, "k").Err(), redis.ErrReplyTooLarge)
	})
}

func TestRedisMaxValueSizeOption(t *testing.T) {
	for _, typ := range []map[string]any{
		{"CACHE_TYPE": "RedisCache"},
		{"CACHE_TYPE": "RedisSentinelCache"},
		{"CACHE_TYPE": "RedisClusterCache", "CACHE_REDIS_CLUSTER": "127.0.0.1:1"},
	} {
		for _, bad := range []any{0, -5, "big", 1.5} {
			settings := map[string]any{"CACHE_OPTIONS": map[string]any{"max_value_size": bad}}
			for k, v := range typ {
				settings[k] = v
			}
			cfg, err := backends.FromMap(settings)
			require.NoError(t, err)
			_, err = backends.Open(cfg)
			require.ErrorIs(t, err, backends.ErrConfig, "%v %v", typ["CACHE_TYPE"], bad)
			assert.Contains(t, err.Error(), "max_value_size")
		}
	}
}

// redisDocumentedACL is the ACL user README's Redis section recommends:
// the commands the backend sends and the keys under the default prefix.
const redisDocumentedACL = "shop on >secret ~flask_cache_* resetchannels -@all " +
	"+get +set +incrby +exists +unlink +mget +eval +evalsha +scan +ping +hello"

// TestRedisDocumentedACLIsEnough keeps the README's ACL true: every
// operation works under it, over RESP2 and RESP3, and a key outside the
// prefix is refused.
func TestRedisDocumentedACLIsEnough(t *testing.T) {
	srv := testservers.Redis(t)
	ctx := context.Background()
	admin := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	defer admin.Close()
	args := []any{"ACL", "SETUSER"}
	for _, f := range strings.Fields(redisDocumentedACL) {
		args = append(args, f)
	}
	require.NoError(t, admin.Do(ctx, args...).Err())
	host, port := splitHostPort(t, srv.Addr)
	for _, protocol := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(protocol), func(t *testing.T) {
			cfg, err := backends.FromMap(map[string]any{"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": host, "CACHE_REDIS_PORT": port,
				"CACHE_REDIS_PASSWORD": "secret", "CACHE_OPTIONS": map[string]any{"username": "shop", "protocol": protocol}})
			require.NoError(t, err)
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.Backend().(*redis.Backend).Ping(ctx))
			require.NoError(t, c.Set(ctx, "a", "x"))
			var s string
			found, err := c.Get(ctx, "a", &s)
			require.NoError(t, err)
			assert.True(t, found)
			_, err = c.Add(ctx, "b", "y")
			require.NoError(t, err)
			n, err := c.Inc(ctx, "n", 2)
			require.NoError(t, err)
			assert.Equal(t, int64(2), n)
			_, err = c.Has(ctx, "a")
			require.NoError(t, err)
			_, err = c.GetMany(ctx, "a", "b")
			require.NoError(t, err)
			require.NoError(t, c.SetMany(ctx, map[string]any{"c": "1", "d": "2"}))
			_, err = c.Delete(ctx, "a")
			require.NoError(t, err)
			_, err = c.DeleteMany(ctx, "b", "c")
			require.NoError(t, err)
			require.NoError(t, c.Clear(ctx))
			err = c.Backend().Set(ctx, "not_the_prefix", []byte("v"), backends.NoExpiry)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "NOPERM")
		})
	}
}
