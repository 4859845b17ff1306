package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/filesystem"
	"github.com/fragcache/fragcache/backends/redis"
	"github.com/fragcache/fragcache/fragment"
)

// fragmentKey is the key a block stores under, below CACHE_KEY_PREFIX, as
// the application's fragment.Cache makes it: fragment.Cache.Key itself,
// with the application's key options, over a cache that stores nothing.
func fragmentKey(o *cmdOptions, name string, vary []string) (key string, err error) {
	defer func() {
		if p := recover(); p != nil { // fragment.New refuses options that collide
			err = fmt.Errorf("fragment options: %v", p)
		}
	}()
	fc := fragment.New(backends.New(backends.NewNull(), backends.CacheOptions{}), fragment.Options{
		KeyPrefix:       o.fragmentPrefix,
		Version:         o.fragmentVersion,
		UnambiguousKeys: o.unambiguousKeys,
	})
	return fc.Key(name, vary...), nil
}

func runKey(_ context.Context, e *env, o *cmdOptions, args []string) error {
	if len(args) == 0 {
		return usageError{"key needs a block NAME"}
	}
	cfg, err := e.config(o)
	if err != nil {
		return err
	}
	key, err := fragmentKey(o, args[0], args[1:])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, cfg.KeyPrefix+key)
	return err
}

func runGet(ctx context.Context, e *env, o *cmdOptions, args []string) error {
	var key string
	var err error
	switch {
	case o.fragment && len(args) > 0:
		if key, err = fragmentKey(o, args[0], args[1:]); err != nil {
			return err
		}
	case len(args) == 1:
		key = args[0]
	default:
		return usageError{"get needs one KEY, or -fragment NAME [VARY…]"}
	}
	cache, _, err := e.open(o, true)
	if err != nil {
		return err
	}
	defer cache.Close()
	v, err := cache.GetValue(ctx, key)
	if err != nil {
		return err
	}
	if !v.Found() {
		return fmt.Errorf("%q (stored as %q): %w", key, cache.KeyPrefix()+key, errMiss)
	}
	if o.fragment {
		text, ok := v.Text()
		if !ok {
			return fmt.Errorf("%q holds a value that is not a fragment (an integer or a structured value)", key)
		}
		frag, err := fragmentText(text)
		if err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		_, err = e.stdout.Write(frag)
		return err
	}
	return printValue(e.stdout, v)
}

// Stale-while-revalidate and early refresh store a fragment behind a
// 14-byte header (package fragment, stale.go): 0xF8, version 1, stale time,
// render time. A value without the mark is the fragment itself.
const (
	fragmentMark      = 0xF8
	fragmentVersion   = 1
	fragmentHeaderLen = 14
)

// fragmentText returns the fragment a stored fragment value holds.
func fragmentText(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != fragmentMark {
		return v, nil
	}
	if len(v) < fragmentHeaderLen || v[1] != fragmentVersion {
		return nil, errors.New("the value starts like a fragment header but is not one")
	}
	return v[fragmentHeaderLen:], nil
}

