package uwsgi

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testservers"
)

// uwsgiCountingProxy forwards connections to a uWSGI server and counts how
// many are open at once. A connection counts from its accept until the
// server closes it (uWSGI closes after every reply); the count drops before
// the proxy passes that close on to the client, so a client that keeps its
// connection until it sees the server's close is counted exactly.
type uwsgiCountingProxy struct {
	ln     net.Listener
	target string

	mu               sync.Mutex
	open, max, total int
	wg               sync.WaitGroup
}

func startUWSGICountingProxy(t *testing.T, target string) *uwsgiCountingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &uwsgiCountingProxy{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *uwsgiCountingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.open++
		p.total++
		p.max = max(p.max, p.open)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(c) })
	}
}

func (p *uwsgiCountingProxy) pipe(c net.Conn) {
	defer c.Close()
	var once sync.Once
	done := func() {
		once.Do(func() {
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
		})
	}
	defer done()
	s, err := net.DialTimeout("tcp", p.target, 3*time.Second)
	if err != nil {
		return
	}
	defer s.Close()
	p.wg.Go(func() {
		_, _ = io.Copy(s, c)
		s.Close() // the client went away first
	})
	_, _ = io.Copy(c, s)
	done()
}

func (p *uwsgiCountingProxy) counts() (maxOpen, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max, p.total
}

// TestUWSGIConnectionCap runs 1000 cold operations at once (a read that
// misses, then a write, as a fragment render does) and checks that they
// all succeed and never hold more connections than the cap. Without a cap
// they open hundreds, past uWSGI's listen backlog of 100, and many fail.
func TestUWSGIConnectionCap(t *testing.T) {
	const ops = 1000
	for _, maxConns := range []int{0, 4} {
		want := maxConns
		if want == 0 {
			want = DefaultMaxConns
		}
		t.Run("max_conns "+strconv.Itoa(maxConns), func(t *testing.T) {
			srv := testservers.UWSGI(t, "name=c,items=1100,blocksize=1024")
			proxy := startUWSGICountingProxy(t, srv.Addr)
			// Generous timeouts: this test counts connections, it is not about timing.
			u, err := New(Options{Addr: proxy.ln.Addr().String(), Cache: "c", MaxConns: maxConns, DialTimeout: 30 * time.Second, ReadTimeout: 30 * time.Second})
			require.NoError(t, err)
			defer u.Close()
			// Keep each connection until the server's close arrives, so
			// that the proxy's count is exact however loaded the machine.
			u.client.CloseWait = time.Minute

			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, ops)
			for i := range ops {
				wg.Go(func() {
					k := "k" + strconv.Itoa(i)
					if _, ok, err := u.Get(ctx, k); err != nil || ok {
						errs <- fmt.Errorf("Get %s: hit %v, %w", k, ok, err)
						return
					}
					if err := u.Set(ctx, k, []byte("v"+k), backends.NoExpiry); err != nil {
						errs <- fmt.Errorf("Set %s: %w", k, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			var failed int
			for err := range errs {
				if failed++; failed <= 5 {
					t.Error(err)
				}
			}
			require.Zero(t, failed, "operations failed")
			maxOpen, total := proxy.counts()
			assert.LessOrEqual(t, maxOpen, want, "connections open at once")
			assert.GreaterOrEqual(t, total, 2*ops, "one connection per operation")

			keys := make([]string, ops)
			for i := range keys {
				keys[i] = "k" + strconv.Itoa(i)
			}
			got, err := u.GetMany(ctx, keys)
			require.NoError(t, err)
			for i, k := range keys {
				assert.Equal(t, "v"+k, string(got[i]))
			}
		})
	}
}

// TestUWSGIWaitForAConnectionHonoursTheContext holds every connection of a
// one-connection cap and checks that another operation waits, then gives up
// when its context ends.
func TestUWSGIWaitForAConnectionHonoursTheContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	u, err := New(Options{Addr: ln.Addr().String(), MaxConns: 1, ReadTimeout: time.Minute})
	require.NoError(t, err)
	defer u.Close()

	first := make(chan error, 1)
	go func() { _, _, err := u.Get(context.Background(), "stuck"); first <- err }()
	held := <-accepted // the first Get holds the only connection

	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, _, err := u.Get(ctx, "waiting"); second <- err }()
	select {
	case err := <-second:
		t.Fatalf("the second Get did not wait for a connection: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-second:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled wait for a connection did not return")
	}
	// No reply, as for a missing key (CloseWrite: closing with the request
	// unread would reset the connection).
	require.NoError(t, held.(*net.TCPConn).CloseWrite())
	require.NoError(t, <-first)
	held.Close()
}

func TestUWSGIMaxConnsOption(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want int64
	}{{Options{}, DefaultMaxConns}, {Options{MaxConns: 3}, 3}} {
		u, err := New(tc.opts)
		require.NoError(t, err)
		// The semaphore admits exactly want holders.
		require.True(t, u.client.Conns.TryAcquire(tc.want))
		assert.False(t, u.client.Conns.TryAcquire(1))
	}
	_, err := New(Options{MaxConns: -1})
	require.ErrorIs(t, err, backends.ErrConfig)
	cfg := backends.DefaultConfig()
	cfg.Type, cfg.Options = "UWSGICache", map[string]any{"max_conns": 5}
	cfg.Settings = map[string]any{"CACHE_UWSGI_NAME": "c@127.0.0.1:1"}
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	require.True(t, c.Backend().(*Backend).client.Conns.TryAcquire(5))
	assert.False(t, c.Backend().(*Backend).client.Conns.TryAcquire(1))
}

// One rule for uWSGI and memcached: an operation that finds every
// connection busy waits as long as its context and the round-trip timeout
// (ReadTimeout) allow, then fails with an error wrapping
// backends.ErrPoolTimeout (an ErrUnavailable, counted by the breaker).
func TestUWSGIWaitForAConnectionEndsWithErrPoolTimeout(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	u, err := New(Options{Addr: "127.0.0.1:1", MaxConns: 2, ReadTimeout: readTimeout})
	require.NoError(t, err)
	defer u.Close()
	require.True(t, u.client.Conns.TryAcquire(2), "every connection busy")
	defer u.client.Conns.Release(2)

	done := make(chan error, 1)
	go func() { _, _, err := u.Get(context.Background(), "k"); done <- err }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, backends.ErrPoolTimeout)
		require.ErrorIs(t, err, backends.ErrUnavailable)
		assert.Contains(t, err.Error(), "max_conns")
	case <-time.After(30 * time.Second):
		t.Fatal("a wait for a connection without a ctx deadline did not end")
	}
}

// The zero Options get a cache's timeouts, the same as Redis's and
// memcached's: 500 ms to connect, 250 ms per request.
func TestUWSGICacheSafeDefaults(t *testing.T) {
	u, err := New(Options{})
	require.NoError(t, err)
	defer u.Close()
	assert.Equal(t, 500*time.Millisecond, u.client.DialTimeout)
	assert.Equal(t, 250*time.Millisecond, u.client.Timeout)
}
