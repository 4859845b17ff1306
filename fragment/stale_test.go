package fragment

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

func TestHeaderRoundTrips(t *testing.T) {
	tests := []struct {
		name   string
		frag   []byte
		headed bool
		m      meta
	}{
		{"plain text is stored as it is", []byte("<p>x</p>"), false, meta{}},
		{"empty", []byte{}, false, meta{}},
		{"headed", []byte("<p>x</p>"), true, meta{stale: 1_700_000_000_123, render: 4567}},
		{"headed empty", []byte{}, true, meta{stale: 1, render: 1}},
		{"a fragment starting with the mark gets a header even when off", []byte{headerMark, 1, 2, 3}, false, meta{}},
		{"a short fragment starting with the mark", []byte{headerMark}, false, meta{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := encodeValue(tt.frag, tt.headed, tt.m)
			frag, m, ok := decodeValue(v)
			require.True(t, ok)
			assert.Equal(t, tt.frag, frag)
			assert.Equal(t, tt.m, m)
			if !tt.headed && (len(tt.frag) == 0 || tt.frag[0] != headerMark) {
				assert.Equal(t, tt.frag, v, "without a header the value is the fragment")
			}
		})
	}
	for _, bad := range [][]byte{{headerMark}, {headerMark, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {headerMark, 1, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		_, _, ok := decodeValue(bad)
		assert.False(t, ok, "%x is no valid header", bad)
	}
}

// A stored value that starts with the header mark but is no header is a
// miss, and is overwritten.
func TestForeignValueWithTheMarkIsAMiss(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{})
	require.NoError(t, store.Set(ctx, c.Key("m"), []byte{headerMark, 9, 'x'}))
	body, calls := countingBody("fresh")
	out, err := render(c, Call{Site: testSite(), Timeout: 60, Name: "m"}, body)
	require.NoError(t, err)
	assert.Equal(t, "fresh", out)
	assert.EqualValues(t, 1, calls.Load())
	var stored []byte
	_, err = store.Get(ctx, c.Key("m"), &stored)
	require.NoError(t, err)
	assert.Equal(t, []byte("fresh"), stored)
}

func TestStaleWhileRevalidateStoresAHeaderAndTheGracePeriod(t *testing.T) {
	spy := newSpy()
	store := backends.New(spy, backends.CacheOptions{DefaultTimeout: time.Hour})
	c := New(store, Options{StaleWhileRevalidate: 30 * time.Second})
	body, _ := countingBody("<p>x</p>")
	for _, tt := range []struct {
		name    string
		timeout any
		ttl     time.Duration
	}{
		{"explicit", 60, 90 * time.Second},
		{"the store's default", nil, time.Hour + 30*time.Second},
		{"never expires: no grace", 0, backends.NoExpiry},
	} {
		call := Call{Site: testSite(), Timeout: tt.timeout, Name: tt.name}
		before := time.Now()
		_, err := render(c, call, body)
		require.NoError(t, err)
		assert.Equal(t, tt.ttl, spy.ttl(t, c.Key(tt.name)), tt.name)
		raw, found, err := spy.Get(context.Background(), c.Key(tt.name))
		require.NoError(t, err)
		require.True(t, found)
		frag, m, ok := c.fragmentOf(valueOf(t, raw))
		require.True(t, ok, tt.name)
		assert.Equal(t, "<p>x</p>", string(frag))
		if tt.ttl == backends.NoExpiry {
			assert.Zero(t, m.stale, "a fragment that never expires never goes stale")
		} else {
			life := tt.ttl - 30*time.Second
			assert.InDelta(t, before.Add(life).UnixMilli(), m.stale, float64(time.Since(before).Milliseconds()+1), tt.name)
		}
	}
}

// valueOf reads raw stored bytes back as a backends.Value, through a cache
// over a backend holding them.
func valueOf(t *testing.T, raw []byte) backends.Value {
	t.Helper()
	s := backends.NewSimple(0)
	require.NoError(t, s.Set(context.Background(), "k", raw, backends.NoExpiry))
	v, err := backends.New(s, backends.CacheOptions{}).GetValue(context.Background(), "k")
	require.NoError(t, err)
	return v
}

// Once a fragment's timeout has passed, the first render re-renders it and
// every concurrent render is served the stale copy at once.
func TestStaleFragmentIsServedWhileOneRenderRefreshesIt(t *testing.T) {
	const others = 8
	c, _ := newTestCache(Options{StaleWhileRevalidate: time.Hour})
	call := Call{Site: testSite(), Timeout: 0.05, Name: "swr"}
	var version atomic.Int64
	release := make(chan struct{})
	var calls atomic.Int64
	body := func(w io.Writer) error {
		calls.Add(1)
		n := version.Add(1)
		if n == 2 {
			<-release // the refresh takes its time
		}
		_, err := io.WriteString(w, "v"+string(rune('0'+n)))
		return err
	}
	out, err := render(c, call, body)
	require.NoError(t, err)
	require.Equal(t, "v1", out)
	time.Sleep(60 * time.Millisecond) // past the timeout; the grace period keeps it stored

	refreshed := make(chan string, 1)
	go func() {
		out, err := render(c, call, body)
		assert.NoError(t, err)
		refreshed <- out
	}()
	testkit.Eventually(t, "the refresh renders", func() bool { return version.Load() == 2 })
	var wg sync.WaitGroup
	outs := make([]string, others)
	for i := range others {
		wg.Go(func() {
			var err error
			outs[i], err = render(c, call, body)
			assert.NoError(t, err)
		})
	}
	within(t, wg.Wait) // none of them waits for the refresh
	for i := range others {
		assert.Equal(t, "v1", outs[i], "render %d is served the stale fragment", i)
	}
	close(release)
	assert.Equal(t, "v2", <-refreshed, "the refreshing render writes the new fragment")
	out, err = render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, "v2", out, "the new fragment is stored")
	assert.EqualValues(t, 2, calls.Load())
	st := c.Stats()
	assert.EqualValues(t, others, st.StaleHits)
	assert.EqualValues(t, 1, st.Refreshes)
	assert.EqualValues(t, 2, st.Renders)
	assert.EqualValues(t, 1, st.Hits)
}

