package memcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/fragcache/fragcache/internal/testservers"
)

func newClient(t testing.TB, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// dials is how many connections c has opened, over all servers.
func (c *Client) dialCount() int64 {
	var n int64
	for _, s := range c.servers {
		n += s.dials.Load()
	}
	return n
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no servers", Options{}, "no servers"},
		{"an address without a port", Options{Servers: []string{"127.0.0.1"}}, `"127.0.0.1" is not host:port`},
		{"an empty port", Options{Servers: []string{"127.0.0.1:"}}, `"127.0.0.1:" is not host:port`},
		{"a password without a username", Options{Servers: []string{"127.0.0.1:1"}, Password: "p"}, "password without a username"},
		{"a negative timeout", Options{Servers: []string{"127.0.0.1:1"}, Timeout: -1}, "must not be negative"},
		{"a negative dial timeout", Options{Servers: []string{"127.0.0.1:1"}, DialTimeout: -1}, "must not be negative"},
		{"a negative MaxIdleConns", Options{Servers: []string{"127.0.0.1:1"}, MaxIdleConns: -1}, "MaxIdleConns -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNewAcceptsSocketPathsAndEmptyHosts(t *testing.T) {
	c, err := New(Options{Servers: []string{"/run/memcached.sock", ":11211"}})
	require.NoError(t, err)
	assert.Equal(t, "unix", c.servers[0].network)
	assert.Equal(t, "127.0.0.1:11211", c.servers[1].addr)
}

func TestMalformedKeysFailBeforeAnyIO(t *testing.T) {
	c := newClient(t, Options{Servers: []string{"127.0.0.1:1"}}) // nothing listens there
	ctx := t.Context()
	for _, key := range []string{"", strings.Repeat("k", MaxKeyLen+1)} {
		_, err := c.Get(ctx, key)
		assert.ErrorIs(t, err, ErrMalformedKey)
		assert.ErrorIs(t, c.Set(ctx, Item{Key: key}), ErrMalformedKey)
		_, err = c.GetMulti(ctx, []string{"ok", key})
		assert.ErrorIs(t, err, ErrMalformedKey)
		errs := c.SetMulti(ctx, []Item{{Key: key}})
		require.Len(t, errs, 1)
		assert.ErrorIs(t, errs[0], ErrMalformedKey)
	}
	assert.Zero(t, c.dialCount())
}

func TestKeysOfAnyBytesUpTo250(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}})
	ctx := t.Context()
	for _, key := range []string{"a", "a key with spaces", "\x00\r\n", strings.Repeat("k", MaxKeyLen), "ключ"} {
		require.NoError(t, c.Set(ctx, Item{Key: key, Value: []byte(key)}))
		it, err := c.Get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, key, string(it.Value))
	}
}

