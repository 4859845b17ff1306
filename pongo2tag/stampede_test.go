package pongo2tag

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
	"github.com/fragcache/fragcache/keys"
)

// deadline bounds every wait in these tests, so a deadlock fails instead of
// hanging.
const deadline = 10 * time.Second

func TestStampedeRendersOnce(t *testing.T) {
	const n = 32
	errBody := errors.New("body failed")
	cases := []struct {
		name string
		fail error
	}{
		{"successful render is shared", nil},
		{"failed render is shared, not stored, retried", errBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc, simple := newCache(fragment.Options{})
			tpl := fromString(t, newSet(t), `<p>{% cache 300, "hot" %}{{ gate() }}{% endcache %}</p>`)
			g := &testkit.Gate{Waiting: func() uint64 { return fc.Stats().Waiting }, Want: n - 1, Fail: tc.fail}
			g.Armed.Store(true)
			data := With(context.Background(), fc, pongo2.Context{"gate": g.Call})

			outs := make([]string, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i], errs[i] = tpl.Execute(data)
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * deadline):
				t.Fatal("renders did not return: deadlock")
			}

			assert.Equal(t, int64(1), g.Calls.Load(), "body evaluations")
			st := fc.Stats()
			assert.Equal(t, uint64(1), st.Renders)
			assert.Equal(t, uint64(n-1), st.Waits)
			for i := range n {
				if tc.fail == nil {
					require.NoError(t, errs[i])
					assert.Equal(t, "<p>body</p>", outs[i])
					continue
				}
				require.Error(t, errs[i], "goroutine %d", i)
				assert.Contains(t, errs[i].Error(), errBody.Error())
				pe := pongoError(t, errs[i])
				assert.Equal(t, positionOf(t, "<p>{% cache 300, \"hot\" %}{{ gate() }}", "gate()"), position{pe.Line, pe.Column})
			}
			if tc.fail == nil {
				assert.Equal(t, 1, simple.Len())
				return
			}
			assert.Zero(t, simple.Len(), "a failed render was stored")

			g.Armed.Store(false)
			g.Fail = nil // no goroutine uses g now
			out, err := tpl.Execute(data)
			require.NoError(t, err)
			assert.Equal(t, "<p>body</p>", out)
			ok, err := fc.Store().Has(context.Background(), keys.MakeTemplateFragmentKey("hot"))
			require.NoError(t, err)
			assert.True(t, ok, "the retry was not stored")
		})
	}
}
