//go:build !race

// The race detector makes sync.Pool (Jet's Runtime pool among them) drop
// items at random, so allocation counts are only exact without it; make
// test runs this file in a pass of its own.

package jettag

import (
	"bytes"
	"testing"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A hit of a block without vary_on allocates nothing beyond what Jet
// allocates to execute a page printing the same text: execute's body
// closure stays on the stack and no pool is touched.
func TestHitAllocatesNothingBeyondJet(t *testing.T) {
	e := newEnv(t, envConfig{}, map[string]string{"/a.jet": `{{ cache 300, "n" }}<p>{{ user }}</p>{{ endcache }}`})
	vars := jet.VarMap{}.Set("user", "alice")
	out, err := e.render("/a.jet", vars, nil)
	require.NoError(t, err)
	require.Equal(t, "<p>alice</p>", out)

	cached, err := e.set.GetTemplate("/a.jet")
	require.NoError(t, err)
	constant, err := jet.NewSet(jet.NewInMemLoader()).Parse("/c.jet", out)
	require.NoError(t, err)
	var w bytes.Buffer
	allocs := func(tpl *jet.Template) float64 {
		return testing.AllocsPerRun(100, func() {
			w.Reset()
			if err := tpl.Execute(&w, vars, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	jetAlone := allocs(constant)
	assert.Equal(t, jetAlone, allocs(cached), "a hit's allocations; Jet alone makes %v", jetAlone)
	assert.Equal(t, out, w.String())
	assert.EqualValues(t, 101, e.fc.Stats().Hits)
}
