package backends_test

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/fragcache/fragcache/backends"
)

func ExampleNew() {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(backends.DefaultThreshold), backends.CacheOptions{
		KeyPrefix:      "myapp_",
		DefaultTimeout: 5 * time.Minute,
	})

	type user struct {
		Name  string
		Admin bool
	}
	if err := c.Set(ctx, "user:1", user{Name: "ada", Admin: true}); err != nil {
		log.Fatal(err)
	}
	if err := c.Set(ctx, "motd", "hello", time.Hour); err != nil { // an explicit timeout
		log.Fatal(err)
	}

	var u user
	found, err := c.Get(ctx, "user:1", &u)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, u.Name, u.Admin)

	var missing string
	found, err = c.Get(ctx, "user:2", &missing)
	fmt.Println(found, err)
	// Output:
	// true ada true
	// false <nil>
}

func ExampleOpen() {
	// The same settings a Flask app would put in app.config.
	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":            "SimpleCache",
		"CACHE_DEFAULT_TIMEOUT": 60,
		"CACHE_THRESHOLD":       1000,
		"CACHE_KEY_PREFIX":      "myapp_",
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := backends.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	if err := c.Set(ctx, "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	var s string
	if _, err := c.Get(ctx, "greeting", &s); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s, c.DefaultTimeout(), c.KeyPrefix())
	// Output: hello 1m0s myapp_
}

func ExampleFromEnv() {
	// A program passes os.Environ(); variables that are not settings are
	// ignored, CACHE_* ones it does not know too (logged at debug level)
	// unless Strict asks for an error.
	environ := []string{
		"HOME=/home/app",
		"CACHE_TYPE=SimpleCache",
		"CACHE_DEFAULT_TIMEOUT=30",
		"CACHE_OPTIONS={}",
		"CACHE_SERVICE_HOST=10.0.0.5", // a Kubernetes service link
	}
	cfg, err := backends.FromEnv(environ, backends.EnvOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Type, cfg.DefaultTimeout, cfg.Threshold)

	_, err = backends.FromEnv([]string{"CACHE_TRESHOLD=10"}, backends.EnvOptions{Strict: true})
	fmt.Println(err != nil)
	// Output:
	// SimpleCache 30s 500
	// true
}

func ExampleFromEnv_prefix() {
	// Under a prefix of the application's own, fragcache's settings cannot
	// meet anyone else's variables.
	environ := []string{
		"CACHE_REDIS_PORT=tcp://10.0.0.5:6379", // Kubernetes' link to a Service "cache-redis"
		"MYAPP_CACHE_TYPE=SimpleCache",
		"MYAPP_CACHE_DEFAULT_TIMEOUT=0",
	}
	cfg, err := backends.FromEnv(environ, backends.EnvOptions{Prefix: "MYAPP_"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Type, cfg.DefaultTimeout == backends.NoExpiry)
	// Output: SimpleCache true
}

func ExampleCache_Inc() {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})

	// Integers are stored as decimal text, so Inc and Dec work on values
	// written by Set as well as on missing keys (which start from 0).
	if err := c.Set(ctx, "hits", 41); err != nil {
		log.Fatal(err)
	}
	n, err := c.Inc(ctx, "hits", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)

	n, err = c.Dec(ctx, "stock", 3)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
	// Output:
	// 42
	// -3
}

func ExampleCache_GetMany() {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	err := c.SetMany(ctx, map[string]any{"a": 1, "b": "two"})
	if err != nil {
		log.Fatal(err)
	}

	vals, err := c.GetMany(ctx, "a", "missing", "b")
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vals {
		if !v.Found() {
			fmt.Println("miss")
			continue
		}
		var s string // integers decode into strings as their decimal text
		if err := v.Decode(&s); err != nil {
			log.Fatal(err)
		}
		fmt.Println(s)
	}
	// Output:
	// 1
	// miss
	// two
}

func ExampleCache_GetValue() {
	ctx := context.Background()
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	if err := c.Set(ctx, "fragment", []byte("<p>cached</p>")); err != nil {
		log.Fatal(err)
	}

	// Bytes reads a string or []byte value without copying it: the
	// fragment-caching hot path. The slice must not be modified.
	v, err := c.GetValue(ctx, "fragment")
	if err != nil {
		log.Fatal(err)
	}
	if b, ok := v.Bytes(); ok {
		fmt.Printf("%s\n", b)
	}
	// Output: <p>cached</p>
}

// registerBounded lets ExampleRegister run more than once per process (go
// test -count); a program calls Register once, from an init function.
var registerBounded sync.Once

func ExampleRegister() {
	registerBounded.Do(func() {
		// A custom backend, like Flask-Caching's factory(app, config,
		// args, kwargs): it reads its settings from the Config.
		backends.Register("BoundedCache", func(cfg backends.Config) (backends.Backend, error) {
			if err := backends.CheckOptions("BoundedCache", cfg.Options, "max_entries"); err != nil {
				return nil, err
			}
			n, ok := cfg.Options["max_entries"].(int)
			if !ok {
				return nil, fmt.Errorf("%w: BoundedCache needs CACHE_OPTIONS max_entries (an int)", backends.ErrConfig)
			}
			return backends.NewSimple(n), nil
		})
	})

	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":    "BoundedCache",
		"CACHE_OPTIONS": map[string]any{"max_entries": 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := backends.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := c.Set(ctx, k, k); err != nil {
			log.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		ok, err := c.Has(ctx, k)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(k, ok)
	}

	cfg.Options = map[string]any{"max_entry": 2}
	_, err = backends.Open(cfg)
	fmt.Println(err)
	// Output:
	// a false
	// b true
	// c true
	// open BoundedCache: backends: invalid configuration: CACHE_OPTIONS key "max_entry" is not an option of BoundedCache (accepted: max_entries)
}
