package bounded_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fragcache/fragcache/metrics/internal/bounded"
)

func TestMapKeepsLimitNamesThenOverflows(t *testing.T) {
	made := map[string]int{}
	var mu sync.Mutex
	m := bounded.New(3, func(name string) *atomic.Int64 {
		mu.Lock()
		defer mu.Unlock()
		made[name]++
		return new(atomic.Int64)
	})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			for range 100 {
				m.Get("n" + strconv.Itoa(i%5)).Add(1)
			}
		})
	}
	wg.Wait()
	for name, n := range made {
		assert.Equal(t, 1, n, "%s built once", name)
	}
	assert.Len(t, made, 4, "3 names and the overflow")
	assert.Contains(t, made, bounded.Overflow)
	assert.Same(t, m.Get("brand new"), m.Get(bounded.Overflow))
	count := 0
	m.Range(func(string, *atomic.Int64) { count++ })
	assert.Equal(t, 4, count)
}
