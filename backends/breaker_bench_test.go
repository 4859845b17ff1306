package backends_test

import (
	"context"
	"testing"

	"github.com/fragcache/fragcache/backends"
)

// BenchmarkBreakerGet measures what the circuit breaker adds to a Get: the
// same SimpleCache hit with and without a Breaker around it.
func BenchmarkBreakerGet(b *testing.B) {
	ctx := context.Background()
	simple := backends.NewSimple(0)
	if err := simple.Set(ctx, "k", []byte("<p>fragment</p>"), backends.NoExpiry); err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		be   backends.Backend
	}{{"bare", simple}, {"breaker", backends.NewBreaker(simple, backends.BreakerOptions{})}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := bb.be.Get(ctx, "k"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
