package backends_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/internal/testservers"
)

// BenchmarkPageBatching renders the 10-fragment page per engine with every
// block a hit (AllHit) and with every block a miss (AllMiss: the store is
// cleared before each page, outside the timer), on SimpleCache and on a
// loopback Redis, with the blocks looking themselves up (Direct,
// fragment.BatchOff: one GET per block, one SET per miss) and through
// fragment.Cache.Page (Batched, fragment.BatchOn: one MGET per page, one
// pipelined store). Run it with -count to interleave the modes.
func BenchmarkPageBatching(b *testing.B) {
	srv := testservers.Redis(b)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = client.Close() })
	rt := new(testkit.RoundTrips)
	client.AddHook(rt)
	for _, st := range []struct {
		name    string
		backend backends.Backend
	}{
		{"Simple", backends.NewSimple(0)},
		{"Redis", backends.NewRedis(client)},
	} {
		for _, e := range pageEngines {
			for _, hit := range []bool{true, false} {
				for _, mode := range []struct {
					name  string
					batch fragment.BatchMode
				}{{"Direct", fragment.BatchOff}, {"Batched", fragment.BatchOn}} {
					state := "AllHit"
					if !hit {
						state = "AllMiss"
					}
					b.Run(st.name+"/"+e.name+"/"+state+"/"+mode.name, func(b *testing.B) {
						ctx := context.Background()
						if err := st.backend.Clear(ctx, ""); err != nil {
							b.Fatal(err)
						}
						fc := fragment.New(backends.New(st.backend, backends.Options{}), fragment.Options{Batch: mode.batch})
						render := e.prepare(b, fc)
						var first bytes.Buffer
						if err := render(&first); err != nil {
							b.Fatal(err)
						}
						b.SetBytes(int64(first.Len()))
						b.ReportAllocs()
						rt.Take()
						for b.Loop() {
							if !hit {
								b.StopTimer()
								if err := st.backend.Clear(ctx, ""); err != nil {
									b.Fatal(err)
								}
								b.StartTimer()
							}
							if err := render(io.Discard); err != nil {
								b.Fatal(err)
							}
						}
						if n, _ := rt.Take(); st.name == "Redis" {
							// Clear's own commands are counted too: one per page when AllMiss.
							if !hit {
								n -= b.N
							}
							b.ReportMetric(float64(n)/float64(b.N), "roundtrips/page")
						}
						if s := fc.Stats(); s.BackendErrors != 0 {
							b.Fatalf("%d backend errors", s.BackendErrors)
						}
					})
				}
			}
		}
	}
}
