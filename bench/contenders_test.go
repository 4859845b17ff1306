package bench

import (
	"context"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/maypok86/otter/v2"
	gocache "github.com/patrickmn/go-cache"

	"github.com/fragcache/fragcache/backends"
)

// store is what every contender offers the benchmarks: a Get that reports a
// hit and a Set of a []byte value, without expiry. Every Get reads the
// first byte of the value it finds, as a caller using the value would:
// fragcache's must anyway (it is the stored-value envelope), and without it
// the others would be measured on a lookup that never touches its value.
type store interface {
	Get(key string) bool
	Set(key string, value []byte)
	Len() int
	Close()
}

type contender struct {
	name string
	// bounded is false for a cache without a size bound (go-cache): it
	// never evicts, so it takes part in neither the hit ratio nor the
	// evicting Set.
	bounded bool
	new     func(capacity int, opts newOpts) store
}

// newOpts tune a contender for one kind of measurement.
type newOpts struct {
	// sync asks contenders that maintain their policy in the background
	// (otter, ristretto) to do it before Set returns, so that a
	// single-threaded hit-ratio replay is deterministic and each policy
	// decides with all the information it would eventually have.
	sync bool
}

var contenders = []contender{
	{"fragcache", true, func(capacity int, _ newOpts) store {
		return &fragStore{c: backends.New(backends.NewSimple(capacity), backends.CacheOptions{})}
	}},
	{"fragcache-tinylfu", true, func(capacity int, _ newOpts) store {
		b := backends.NewSimpleWithOptions(backends.SimpleOptions{Threshold: capacity, Eviction: backends.EvictTinyLFU})
		return &fragStore{c: backends.New(b, backends.CacheOptions{})}
	}},
	{"otter", true, newOtter},
	{"go-cache", false, func(int, newOpts) store { return goCacheStore{gocache.New(gocache.NoExpiration, 0)} }},
	{"golang-lru", true, func(capacity int, _ newOpts) store {
		c, err := lru.New[string, []byte](capacity)
		if err != nil {
			panic(err)
		}
		return lruStore{c}
	}},
	{"ristretto", true, newRistretto},
}

// fragStore uses SimpleCache through backends.Cache, as an application
// does: GetValue and Bytes are the zero-copy read fragment caching uses, and
// Set wraps the value in the stored-value envelope (one copy, which the
// backend keeps).
type fragStore struct{ c *backends.Cache }

func (s *fragStore) Get(key string) bool {
	v, err := s.c.GetValue(context.Background(), key)
	if err != nil {
		panic(err)
	}
	b, ok := v.Bytes()
	return use(b, ok)
}

func (s *fragStore) Set(key string, value []byte) {
	if err := s.c.Set(context.Background(), key, value); err != nil {
		panic(err)
	}
}

func (s *fragStore) Len() int { return s.c.Backend().(*backends.Simple).Len() }
func (s *fragStore) Close()   { _ = s.c.Close() }

// sink keeps the reads of values from being optimized away. Adding to it
// from two goroutines would itself cost a shared cache line per Get, so
// use adds only for a value starting with a byte no benchmark value has.
var sink atomic.Uint32

func use(v []byte, ok bool) bool {
	if ok && len(v) > 0 && v[0] == 0xFF {
		sink.Add(1)
	}
	return ok
}

type otterStore struct{ c *otter.Cache[string, []byte] }

func newOtter(capacity int, o newOpts) store {
	opts := &otter.Options[string, []byte]{MaximumSize: capacity}
	if o.sync {
		opts.Executor = func(fn func()) { fn() }
	}
	return otterStore{otter.Must(opts)}
}

func (s otterStore) Get(key string) bool { v, ok := s.c.GetIfPresent(key); return use(v, ok) }
func (s otterStore) Set(key string, value []byte) {
	s.c.Set(key, value)
}
func (s otterStore) Len() int { s.c.CleanUp(); return s.c.EstimatedSize() }
func (s otterStore) Close()   { s.c.StopAllGoroutines() }

type goCacheStore struct{ c *gocache.Cache }

func (s goCacheStore) Get(key string) bool {
	v, ok := s.c.Get(key)
	if !ok {
		return false
	}
	return use(v.([]byte), ok)
}
func (s goCacheStore) Set(key string, value []byte) { s.c.Set(key, value, gocache.NoExpiration) }
func (s goCacheStore) Len() int                     { return s.c.ItemCount() }
func (s goCacheStore) Close()                       {}

type lruStore struct{ c *lru.Cache[string, []byte] }

func (s lruStore) Get(key string) bool          { v, ok := s.c.Get(key); return use(v, ok) }
func (s lruStore) Set(key string, value []byte) { s.c.Add(key, value) }
func (s lruStore) Len() int                     { return s.c.Len() }
func (s lruStore) Close()                       {}

type ristrettoStore struct {
	c    *ristretto.Cache[string, []byte]
	sync bool
}

func newRistretto(capacity int, o newOpts) store {
	c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters:        10 * int64(capacity), // ristretto's advice: 10× the items
		MaxCost:            int64(capacity),      // every item costs 1
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		panic(err)
	}
	return ristrettoStore{c, o.sync}
}

func (s ristrettoStore) Get(key string) bool { v, ok := s.c.Get(key); return use(v, ok) }
func (s ristrettoStore) Set(key string, value []byte) {
	s.c.Set(key, value, 1)
	if s.sync {
		s.c.Wait()
	}
}
func (s ristrettoStore) Len() int { s.c.Wait(); return -1 } // unknown without its metrics, which slow it down
func (s ristrettoStore) Close()   { s.c.Close() }
