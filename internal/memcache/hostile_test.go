package memcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// claim is a response header to req announcing a body of bodyLen bytes,
// followed by the body bytes actually sent.
func claim(req [headerLen]byte, status uint16, bodyLen uint32, sent []byte) []byte {
	h := make([]byte, headerLen, headerLen+len(sent))
	h[0], h[1] = magicResponse, req[1]
	binary.BigEndian.PutUint16(h[6:8], status)
	binary.BigEndian.PutUint32(h[8:12], bodyLen)
	copy(h[12:16], req[12:16])
	return append(h, sent...)
}

// TestHostileRepliesAreBounded answers with replies that announce more than
// they send, or send more than a value may be: the client allocates about
// what arrives, never what a header claims, and error messages are cut.
func TestHostileRepliesAreBounded(t *testing.T) {
	const (
		stall    = 300 * time.Millisecond // how long the client waits for bytes never sent
		bound    = 128 << 10
		errLimit = 2 << 10 // a 1 KiB message plus the rest of the error
	)
	bigMessage := bytes.Repeat([]byte("E"), 16<<20)
	// Built once, so that the fake server does not allocate it while the
	// client's allocations are measured; a Set's opaque is 0.
	bigReply := claim([headerLen]byte{1: opSet}, 0x82, uint32(len(bigMessage)), bigMessage)
	tests := []struct {
		name     string
		maxValue int
		timeout  time.Duration
		op       func(c *Client) error
		reply    func(req [headerLen]byte) []byte
		want     []string
		is       error
	}{
		{"a value announced at 256 MiB, nothing sent", 0, time.Minute,
			func(c *Client) error { _, err := c.Get(t.Context(), "k"); return err },
			func(req [headerLen]byte) []byte { return claim(req, statusOK, 256<<20, nil) },
			[]string{"268435456", "1048576", "max_value_size"}, ErrTooLarge},
		{"a value announced at 4 GiB, 10 bytes sent", 0, time.Minute,
			func(c *Client) error { _, err := c.Get(t.Context(), "k"); return err },
			func(req [headerLen]byte) []byte { return claim(req, statusOK, 1<<32-1, []byte("0123456789")) },
			nil, ErrTooLarge},
		{"a value announced at the limit, 10 bytes sent", 0, stall,
			func(c *Client) error { _, err := c.Get(t.Context(), "k"); return err },
			func(req [headerLen]byte) []byte { return claim(req, statusOK, 1<<20, []byte("0123456789")) },
			nil, nil},
		{"GetMulti: values announced at the limit, 10 bytes sent", 0, stall,
			func(c *Client) error { _, err := c.GetMulti(t.Context(), []string{"a", "b", "c"}); return err },
			func(req [headerLen]byte) []byte { return claim(req, statusOK, 1<<20, []byte("0123456789")) },
			nil, nil},
		{"a 16 MiB error message", 32 << 20, time.Minute,
			func(c *Client) error { return c.Set(t.Context(), Item{Key: "k", Value: []byte("v")}) },
			func([headerLen]byte) []byte { return bigReply },
			[]string{"status 0x82", "EEEE", "…(16777216 bytes)"}, ErrServer},
		{"a 16 MiB error message over the value limit", 0, time.Minute,
			func(c *Client) error { return c.Set(t.Context(), Item{Key: "k", Value: []byte("v")}) },
			func([headerLen]byte) []byte { return bigReply },
			[]string{"16777216"}, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, Options{Servers: []string{fakeServer(t, tc.reply)}, Timeout: tc.timeout, MaxValueSize: tc.maxValue})
			var err error
			n := testkit.Allocated(func() { err = tc.op(c) })
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Less(t, n, uint64(bound), "bytes allocated")
			assert.Less(t, len(err.Error()), errLimit, "error text: %.200s…", err)
		})
	}
}