func TestOperations(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}})
	ctx := t.Context()

	t.Run("Get of a missing key is ErrCacheMiss", func(t *testing.T) {
		_, err := c.Get(ctx, "missing")
		assert.Equal(t, ErrCacheMiss, err)
	})
	t.Run("Set then Get returns value and flags, and an empty value is not nil", func(t *testing.T) {
		for _, v := range [][]byte{[]byte("value"), {}, bytes.Repeat([]byte{0, '\r', '\n'}, 1000)} {
			require.NoError(t, c.Set(ctx, Item{Key: "k", Value: v, Flags: 42}))
			it, err := c.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, v, it.Value)
			assert.NotNil(t, it.Value)
			assert.Equal(t, uint32(42), it.Flags)
			assert.NotZero(t, it.CAS)
		}
	})
	t.Run("Add refuses a present key with ErrNotStored", func(t *testing.T) {
		require.NoError(t, c.Add(ctx, Item{Key: "add", Value: []byte("1")}))
		assert.Equal(t, ErrNotStored, c.Add(ctx, Item{Key: "add", Value: []byte("2")}))
		it, err := c.Get(ctx, "add")
		require.NoError(t, err)
		assert.Equal(t, "1", string(it.Value))
	})
	t.Run("CompareAndSwap writes only over the item it read", func(t *testing.T) {
		require.NoError(t, c.Set(ctx, Item{Key: "cas", Value: []byte("1")}))
		it, err := c.Get(ctx, "cas")
		require.NoError(t, err)
		require.NoError(t, c.CompareAndSwap(ctx, Item{Key: "cas", Value: []byte("2"), CAS: it.CAS}))
		assert.Equal(t, ErrCASConflict, c.CompareAndSwap(ctx, Item{Key: "cas", Value: []byte("3"), CAS: it.CAS}))
		assert.Equal(t, ErrCacheMiss, c.CompareAndSwap(ctx, Item{Key: "nocas", Value: []byte("3"), CAS: it.CAS}))
		got, err := c.Get(ctx, "cas")
		require.NoError(t, err)
		assert.Equal(t, "2", string(got.Value))
	})
	t.Run("Delete removes, then reports ErrCacheMiss", func(t *testing.T) {
		require.NoError(t, c.Set(ctx, Item{Key: "del", Value: []byte("x")}))
		require.NoError(t, c.Delete(ctx, "del"))
		assert.Equal(t, ErrCacheMiss, c.Delete(ctx, "del"))
	})
	t.Run("Incr creates with initial, adds, wraps at 2^64; NoCreate misses", func(t *testing.T) {
		n, err := c.Incr(ctx, "n", 5, 10, 0)
		require.NoError(t, err)
		assert.Equal(t, uint64(10), n)
		n, err = c.Incr(ctx, "n", 5, 10, 0)
		require.NoError(t, err)
		assert.Equal(t, uint64(15), n)
		n, err = c.Incr(ctx, "n", ^uint64(0), 0, NoCreate) // adding 2^64-1 subtracts 1
		require.NoError(t, err)
		assert.Equal(t, uint64(14), n)
		_, err = c.Incr(ctx, "absent", 1, 0, NoCreate)
		assert.Equal(t, ErrCacheMiss, err)
	})
	t.Run("Decr stops at 0", func(t *testing.T) {
		require.NoError(t, c.Set(ctx, Item{Key: "d", Value: []byte("3")}))
		n, err := c.Decr(ctx, "d", 5, 0, NoCreate)
		require.NoError(t, err)
		assert.Zero(t, n)
	})
	t.Run("Incr of a non-number is ErrNonNumeric naming the key", func(t *testing.T) {
		require.NoError(t, c.Set(ctx, Item{Key: "s", Value: []byte("abc")}))
		_, err := c.Incr(ctx, "s", 1, 0, NoCreate)
		assert.ErrorIs(t, err, ErrNonNumeric)
		assert.ErrorContains(t, err, `incr "s"`)
	})
	t.Run("a value over the item size is ErrTooLarge and the connection goes on", func(t *testing.T) {
		// A client limit above the server's item size (-I 1m), so that the
		// server is the one refusing.
		c := newClient(t, Options{Servers: []string{srv.Addr}, MaxValueSize: 4 << 20})
		err := c.Set(ctx, Item{Key: "big", Value: make([]byte, 2<<20)})
		assert.ErrorIs(t, err, ErrTooLarge)
		assert.ErrorContains(t, err, srv.Addr)
		require.NoError(t, c.Set(ctx, Item{Key: "after", Value: []byte("x")}))
		assert.Equal(t, int64(1), c.dialCount())
	})
	t.Run("FlushAll empties the server", func(t *testing.T) {
		require.NoError(t, c.Set(ctx, Item{Key: "f", Value: []byte("x")}))
		require.NoError(t, c.FlushAll(ctx))
		_, err := c.Get(ctx, "f")
		assert.Equal(t, ErrCacheMiss, err)
	})
	// Error statuses leave the connection usable: all of the above ran
	// on the one connection the first call opened.
	assert.Equal(t, int64(1), c.dialCount(), "connections opened")
}

func TestExpiration(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}})
	ctx := t.Context()
	tests := []struct {
		name string
		exp  uint32
		live bool
	}{
		{"0 never expires", 0, true},
		{"seconds from now", 3600, true},
		{"an absolute time in the future", uint32(time.Now().Add(40 * 24 * time.Hour).Unix()), true},
		{"an absolute time in the past", uint32(time.Now().Add(-time.Hour).Unix()), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, c.Set(ctx, Item{Key: "e", Value: []byte("x"), Expiration: tc.exp}))
			_, err := c.Get(ctx, "e")
			if tc.live {
				assert.NoError(t, err)
			} else {
				assert.Equal(t, ErrCacheMiss, err)
			}
		})
	}
}

