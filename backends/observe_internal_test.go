package backends

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pinging is a backend with a health check that fails with err.
type pinging struct {
	Backend
	err error
}

func (p pinging) Ping(context.Context) error { return p.err }

type opCount map[Op]int

func (o opCount) ObserveOp(_ context.Context, op Op, _ time.Duration, _ error) { o[op]++ }

// Observe's wrapper must keep a backend's health check reachable: Cache
// finds it by a type assertion on its backend.
func TestObservedKeepsPing(t *testing.T) {
	ctx := context.Background()
	down := errors.New("down")
	ops := opCount{}
	c := Observe(New(pinging{Backend: NewSimple(0), err: down}, CacheOptions{}), ops)
	_, ok := c.backend.(Pinger)
	require.True(t, ok, "the observed backend is a Pinger")
	assert.ErrorIs(t, c.Ping(ctx), down, "Cache.Ping reaches the backend's")
	assert.Equal(t, 1, ops[OpPing])

	plain := Observe(New(NewSimple(0), CacheOptions{}), ops)
	assert.NoError(t, plain.Ping(ctx), "a backend without Ping answers nil")
	assert.Equal(t, 1, ops[OpPing], "and is not reported")
}
