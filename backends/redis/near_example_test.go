package redis_test

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/redis"
)

// A near cache in front of Redis: the cache's key prefix is the tracked
// prefix, so only its keys are kept in memory and only writes under it send
// this process invalidations.
func ExampleNewWithNearCache() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	defer client.Close()
	be, err := redis.NewWithNearCache(client, redis.NearCacheOptions{
		Prefixes:   []string{"shop:"},
		MaxEntries: 50_000,
		MaxBytes:   256 << 20,
	})
	if err != nil {
		panic(err)
	}
	cache := backends.New(be, backends.CacheOptions{KeyPrefix: "shop:", DefaultTimeout: 5 * time.Minute})
	defer cache.Close()

	ctx := context.Background()
	_ = cache.Set(ctx, "greeting", "hello")
	var s string
	if found, err := cache.Get(ctx, "greeting", &s); err == nil && found {
		fmt.Println(s) // later reads of "greeting" make no round trip
	}
	if st, ok := be.NearCacheStats(); ok {
		fmt.Println("tracking:", st.Tracking, "hits:", st.Hits)
	}
}
