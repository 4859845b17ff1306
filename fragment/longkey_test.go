package fragment

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// A block's key, built on the stack up to 128 bytes and on the heap past
// them, escaped in place with unambiguous keys, is the key Cache.Key names
// and the key the miss stored under: the second render is a hit, and
// blocks whose names differ only around the stack buffer's end do not
// share a fragment.
func TestLongKeysHitTheirOwnFragment(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []Options{{}, {UnambiguousKeys: true}, {KeyPrefix: "pre:", UnambiguousKeys: true}, {KeyPrefix: strings.Repeat("p", 130)}} {
		for _, bprefix := range []string{"", strings.Repeat("b", 200)} {
			store := backends.New(backends.NewSimple(0), backends.CacheOptions{KeyPrefix: bprefix})
			c := New(store, opts)
			for n := 90; n < 140; n++ {
				for _, fill := range []string{"x", "_", "%", ":"} {
					name := strings.Repeat(fill, n)
					vary := strings.Repeat("_%", n%7)
					call := Call{Site: testSite(), Timeout: 60, Name: name, VaryOn: []any{vary}}
					want := name + "|" + vary
					body, runs := countingBody(want)
					for range 2 {
						out, err := c.Fragment(ctx, call, body)
						require.NoError(t, err)
						require.Equal(t, want, string(out))
					}
					assert.EqualValues(t, 1, runs.Load(), "%+v %q: the second render is a hit", opts, name)
					v, err := store.GetValue(ctx, c.Key(name, vary))
					require.NoError(t, err)
					require.True(t, v.Found(), "%+v: stored under Key(%q)", opts, name)
				}
			}
		}
	}
}