func TestMultiKeyCalls(t *testing.T) {
	srvs := []*testservers.Server{testservers.Memcached(t), testservers.Memcached(t)}
	c := newClient(t, Options{Servers: []string{srvs[0].Addr, srvs[1].Addr}})
	ctx := t.Context()
	keys := make([]string, 200)
	items := make([]Item, len(keys))
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
		items[i] = Item{Key: keys[i], Value: []byte("value-" + strconv.Itoa(i)), Flags: uint32(i)}
	}
	require.Nil(t, c.SetMulti(ctx, items))

	t.Run("keys are spread over both servers", func(t *testing.T) {
		for _, srv := range srvs {
			one := newClient(t, Options{Servers: []string{srv.Addr}})
			got, err := one.GetMulti(ctx, keys)
			require.NoError(t, err)
			held := 0
			for _, it := range got {
				if it.Value != nil {
					held++
				}
			}
			assert.Greater(t, held, len(keys)/4, "server %s holds %d of %d keys", srv.Addr, held, len(keys))
		}
	})
	t.Run("GetMulti answers in order, with misses and repeated keys", func(t *testing.T) {
		ask := append([]string{"absent", keys[7]}, keys...)
		ask = append(ask, keys[7])
		got, err := c.GetMulti(ctx, ask)
		require.NoError(t, err)
		require.Len(t, got, len(ask))
		assert.Nil(t, got[0].Value)
		assert.Equal(t, "absent", got[0].Key)
		for i, k := range ask[1:] {
			j, _ := strconv.Atoi(strings.TrimPrefix(k, "key-"))
			assert.Equal(t, items[j].Value, got[i+1].Value, k)
			assert.Equal(t, uint32(j), got[i+1].Flags, k)
		}
	})
	t.Run("GetMulti of no keys", func(t *testing.T) {
		got, err := c.GetMulti(ctx, nil)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("DeleteMulti reports a miss per missing key", func(t *testing.T) {
		errs := c.DeleteMulti(ctx, []string{keys[0], "absent", keys[1]})
		require.Len(t, errs, 3)
		assert.NoError(t, errs[0])
		assert.Equal(t, ErrCacheMiss, errs[1])
		assert.NoError(t, errs[2])
		assert.Nil(t, c.DeleteMulti(ctx, keys[2:]), "all present")
	})
	t.Run("SetMulti reports the item that failed", func(t *testing.T) {
		errs := c.SetMulti(ctx, []Item{{Key: "ok", Value: []byte("x")}, {Key: "big", Value: make([]byte, 2<<20)}})
		require.Len(t, errs, 2)
		assert.NoError(t, errs[0])
		assert.ErrorIs(t, errs[1], ErrTooLarge)
	})
	t.Run("FlushAll reaches every server", func(t *testing.T) {
		require.Nil(t, c.SetMulti(ctx, items))
		require.NoError(t, c.FlushAll(ctx))
		got, err := c.GetMulti(ctx, keys)
		require.NoError(t, err)
		for _, it := range got {
			assert.Nil(t, it.Value, it.Key)
		}
	})
}

// A batch far larger than socket buffers, with large answers: written
// while being answered, it cannot deadlock.
func TestLargePipelines(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}, Timeout: 10 * time.Second})
	ctx := t.Context()
	const n, size = 2000, 16 << 10 // 32 MiB each way
	items := make([]Item, n)
	keys := make([]string, n)
	for i := range items {
		keys[i] = "big-" + strconv.Itoa(i)
		items[i] = Item{Key: keys[i], Value: bytes.Repeat([]byte{byte(i)}, size)}
	}
	// memcached's 64 MiB may evict some; what is there must be right.
	require.Nil(t, c.SetMulti(ctx, items))
	got, err := c.GetMulti(ctx, keys)
	require.NoError(t, err)
	hits := 0
	for i, it := range got {
		if it.Value != nil {
			hits++
			assert.Equal(t, items[i].Value, it.Value, keys[i])
		}
	}
	assert.Greater(t, hits, n/2)
}

func TestConcurrentUseAndThePool(t *testing.T) {
	srv := testservers.Memcached(t)
	const maxIdle, workers, rounds = 4, 32, 50
	c := newClient(t, Options{Servers: []string{srv.Addr}, MaxIdleConns: maxIdle})
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, Item{Key: "shared", Value: []byte("0")}))
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := range rounds {
				key := fmt.Sprintf("w%d", w)
				val := []byte(fmt.Sprintf("%d/%d", w, i))
				if err := c.Set(ctx, Item{Key: key, Value: val}); err != nil {
					return err
				}
				it, err := c.Get(ctx, key)
				if err != nil {
					return err
				}
				if !bytes.Equal(it.Value, val) {
					return fmt.Errorf("worker %d read %q, want %q", w, it.Value, val)
				}
				if _, err := c.Incr(ctx, "shared", 1, 0, NoCreate); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	n, err := c.Incr(ctx, "shared", 0, 0, NoCreate)
	require.NoError(t, err)
	assert.Equal(t, uint64(workers*rounds), n)
	assert.LessOrEqual(t, len(c.servers[0].idle), maxIdle, "idle connections kept")

	before := c.dialCount()
	for range 10 {
		_, _ = c.Get(ctx, "w0")
	}
	assert.Equal(t, before, c.dialCount(), "sequential calls reuse idle connections")
}

