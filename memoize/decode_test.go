package memoize

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

type event struct {
	Name string
	At   time.Time
	Tags map[string]any
	List []int
}

// hostileEntries are stored entries (envelope included) that must be a
// logged miss, never a crash or a large allocation.
var hostileEntries = []struct {
	name, raw  string
	mapDecodes bool // into entry[map[string]any] it is a valid (stale) entry
}{
	// 22 bytes: {"v": "xxxxxxxx", "r": ext header hiding a map32 of 2^32-1}.
	{"ext header hiding a map32 as the result", "\xf7\x82\xa1v\xa8xxxxxxxx\xa1r\xd4\x00\xdf\xff\xff\xff\xff", false},
	{"ext header hiding a map32 as a result field", "\xf7\x82\xa1v\xa0\xa1r\x81\xa4Tags\xd4\x00\xdf\xff\xff\xff\xff", false},
	{"nil for the result's time.Time", "\xf7\x82\xa1v\xa0\xa1r\x81\xa2At\xc0", true},
	{"a pickle Flask-Caching wrote", "!\x80\x04K\x2a.", false},
	{"text", "bacon", false},
}

func TestHostileEntryIsALoggedMiss(t *testing.T) {
	for _, tt := range hostileEntries {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("map[string]any result", func(t *testing.T) {
				checkHostileEntry(t, tt.raw, map[string]any{"fresh": "result"}, !tt.mapDecodes)
			})
			t.Run("struct result", func(t *testing.T) {
				checkHostileEntry(t, tt.raw, event{Name: "fresh", At: time.Unix(1, 0)}, true)
			})
		})
	}
}

// checkHostileEntry stores raw as the entry of a memoized function
// returning want, and checks that a call is a miss (logged as a decode
// error when undecodable) that stores over it.
func checkHostileEntry[R any](t *testing.T, raw string, want R, undecodable bool) {
	var logs bytes.Buffer
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	runs := 0
	m := Func(c, func(context.Context, int) (R, error) { runs++; return want, nil },
		Options{Name: "hostile", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	ctx := t.Context()
	key, err := m.m.hash(nil, 1)
	require.NoError(t, err)
	require.NoError(t, c.Backend().Set(ctx, key, []byte(raw), backends.NoExpiry))

	var got R
	require.NotPanics(t, func() { got, err = m.Call(ctx, 1) })
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, 1, runs)
	lines := testkit.LogLines(t, &logs)
	if undecodable {
		require.Len(t, lines, 1, "one decode error logged")
		assert.Equal(t, "decode", lines[0]["op"])
	} else {
		assert.Empty(t, lines, "a stale entry is no error")
	}

	got, err = m.Call(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, 1, runs, "the entry was stored over the hostile one")
}

// FuzzDecodeResult feeds stored bytes to the path a memoized function's
// result takes from the store: no input may panic or allocate more than
// the budget, whatever the result type.
func FuzzDecodeResult(f *testing.F) {
	for _, tt := range hostileEntries {
		f.Add([]byte(tt.raw))
	}
	var valid [][]byte // one entry of each result type, in the order of the memos below
	for _, r := range []any{
		entry[map[string]any]{Version: "v1", Result: map[string]any{"a": []any{int64(1), "x"}}},
		entry[event]{Version: "v1", Result: event{Name: "n", At: time.Unix(1700000000, 1), Tags: map[string]any{"k": nil}, List: []int{1}}},
		entry[[]any]{Version: "v1", Result: []any{"a", 1.5}},
	} {
		b, err := msgpack.Marshal(r)
		require.NoError(f, err)
		valid = append(valid, append([]byte{0xf7}, b...))
		f.Add(valid[len(valid)-1])
	}
	c := backends.New(backends.NewSimple(0), backends.CacheOptions{})
	logger := slog.New(slog.DiscardHandler)
	mMap := Func(c, func(context.Context, int) (map[string]any, error) { return nil, nil }, Options{Name: "m", Logger: logger})
	mEvent := Func(c, func(context.Context, int) (event, error) { return event{}, nil }, Options{Name: "e", Logger: logger})
	mList := Func(c, func(context.Context, int) ([]any, error) { return nil, nil }, Options{Name: "l", Logger: logger})
	ctx := context.Background()
	// The first decode into a type builds the codec's and reflect's tables
	// for it, once per process: not the input's cost, so not in the budget.
	for i, decode := range []func(backends.Value){
		func(v backends.Value) { mMap.m.decode(v, "k", "v1") },
		func(v backends.Value) { mEvent.m.decode(v, "k", "v1") },
		func(v backends.Value) { mList.m.decode(v, "k", "v1") },
	} {
		require.NoError(f, c.Backend().Set(ctx, "k", valid[i], backends.NoExpiry))
		v, err := c.GetValue(ctx, "k")
		require.NoError(f, err)
		decode(v)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		require.NoError(t, c.Backend().Set(ctx, "k", raw, backends.NoExpiry))
		v, err := c.GetValue(ctx, "k")
		require.NoError(t, err)
		budget := testkit.DecodeBudget(len(raw))
		for name, decode := range map[string]func(){
			"map[string]any": func() { mMap.m.decode(v, "k", "v1") },
			"event":          func() { mEvent.m.decode(v, "k", "v1") },
			"[]any":          func() { mList.m.decode(v, "k", "v1") },
		} {
			if n := testkit.Allocated(decode); n > budget {
				t.Fatalf("decoding %d bytes into %s allocated %d bytes, more than %d", len(raw), name, n, budget)
			}
		}
	})
}
