package redis_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/internal/testservers"
)

// BenchmarkRedisBoundedReader measures what the reply bound costs: each
// iteration runs the same command through a client whose connections are
// bounded (as Open builds them) and through a plain one, alternately (each
// goes first every other time), on
// one server, so that load from elsewhere on the machine falls on both
// alike. It reports each side's ns per call and the bounded side's
// overhead in percent.
func BenchmarkRedisBoundedReader(b *testing.B) {
	srv := testservers.Redis(b)
	ctx := context.Background()
	plain := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
	b.Cleanup(func() { _ = plain.Close() })
	opt := &goredis.Options{Addr: srv.Addr}
	if err := redis.LimitReplies(opt, 0); err != nil {
		b.Fatal(err)
	}
	bounded := goredis.NewClient(opt)
	b.Cleanup(func() { _ = bounded.Close() })

	keys := make([]string, redisBenchKeys)
	for _, size := range []int{redisBenchValue, 64 << 10, 1 << 20} {
		value := bytes.Repeat([]byte("x"), size)
		for i := range keys {
			keys[i] = "bounded:" + strconv.Itoa(size) + ":" + strconv.Itoa(i)
			if err := plain.Set(ctx, keys[i], value, backends.NoExpiry).Err(); err != nil {
				b.Fatal(err)
			}
		}
		ops := []struct {
			name string
			run  func(c *goredis.Client) error
		}{
			{"Get", func(c *goredis.Client) error { return c.Get(ctx, keys[0]).Err() }},
			{"GetMany", func(c *goredis.Client) error { return c.MGet(ctx, keys...).Err() }},
		}
		for _, op := range ops {
			if op.name == "GetMany" && size > 64<<10 {
				continue
			}
			b.Run(op.name+"/"+strconv.Itoa(size)+"B", func(b *testing.B) {
				var tb, tp time.Duration
				timed := func(c *goredis.Client) time.Duration {
					t0 := time.Now()
					if err := op.run(c); err != nil {
						b.Fatal(err)
					}
					return time.Since(t0)
				}
				for i := 0; b.Loop(); i++ {
					// Alternate which goes first, so neither always
					// finds the other's work just done.
					if i%2 == 0 {
						tb += timed(bounded)
						tp += timed(plain)
					} else {
						tp += timed(plain)
						tb += timed(bounded)
					}
				}
				b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "bounded-ns/call")
				b.ReportMetric(float64(tp.Nanoseconds())/float64(b.N), "plain-ns/call")
				b.ReportMetric(100*(float64(tb)/float64(tp)-1), "overhead-%")
			})
		}
	}
}
