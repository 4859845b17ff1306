package filesystem_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/filesystem"
)

// A file-system cache shared by every process that opens the same
// directory, bounded to 1000 entries.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "fragcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	fsc, err := filesystem.New(filepath.Join(dir, "cache"), filesystem.Options{Threshold: 1000})
	if err != nil {
		log.Fatal(err)
	}
	cache := backends.New(fsc, backends.CacheOptions{KeyPrefix: "myapp_", DefaultTimeout: 5 * time.Minute})
	defer cache.Close()

	ctx := context.Background()
	if err := cache.Set(ctx, "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	hits, err := cache.Inc(ctx, "hits", 1)
	if err != nil {
		log.Fatal(err)
	}
	var greeting string
	found, err := cache.Get(ctx, "greeting", &greeting)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found, greeting, hits)
	// Output: true hello 1
}

// The same cache configured the Flask way, by CACHE_* keys.
func ExampleOpen_fileSystem() {
	dir, err := os.MkdirTemp("", "fragcache-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":      "FileSystemCache",
		"CACHE_DIR":       dir,
		"CACHE_THRESHOLD": 1000,
		"CACHE_OPTIONS":   map[string]any{"mode": 0o640},
	})
	if err != nil {
		log.Fatal(err)
	}
	cache, err := backends.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()

	ctx := context.Background()
	added, err := cache.Add(ctx, "lock", "owner-1", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	again, err := cache.Add(ctx, "lock", "owner-2", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(added, again)
	// Output: true false
}
