package memcache

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPickServerAgreesWithGomemcache(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		addrs := make([]string, n)
		for i := range addrs {
			addrs[i] = "127.0.0.1:" + strconv.Itoa(11211+i)
		}
		var list memcache.ServerList
		require.NoError(t, list.SetServers(addrs...))
		t.Run(fmt.Sprintf("%d servers", n), func(t *testing.T) {
			for i := range 1000 {
				key := fmt.Sprintf("key-%d-%x", i, i*7919)
				want, err := list.PickServer(key)
				require.NoError(t, err)
				got := addrs[PickServer(key, n)]
				require.Equal(t, want.String(), got, "key %q", key)
			}
		})
	}
}

func TestPickServerIsStableAndSpreads(t *testing.T) {
	const n, keys = 4, 4000
	counts := make([]int, n)
	for i := range keys {
		key := "k" + strconv.Itoa(i)
		s := PickServer(key, n)
		assert.Equal(t, s, PickServer(key, n), "same key, same server")
		counts[s]++
	}
	for s, c := range counts {
		assert.InDelta(t, keys/n, c, keys/n/5, "server %d holds %d of %d keys", s, c, keys)
	}
	assert.Zero(t, PickServer("anything", 1))
}