// While the backend cannot be reached, a fragment kept in memory is served
// until its grace period ends; then blocks render uncached.
func TestStaleCopyIsServedWhileTheBackendFails(t *testing.T) {
	f := &switchable{Backend: backends.NewSimple(0)}
	c := New(backends.New(f, backends.CacheOptions{}), Options{StaleWhileRevalidate: 100 * time.Millisecond})
	call := Call{Site: testSite(), Timeout: 0.05, Name: "kept"}
	body, calls := countingBody("kept fragment")
	_, err := render(c, call, body)
	require.NoError(t, err)
	stored := time.Now()

	f.down.Store(true)
	out, err := render(c, call, body)
	require.NoError(t, err)
	if time.Since(stored) < 150*time.Millisecond { // a loaded machine may be slower
		assert.Equal(t, "kept fragment", out)
		assert.EqualValues(t, 1, calls.Load(), "the copy is served without rendering")
		assert.EqualValues(t, 1, c.Stats().StaleHits)
	}
	time.Sleep(150*time.Millisecond - time.Since(stored)) // past timeout and grace
	out, err = render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, "kept fragment", out)
	assert.EqualValues(t, calls.Load(), 2, "past its grace period the copy is not served: the block renders")

	// Without StaleWhileRevalidate nothing is kept.
	c2 := New(backends.New(f, backends.CacheOptions{}), Options{})
	f.down.Store(false)
	_, err = render(c2, call, body)
	require.NoError(t, err)
	f.down.Store(true)
	before := calls.Load()
	_, err = render(c2, call, body)
	require.NoError(t, err)
	assert.Equal(t, before+1, calls.Load())
}

// switchable is a backend that fails every call while down is set.
type switchable struct {
	backends.Backend
	down atomic.Bool
}

func (s *switchable) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if s.down.Load() {
		return nil, false, errRefused
	}
	return s.Backend.Get(ctx, key)
}

func (s *switchable) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.down.Load() {
		return errRefused
	}
	return s.Backend.Set(ctx, key, value, ttl)
}

// Early refresh draws, on each read, whether to refresh before the
// timeout: certain with a huge β, never with a tiny one.
func TestEarlyRefresh(t *testing.T) {
	for _, tt := range []struct {
		beta      float64
		refreshes uint64
	}{{1e12, 1}, {1e-12, 0}} {
		c, _ := newTestCache(Options{EarlyRefresh: tt.beta})
		call := Call{Site: testSite(), Timeout: 3600, Name: "xfetch"}
		var n atomic.Int64
		body := func(w io.Writer) error {
			time.Sleep(2 * time.Millisecond) // a render time for the header
			_, err := io.WriteString(w, "v"+string(rune('0'+n.Add(1))))
			return err
		}
		out, err := render(c, call, body)
		require.NoError(t, err)
		require.Equal(t, "v1", out)
		out, err = render(c, call, body)
		require.NoError(t, err)
		st := c.Stats()
		assert.Equal(t, tt.refreshes, st.Refreshes, "β %g", tt.beta)
		if tt.refreshes == 1 {
			assert.Equal(t, "v2", out, "the early refresh writes the new fragment")
		} else {
			assert.Equal(t, "v1", out)
			assert.EqualValues(t, 1, st.Hits)
		}
	}
}

// FuzzDecodeValue checks that no stored value makes the header decoder
// panic or allocate, that what it accepts re-encodes to the same bytes,
// and that a value without the mark is the fragment itself.
func FuzzDecodeValue(f *testing.F) {
	for _, seed := range [][]byte{
		nil, []byte("<p>plain</p>"), {headerMark}, {headerMark, headerVersion},
		encodeValue([]byte("<p>x</p>"), true, meta{stale: 1_700_000_000_000, render: 1234}),
		encodeValue([]byte{headerMark, 0}, false, meta{}),
		{headerMark, headerVersion, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0},
		{headerMark, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'x'},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var frag []byte
		var m meta
		var ok bool
		allocs := testing.AllocsPerRun(1, func() { frag, m, ok = decodeValue(v) })
		assert.Zero(t, allocs, "decoding allocates nothing")
		if !ok {
			require.True(t, len(v) > 0 && v[0] == headerMark, "only a marked value can be refused")
			return
		}
		if len(v) == 0 || v[0] != headerMark {
			assert.Equal(t, v, frag)
			return
		}
		assert.GreaterOrEqual(t, m.stale, int64(0))
		assert.Equal(t, v, encodeValue(frag, true, m), "an accepted header re-encodes to the same bytes")
	})
}
