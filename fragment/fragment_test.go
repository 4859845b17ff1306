package fragment

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// TestFragmentReturnsWhatRenderWrites runs the same blocks through
// Fragment and Render, on every path a block can take, and requires the
// same output, the same error and the same counters.
func TestFragmentReturnsWhatRenderWrites(t *testing.T) {
	const out = "<li>fragment</li>"
	cases := []struct {
		name    string
		store   func() backends.Backend
		timeout any
		body    func(io.Writer) error
		warm    bool // render once before the measured call
		err     bool
	}{
		{"miss", func() backends.Backend { return backends.NewSimple(0) }, 300, nil, false, false},
		{"hit", func() backends.Backend { return backends.NewSimple(0) }, 300, nil, true, false},
		{"del", func() backends.Backend { return backends.NewSimple(0) }, "del", nil, true, false},
		{"backend down", func() backends.Backend { return brokenBackend{} }, 300, nil, false, false},
		{"empty fragment hit", func() backends.Backend { return backends.NewSimple(0) }, 300,
			func(io.Writer) error { return nil }, true, false},
		{"bad timeout", func() backends.Backend { return backends.NewSimple(0) }, "soon", nil, false, true},
		{"body error", func() backends.Backend { return backends.NewSimple(0) }, 300,
			func(io.Writer) error { return io.ErrUnexpectedEOF }, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := func(viaFragment bool) (string, Stats, error) {
				c := New(backends.New(tc.store(), backends.CacheOptions{}), Options{Logger: slog.New(slog.DiscardHandler)})
				body := tc.body
				if body == nil {
					body, _ = countingBody(out)
				}
				call := Call{Site: testSite(), Timeout: tc.timeout}
				if tc.warm {
					_, err := render(c, Call{Site: testSite(), Timeout: 300}, body)
					require.NoError(t, err)
				}
				if viaFragment {
					frag, err := c.Fragment(context.Background(), call, body)
					return string(frag), c.Stats(), err
				}
				s, err := render(c, call, body)
				return s, c.Stats(), err
			}
			wantOut, wantStats, wantErr := run(false)
			gotOut, gotStats, gotErr := run(true)
			if tc.err {
				require.Error(t, wantErr)
				assert.Equal(t, wantErr.Error(), gotErr.Error())
				return
			}
			require.NoError(t, wantErr)
			require.NoError(t, gotErr)
			assert.Equal(t, wantOut, gotOut)
			assert.Equal(t, wantStats, gotStats)
		})
	}
}

// TestFragmentHitIsTheStoredValue checks the point of Fragment: a hit
// hands back the bytes the backend holds, not a copy of them.
func TestFragmentHitIsTheStoredValue(t *testing.T) {
	c, store := newTestCache(Options{})
	body, renders := countingBody("<li>stored once</li>")
	call := Call{Site: testSite(), Timeout: 300, Name: "sidebar"}
	first, err := c.Fragment(context.Background(), call, body)
	require.NoError(t, err)
	frag, err := c.Fragment(context.Background(), call, body)
	require.NoError(t, err)
	assert.Equal(t, "<li>stored once</li>", string(frag))
	assert.Equal(t, string(first), string(frag))
	assert.EqualValues(t, 1, renders.Load())

	v, err := store.GetValue(context.Background(), c.Key("sidebar"))
	require.NoError(t, err)
	stored, ok := v.Text()
	require.True(t, ok)
	assert.Equal(t, unsafe.SliceData(stored), unsafe.SliceData(frag), "a hit must return the stored bytes themselves")
}