// printValue writes text byte for byte, an integer in decimal and a
// structured value as JSON.
func printValue(w io.Writer, v backends.Value) error {
	if text, ok := v.Text(); ok {
		_, err := w.Write(text)
		return err
	}
	if n, ok := v.Bytes(); ok { // an integer
		_, err := fmt.Fprintf(w, "%s\n", n)
		return err
	}
	var x any
	if err := v.Decode(&x); err != nil {
		return err
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		// msgpack maps with keys that are not strings have no JSON form.
		_, err = fmt.Fprintf(w, "%#v\n", x)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func runDel(ctx context.Context, e *env, o *cmdOptions, args []string) error {
	var ks []string
	switch {
	case o.fragment && len(args) > 0:
		key, err := fragmentKey(o, args[0], args[1:])
		if err != nil {
			return err
		}
		ks = []string{key}
	case !o.fragment && len(args) > 0:
		ks = args
	default:
		return usageError{"del needs KEYs, or -fragment NAME [VARY…]"}
	}
	cache, _, err := e.open(o, true)
	if err != nil {
		return err
	}
	defer cache.Close()
	n, err := cache.DeleteMany(ctx, ks...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%d of %d deleted\n", n, len(ks))
	return err
}

func runClear(ctx context.Context, e *env, o *cmdOptions, args []string) error {
	if len(args) != 0 {
		return usageError{"clear takes no arguments"}
	}
	cache, cfg, err := e.open(o, true)
	if err != nil {
		return err
	}
	defer cache.Close()
	what := fmt.Sprintf("every key starting with %q", cfg.KeyPrefix)
	if cfg.KeyPrefix == "" {
		what = "EVERYTHING in the database, since CACHE_KEY_PREFIX is empty"
	}
	if !o.yes {
		return usageError{fmt.Sprintf("clear deletes %s on %s; add -yes to do it", what, describe(cache, cfg))}
	}
	if err := cache.Clear(ctx); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "cleared %s on %s\n", what, describe(cache, cfg))
	return err
}

// ping makes one round trip to the backend's server with Cache.Ping. A
// backend without a server (FileSystemCache; the in-process ones) answers
// Ping with nil at once, so it is read instead: a Has of a key no one uses.
func ping(ctx context.Context, cache *backends.Cache) (time.Duration, error) {
	start := time.Now()
	err := cache.Ping(ctx)
	if _, server := cache.Backend().(backends.Pinger); err == nil && !server {
		_, err = cache.Has(ctx, "fragcache-cli-ping")
	}
	return time.Since(start), err
}

func runPing(ctx context.Context, e *env, o *cmdOptions, args []string) error {
	if len(args) != 0 {
		return usageError{"ping takes no arguments"}
	}
	if o.count < 1 {
		return usageError{"-count must be at least 1"}
	}
	cache, cfg, err := e.open(o, false)
	if err != nil {
		return err
	}
	defer cache.Close()
	target := describe(cache, cfg)
	var took []time.Duration
	for range o.count {
		d, err := ping(ctx, cache)
		if err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
		took = append(took, d)
		fmt.Fprintf(e.stdout, "%s: ok in %s\n", target, fmtLatency(d))
	}
	if len(took) > 1 {
		slices.Sort(took)
		fmt.Fprintf(e.stdout, "%d pings: min %s, median %s, max %s\n", len(took),
			fmtLatency(took[0]), fmtLatency(took[(len(took)-1)/2]), fmtLatency(took[len(took)-1]))
	}
	return nil
}

// fmtLatency prints milliseconds with three decimals, a unit scripts and
// people both read.
func fmtLatency(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// describe names the backend and where it is.
func describe(cache *backends.Cache, cfg backends.Config) string {
	if s, ok := cache.Backend().(fmt.Stringer); ok {
		return cfg.Type + " " + s.String()
	}
	setting := func(key string) string {
		v, _ := backends.Setting(cfg, key, "")
		return v
	}
	switch strings.ToLower(cfg.Type) {
	case "filesystem", "filesystemcache":
		return cfg.Type + " " + setting("CACHE_DIR")
	case "redis", "rediscache":
		if u := setting("CACHE_REDIS_URL"); u != "" {
			return cfg.Type + " " + redactURL(u)
		}
		host, _ := backends.Setting(cfg, "CACHE_REDIS_HOST", "localhost")
		port, _ := backends.Setting(cfg, "CACHE_REDIS_PORT", 6379)
		db, _ := backends.Setting(cfg, "CACHE_REDIS_DB", 0)
		return fmt.Sprintf("%s %s:%d/%d", cfg.Type, host, port, db)
	case "redissentinel", "redissentinelcache":
		master, _ := backends.Setting(cfg, "CACHE_REDIS_SENTINEL_MASTER", "mymaster")
		sentinels, _ := backends.Setting(cfg, "CACHE_REDIS_SENTINELS", []string{"127.0.0.1:26379"})
		return cfg.Type + " " + master + "@" + strings.Join(sentinels, ",")
	case "rediscluster", "redisclustercache":
		return cfg.Type + " " + setting("CACHE_REDIS_CLUSTER")
	}
	return cfg.Type
}

// redactURL drops a URL's password.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user := rest[:at]
		if name, _, hasPass := strings.Cut(user, ":"); hasPass {
			rest = name + ":xxxxx" + rest[at:]
		}
	}
	return scheme + "://" + rest
}

func runStats(ctx context.Context, e *env, o *cmdOptions, args []string) error {
	if len(args) != 0 {
		return usageError{"stats takes no arguments"}
	}
	cache, cfg, err := e.open(o, true)
	if err != nil {
		return err
	}
	defer cache.Close()
	w := bufio.NewWriter(e.stdout)
	field := func(name string, v any) { fmt.Fprintf(w, "%-22s %v\n", name+":", v) }
	field("backend", describe(cache, cfg))
	field("key_prefix", fmt.Sprintf("%q", cache.KeyPrefix()))
	field("default_timeout", cache.DefaultTimeout())
	if br := cache.Breaker(); br != nil {
		field("breaker", br.State())
	}
	d, err := ping(ctx, cache)
	if err != nil {
		field("ping", "failed: "+err.Error())
	} else {
		field("ping", fmtLatency(d))
	}
	serverStats(ctx, cache, cfg, field)
	return errors.Join(w.Flush(), err)
}

// redisStats are the INFO fields stats prints: what a cache's operator
// watches (memory against its limit, evictions, hit ratio).
var redisStats = []string{
	"redis_version", "uptime_in_seconds", "connected_clients",
	"used_memory_human", "maxmemory_human", "maxmemory_policy",
	"keyspace_hits", "keyspace_misses", "expired_keys", "evicted_keys",
}

// serverStats adds what the backend's server says about itself.
func serverStats(ctx context.Context, cache *backends.Cache, cfg backends.Config, field func(string, any)) {
	switch b := cache.Backend().(type) {
	case *redis.Backend:
		info, err := b.Client().Info(ctx, "server", "clients", "memory", "stats", "keyspace").Result()
		if err != nil {
			field("redis_info", "failed: "+err.Error())
			return
		}
		kv := map[string]string{}
		var dbs []string
		for line := range strings.Lines(info) {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if !ok {
				continue
			}
			kv[k] = v
			if strings.HasPrefix(k, "db") {
				dbs = append(dbs, k)
			}
		}
		for _, k := range redisStats {
			if v, ok := kv[k]; ok {
				field(k, v)
			}
		}
		for _, k := range dbs {
			field(k, kv[k])
		}
	case *filesystem.Backend:
		dir, _ := backends.Setting(cfg, "CACHE_DIR", "")
		files, bytes, err := dirUsage(dir)
		if err != nil {
			field("cache_dir", "failed: "+err.Error())
			return
		}
		field("entry_files", files)
		field("entry_bytes", bytes)
	}
}

// dirUsage counts FileSystemCache's entry files in dir (named by a hash,
// ending in .fcache; its temporaries and lock file are not entries).
func dirUsage(dir string) (files int, size int64, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, de := range entries {
		if !de.Type().IsRegular() || strings.HasPrefix(de.Name(), ".") || !strings.HasSuffix(de.Name(), ".fcache") {
			continue
		}
		info, err := os.Lstat(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // removed meanwhile
		}
		files++
		size += info.Size()
	}
	return files, size, nil
}
