package jettag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/CloudyKit/jet/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/keys"
)

// waitForWaiters blocks until n goroutines wait in Render, or fails after a
// generous deadline (which only a broken dedupe reaches).
func waitForWaiters(fc *fragment.Cache, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for fc.Stats().Waiting < uint64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d goroutines waited for the render", fc.Stats().Waiting, n)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

var errBoom = errors.New("boom")

func TestStampedeRendersOnce(t *testing.T) {
	const goroutines = 32
	for _, failFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("body fails=%v", failFirst), func(t *testing.T) {
			e := newEnv(t, envConfig{}, map[string]string{"/hot.jet": "<{{ cache 300, \"hot\" }}{{ gate() }}{{ endcache }}>"})
			var evaluations atomic.Int32
			var fail atomic.Bool
			fail.Store(failFirst)
			vars := jet.VarMap{}.SetFunc("gate", func(jet.Arguments) reflect.Value {
				evaluations.Add(1)
				// Hold the render until every other goroutine waits for it.
				if err := waitForWaiters(e.fc, goroutines-1); err != nil {
					panic(err)
				}
				if fail.Load() {
					panic(fmt.Errorf("gate: %w", errBoom))
				}
				return reflect.ValueOf("body")
			})

			outs, errs := make([]string, goroutines), make([]error, goroutines)
			var wg sync.WaitGroup
			for i := range goroutines {
				wg.Go(func() { outs[i], errs[i] = e.render("/hot.jet", vars, nil) })
			}
			wg.Wait()
			require.Equal(t, int32(1), evaluations.Load(), "one body evaluation for %d concurrent misses", goroutines)
			stats := e.fc.Stats()
			assert.Equal(t, uint64(1), stats.Renders)
			assert.Equal(t, uint64(goroutines-1), stats.Waits)

			has, err := e.store.Has(context.Background(), keys.MakeTemplateFragmentKey("hot"))
			require.NoError(t, err)
			if !failFirst {
				for i := range goroutines {
					require.NoError(t, errs[i])
					assert.Equal(t, "<body>", outs[i])
				}
				assert.True(t, has)
				return
			}
			for i := range goroutines {
				assert.ErrorIs(t, errs[i], errBoom, "goroutine %d gets the render's error", i)
			}
			assert.False(t, has, "a failed render stores nothing")

			// The next render retries, alone this time.
			fail.Store(false)
			tpl, err := e.set.GetTemplate("/hot.jet")
			require.NoError(t, err)
			vars.SetFunc("gate", func(jet.Arguments) reflect.Value {
				evaluations.Add(1)
				return reflect.ValueOf("body")
			})
			var out bytes.Buffer
			require.NoError(t, tpl.Execute(&out, vars, nil))
			assert.Equal(t, "<body>", out.String())
			assert.Equal(t, int32(2), evaluations.Load())
		})
	}
}