func TestErrorMessagesAreCut(t *testing.T) {
	for _, size := range []int{0, 10, maxMessage, maxMessage + 1, 100 << 10} {
		msg := strings.Repeat("m", size)
		addr := fakeServer(t, func(req [headerLen]byte) []byte {
			return claim(req, 0x82, uint32(size), []byte(msg))
		})
		c := newClient(t, Options{Servers: []string{addr}})
		err := c.Set(t.Context(), Item{Key: "k", Value: []byte("v")})
		require.ErrorIs(t, err, ErrServer)
		if size <= maxMessage {
			assert.True(t, strings.HasSuffix(err.Error(), ": "+msg), "%d: %.100s", size, err)
		} else {
			assert.ErrorContains(t, err, ": "+strings.Repeat("m", maxMessage)+"…(")
			assert.NotContains(t, err.Error(), strings.Repeat("m", maxMessage+1))
		}
		// The connection stays usable: the whole message was consumed.
		err = c.Set(t.Context(), Item{Key: "k", Value: []byte("v")})
		require.ErrorIs(t, err, ErrServer)
		assert.Equal(t, int64(1), c.dialCount(), "size %d", size)
	}
}

func TestMaxValueSize(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}, MaxValueSize: 1000})
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, Item{Key: "fits", Value: make([]byte, 1000)}))
	it, err := c.Get(ctx, "fits")
	require.NoError(t, err)
	assert.Len(t, it.Value, 1000)

	err = c.Set(ctx, Item{Key: "big", Value: make([]byte, 1001)})
	require.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorContains(t, err, "max_value_size")
	errs := c.SetMulti(ctx, []Item{{Key: "a", Value: []byte("a")}, {Key: "big", Value: make([]byte, 1001)}})
	require.Len(t, errs, 2)
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], ErrTooLarge)

	// Written by a client with a larger limit: too large to read here.
	other := newClient(t, Options{Servers: []string{srv.Addr}})
	require.NoError(t, other.Set(ctx, Item{Key: "big", Value: make([]byte, 1001)}))
	_, err = c.Get(ctx, "big")
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = c.Get(ctx, "fits")
	require.NoError(t, err, "the next call works")

	_, err = New(Options{Servers: []string{srv.Addr}, MaxValueSize: -1})
	require.Error(t, err)
}

// TestConnectionCap runs 1000 concurrent cold operations (a miss, then a
// write) through a proxy that counts connections: all succeed, and no more
// than MaxConns are ever open. The idle limit equals the cap, so the client
// never closes and redials during the run and the proxy's count is exact.
func TestConnectionCap(t *testing.T) {
	srv := testservers.Memcached(t)
	proxy := testservers.CountingProxy(t, "tcp", srv.Addr)
	const maxConns = 8
	c := newClient(t, Options{Servers: []string{proxy.Addr()}, MaxConns: maxConns, MaxIdleConns: maxConns, Timeout: time.Minute})
	var g errgroup.Group
	for i := range 1000 {
		g.Go(func() error {
			key := "cold-" + string(rune('a'+i%26)) + "-" + strings.Repeat("x", i%7) + string(rune('0'+i%10))
			if _, err := c.Get(t.Context(), key); err != nil && err != ErrCacheMiss {
				return err
			}
			return c.Set(t.Context(), Item{Key: key, Value: []byte("v")})
		})
	}
	require.NoError(t, g.Wait())
	assert.LessOrEqual(t, proxy.Max(), maxConns)
	assert.LessOrEqual(t, c.dialCount(), int64(maxConns))
	assert.Positive(t, proxy.Max())
}

func TestWaitingForAConnection(t *testing.T) {
	srv := testservers.Memcached(t)
	c := newClient(t, Options{Servers: []string{srv.Addr}, MaxConns: 1, Timeout: 200 * time.Millisecond})
	s := c.servers[0]
	held, err := c.getConn(t.Context(), s)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled, "a cancelled caller stops waiting")

	_, err = c.Get(t.Context(), "k")
	require.ErrorIs(t, err, ErrPoolTimeout, "the wait is bounded by the round-trip timeout")
	assert.ErrorContains(t, err, srv.Addr)
	assert.ErrorContains(t, err, "1 connection")

	c.putConn(s, held)

	// A waiter gets the held connection when it is put back.
	c = newClient(t, Options{Servers: []string{srv.Addr}, MaxConns: 1, Timeout: time.Minute})
	s = c.servers[0]
	held, err = c.getConn(t.Context(), s)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Go(func() {
		_, err := c.Get(context.WithoutCancel(t.Context()), "k")
		errs <- err
	})
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.waiters) == 1
	}, 10*time.Second, time.Millisecond)
	c.putConn(s, held)
	wg.Wait()
	require.ErrorIs(t, <-errs, ErrCacheMiss)
	assert.Equal(t, int64(1), c.dialCount())
}
