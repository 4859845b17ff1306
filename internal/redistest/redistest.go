// Package redistest counts the round trips a go-redis client makes, for
// tests that check how many a page costs, and starts a real redis-server
// with a counted client. It imports backends/redis, which registers the
// Redis family, so the backends package's own tests (which check the
// registry without families) must not import it; it is imported by tests
// only.
package redistest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	fcredis "github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
)

// RoundTrips is a go-redis hook that counts round trips: one per command
// sent alone, one per pipeline. A new connection's handshake (HELLO,
// CLIENT SETINFO) is not counted: the pool makes connections when it
// likes, not when a page asks. It also keeps the names of what was sent,
// for failure messages.
type RoundTrips struct {
	mu    sync.Mutex
	n     int
	names []string
}

// DialHook passes dials through uncounted.
func (r *RoundTrips) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

// ProcessHook counts a command sent alone.
func (r *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" { // a new connection's handshake, not the caller's
			r.note(cmd.Name())
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline as one round trip.
func (r *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		handshake := true
		for i, c := range cmds {
			names[i] = c.Name()
			handshake = handshake && (names[i] == "client" || names[i] == "hello")
		}
		if handshake { // CLIENT SETINFO of a new connection
			return next(ctx, cmds)
		}
		r.note("pipeline(" + strings.Join(names, ",") + ")")
		return next(ctx, cmds)
	}
}

func (r *RoundTrips) note(name string) {
	r.mu.Lock()
	r.n++
	r.names = append(r.names, name)
	r.mu.Unlock()
}

// Take returns the round trips counted since the last Take, and what they
// sent, and starts counting again from zero.
func (r *RoundTrips) Take() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, names := r.n, r.names
	r.n, r.names = 0, nil
	return n, names
}

// CountedRedis starts a real redis-server and returns a Cache over it whose
// client counts its round trips, with the connection already made (so the
// handshake is not counted).
func CountedRedis(t testing.TB) (*backends.Cache, *RoundTrips) {
	t.Helper()
	srv := testservers.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 4})
	t.Cleanup(func() { _ = client.Close() })
	require.NoError(t, client.Ping(context.Background()).Err())
	rt := new(RoundTrips)
	client.AddHook(rt)
	return backends.New(fcredis.New(client, fcredis.Options{}), backends.CacheOptions{}), rt
}