func TestClose(t *testing.T) {
	srv := testservers.Memcached(t)
	c, err := New(Options{Servers: []string{srv.Addr}})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, Item{Key: "k", Value: []byte("v")}))
	idle := c.servers[0].idle[0].nc
	require.NoError(t, c.Close())
	_, err = idle.Read(make([]byte, 1))
	assert.ErrorIs(t, err, net.ErrClosed, "idle connections are closed")
	_, err = c.Get(ctx, "k")
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.Set(ctx, Item{Key: "k"}), ErrClosed)
	_, err = c.GetMulti(ctx, []string{"k"})
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, c.FlushAll(ctx), ErrClosed)
}

func TestSASL(t *testing.T) {
	srv := testservers.SASLMemcached(t)
	plain := testservers.Memcached(t)
	ctx := t.Context()

	t.Run("the right credentials authenticate every new connection", func(t *testing.T) {
		c := newClient(t, Options{Servers: []string{srv.Addr}, Username: srv.Username, Password: srv.Password})
		s := c.servers[0]
		var conns []*conn
		for range 3 { // three connections at once: three dials
			cn, err := c.getConn(ctx, s)
			require.NoError(t, err)
			conns = append(conns, cn)
		}
		for _, cn := range conns {
			c.putConn(s, cn)
		}
		for i := range 3 { // each one in turn, from the pool
			key := "k" + strconv.Itoa(i)
			require.NoError(t, c.Set(ctx, Item{Key: key, Value: []byte("v")}))
			_, err := c.GetMulti(ctx, []string{key, "other"})
			require.NoError(t, err)
		}
		require.NoError(t, c.Ping(ctx))
		assert.Equal(t, int64(3), c.dialCount())
	})
	tests := []struct {
		name    string
		addr    string
		user    string
		pass    string
		mention []string
	}{
		{"a wrong password", srv.Addr, srv.Username, "wrong", []string{srv.Addr, srv.Username, "refused SASL PLAIN credentials", "Auth failure"}},
		{"an unknown user", srv.Addr, "nobody", srv.Password, []string{"nobody", "refused"}},
		{"no credentials for a SASL server", srv.Addr, "", "", []string{srv.Addr, "requires SASL authentication"}},
		{"credentials for a server without SASL", plain.Addr, "u", "p", []string{plain.Addr, "does not offer SASL", "-S"}},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is ErrAuth", func(t *testing.T) {
			c := newClient(t, Options{Servers: []string{tc.addr}, Username: tc.user, Password: tc.pass})
			for _, op := range []func() error{
				func() error { return c.Ping(ctx) },
				func() error { _, err := c.Get(ctx, "k"); return err },
				func() error { return c.Set(ctx, Item{Key: "k", Value: []byte("v")}) },
				func() error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err },
			} {
				err := op()
				require.ErrorIs(t, err, ErrAuth)
				for _, m := range tc.mention {
					assert.ErrorContains(t, err, m)
				}
			}
		})
	}
}

// fakeServer answers each request on each connection with reply(request
// header), for the cases a real server never produces; a nil reply is no
// answer at all.
func fakeServer(t *testing.T, reply func(req [headerLen]byte) []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, nc := range conns {
			nc.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				for {
					var h [headerLen]byte
					if _, err := io.ReadFull(nc, h[:]); err != nil {
						return
					}
					if _, err := io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(h[8:12]))); err != nil {
						return
					}
					if _, err := nc.Write(reply(h)); err != nil {
						return
					}
				}
			})
		}
	})
	return l.Addr().String()
}

