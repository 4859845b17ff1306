package testkit

import (
	"context"
	"sync"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// RequestKey is the context key under which a test marks the context it
// passes to a render, so that a [CtxSpy] can tell which one reached the
// backend.
type RequestKey struct{}

// CtxSpy records, for every Get and Set, the RequestKey value of the
// context the backend was called with.
type CtxSpy struct {
	backends.Backend
	mu   sync.Mutex
	seen []any
}

func (s *CtxSpy) note(ctx context.Context) {
	s.mu.Lock()
	s.seen = append(s.seen, ctx.Value(RequestKey{}))
	s.mu.Unlock()
}

// Get records ctx and reads through.
func (s *CtxSpy) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.note(ctx)
	return s.Backend.Get(ctx, key)
}

// Set records ctx and writes through.
func (s *CtxSpy) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.note(ctx)
	return s.Backend.Set(ctx, key, value, ttl)
}

// Calls returns the RequestKey values seen so far, in call order.
func (s *CtxSpy) Calls() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]any(nil), s.seen...)
}

// Reset forgets the calls seen so far.
func (s *CtxSpy) Reset() {
	s.mu.Lock()
	s.seen = nil
	s.mu.Unlock()
}