// answer builds a response header for req with the given fields and body.
func answer(req [headerLen]byte, magic, op byte, opaque uint32, body []byte) []byte {
	h := make([]byte, headerLen, headerLen+len(body))
	h[0], h[1] = magic, op
	binary.BigEndian.PutUint32(h[8:12], uint32(len(body)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return append(h, body...)
}

func TestProtocolErrorsCloseTheConnection(t *testing.T) {
	tests := []struct {
		name  string
		reply func(req [headerLen]byte) []byte
		want  string
	}{
		{"a wrong magic byte", func(req [headerLen]byte) []byte {
			return answer(req, 0x80, req[1], binary.BigEndian.Uint32(req[12:16]), nil)
		}, "magic byte 0x80"},
		{"an answer to another opcode", func(req [headerLen]byte) []byte {
			return answer(req, magicResponse, opNoop, binary.BigEndian.Uint32(req[12:16]), nil)
		}, "response to noop, want one to get"},
		{"a wrong opaque", func(req [headerLen]byte) []byte {
			return answer(req, magicResponse, req[1], binary.BigEndian.Uint32(req[12:16])+1, nil)
		}, "opaque 1, want 0"},
		{"extras longer than the body", func(req [headerLen]byte) []byte {
			a := answer(req, magicResponse, req[1], binary.BigEndian.Uint32(req[12:16]), nil)
			a[4] = 4
			return a
		}, "body of 0 bytes with 4 bytes of extras"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, Options{Servers: []string{fakeServer(t, tc.reply)}})
			for range 2 {
				_, err := c.Get(t.Context(), "k")
				require.ErrorIs(t, err, ErrProtocol)
				assert.ErrorContains(t, err, tc.want)
			}
			assert.Equal(t, int64(2), c.dialCount(), "each call needed a new connection")
		})
	}
}

func TestAnIncrAnswerOfTheWrongSizeIsAProtocolError(t *testing.T) {
	addr := fakeServer(t, func(req [headerLen]byte) []byte {
		return answer(req, magicResponse, req[1], binary.BigEndian.Uint32(req[12:16]), []byte{1, 2, 3})
	})
	c := newClient(t, Options{Servers: []string{addr}})
	_, err := c.Incr(t.Context(), "k", 1, 0, 0)
	assert.ErrorIs(t, err, ErrProtocol)
}

func TestAnUnknownStatusIsErrServer(t *testing.T) {
	addr := fakeServer(t, func(req [headerLen]byte) []byte {
		a := answer(req, magicResponse, req[1], binary.BigEndian.Uint32(req[12:16]), []byte("Out of memory"))
		binary.BigEndian.PutUint16(a[6:8], 0x82)
		return a
	})
	c := newClient(t, Options{Servers: []string{addr}})
	err := c.Set(t.Context(), Item{Key: "k", Value: []byte("v")})
	require.ErrorIs(t, err, ErrServer)
	assert.ErrorContains(t, err, "status 0x82: Out of memory")
}

// stalled accepts connections and never answers.
func stalled(t *testing.T) string {
	return fakeServer(t, func([headerLen]byte) []byte { return nil })
}

func TestDeadlines(t *testing.T) {
	const timeout = 200 * time.Millisecond
	tests := []struct {
		name    string
		ctx     func(t *testing.T) context.Context
		timeout time.Duration
		within  time.Duration
		is      error
	}{
		{"the client's Timeout bounds a round trip", func(t *testing.T) context.Context { return t.Context() },
			timeout, 2 * timeout, nil},
		{"a sooner context deadline wins", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), timeout/2)
			t.Cleanup(cancel)
			return ctx
		}, time.Minute, timeout, context.DeadlineExceeded},
		{"cancelling the context ends the round trip", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(timeout/2, cancel)
			return ctx
		}, time.Minute, timeout, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := stalled(t)
			c := newClient(t, Options{Servers: []string{addr}, Timeout: tc.timeout})
			ops := map[string]func(ctx context.Context) error{
				"Get":      func(ctx context.Context) error { _, err := c.Get(ctx, "k"); return err },
				"GetMulti": func(ctx context.Context) error { _, err := c.GetMulti(ctx, []string{"k", "l"}); return err },
			}
			for name, op := range ops {
				start := time.Now()
				err := op(tc.ctx(t))
				elapsed := time.Since(start)
				require.Error(t, err, name)
				var ne net.Error
				assert.True(t, errors.As(err, &ne) && ne.Timeout(), "%s: %v is not a timeout", name, err)
				if tc.is != nil {
					assert.ErrorIs(t, err, tc.is, name)
				}
				assert.ErrorContains(t, err, addr)
				assert.Less(t, elapsed, tc.within+300*time.Millisecond, "%s took %v", name, elapsed)
			}
		})
	}
}

func TestAServerThatIsDown(t *testing.T) {
	srv := testservers.Memcached(t)
	addr := srv.Addr
	srv.Stop()
	c := newClient(t, Options{Servers: []string{addr}})
	start := time.Now()
	_, err := c.Get(t.Context(), "k")
	require.Error(t, err)
	assert.ErrorContains(t, err, addr)
	assert.ErrorContains(t, err, "connection refused")
	assert.Less(t, time.Since(start), DefaultDialTimeout)
}
