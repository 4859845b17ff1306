package fragment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/keys"
)

func TestRenderStoresUnderFlaskKey(t *testing.T) {
	site := testSite()
	const digest = "d1g35t"
	digestSite := &Site{Path: site.Path, Line: site.Line, Col: site.Col, Digest: digest}
	unnamed := keys.FragmentName(site.Path, site.Line)
	tests := []struct {
		name string
		opts Options
		call Call
		want string // key within the backend cache
	}{
		{
			name: "named block without vary_on",
			call: Call{Site: site, Name: "sidebar"},
			want: keys.MakeTemplateFragmentKey("sidebar"),
		},
		{
			name: "vary_on values in their text forms",
			call: Call{Site: site, Name: "sidebar", VaryOn: []any{42, "en", true, nil, 1.5}},
			want: keys.MakeTemplateFragmentKey("sidebar", "42", "en", "true", "None", "1.5"),
		},
		{
			name: "name that is not a string",
			call: Call{Site: site, Name: 7, VaryOn: []any{"x"}},
			want: keys.MakeTemplateFragmentKey("7", "x"),
		},
		{
			name: "unnamed block is named after path and line",
			call: Call{Site: site},
			want: keys.MakeTemplateFragmentKey(unnamed),
		},
		{
			name: "unnamed block with vary_on",
			call: Call{Site: site, VaryOn: []any{"u1"}},
			want: keys.MakeTemplateFragmentKey(unnamed, "u1"),
		},
		{
			// A name argument that evaluates to nil (an undefined variable)
			// falls back to the position instead of colliding on "None".
			name: "nil name counts as no name",
			call: Call{Site: site, Name: nil},
			want: keys.MakeTemplateFragmentKey(unnamed),
		},
		{
			name: "digest ignored without SourceDigest",
			call: Call{Site: digestSite},
			want: keys.MakeTemplateFragmentKey(unnamed),
		},
		{
			name: "SourceDigest adds the digest to unnamed blocks",
			opts: Options{SourceDigest: true},
			call: Call{Site: digestSite, VaryOn: []any{"u1"}},
			want: keys.MakeTemplateFragmentKey(unnamed+"@"+digest, "u1"),
		},
		{
			name: "SourceDigest keeps named blocks' Flask keys",
			opts: Options{SourceDigest: true},
			call: Call{Site: digestSite, Name: "sidebar"},
			want: keys.MakeTemplateFragmentKey("sidebar"),
		},
		{
			name: "SourceDigest without a digest adds nothing",
			opts: Options{SourceDigest: true},
			call: Call{Site: site},
			want: keys.MakeTemplateFragmentKey(unnamed),
		},
		{
			name: "KeyPrefix goes first",
			opts: Options{KeyPrefix: "frag:"},
			call: Call{Site: site, Name: "sidebar", VaryOn: []any{1}},
			want: "frag:" + keys.MakeTemplateFragmentKey("sidebar", "1"),
		},
		{
			name: "Version follows KeyPrefix",
			opts: Options{KeyPrefix: "frag:", Version: "v3"},
			call: Call{Site: site, Name: "sidebar"},
			want: "frag:v3:" + keys.MakeTemplateFragmentKey("sidebar"),
		},
		{
			name: "Version alone",
			opts: Options{Version: "v3"},
			call: Call{Site: site},
			want: "v3:" + keys.MakeTemplateFragmentKey(unnamed),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, store := newTestCache(tt.opts)
			body, _ := countingBody("<p>fragment</p>")
			out, err := render(c, tt.call, body)
			require.NoError(t, err)

			v, err := store.GetValue(ctx, tt.want)
			require.NoError(t, err)
			stored, ok := v.Bytes()
			require.True(t, ok, "nothing stored under %q", tt.want)
			assert.Equal(t, out, string(stored))
		})
	}
}

// Cache.Key and Cache.Delete are how app code invalidates what a named block
// stored; they must agree with Render under every prefix option, and on top
// of the backend cache's own prefix.
func TestKeyAndDeleteAgreeWithRender(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		storePrefix string
		varyOn      []string
	}{
		{name: "plain"},
		{name: "vary_on", varyOn: []string{"42", "en"}},
		{name: "KeyPrefix and Version", opts: Options{KeyPrefix: "frag:", Version: "v2"}, varyOn: []string{"42"}},
		{name: "backend cache prefix", storePrefix: "app:", varyOn: []string{"42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			backend := backends.NewSimple(0)
			store := backends.New(backend, backends.CacheOptions{KeyPrefix: tt.storePrefix})
			c := New(store, tt.opts)
			varyOn := make([]any, len(tt.varyOn))
			for i, v := range tt.varyOn {
				varyOn[i] = v
			}
			call := Call{Site: testSite(), Name: "sidebar", VaryOn: varyOn}
			body, _ := countingBody("x")
			_, err := render(c, call, body)
			require.NoError(t, err)

			key := c.Key("sidebar", tt.varyOn...)
			assert.True(t, strings.HasSuffix(key, keys.MakeTemplateFragmentKey("sidebar", tt.varyOn...)))
			has, err := backend.Has(ctx, tt.storePrefix+key)
			require.NoError(t, err)
			assert.True(t, has, "Key(...) = %q is not where Render stored", key)

			deleted, err := c.Delete(ctx, "sidebar", tt.varyOn...)
			require.NoError(t, err)
			assert.True(t, deleted)
			assert.Zero(t, backend.Len(), "Delete left the fragment behind")

			deleted, err = c.Delete(ctx, "sidebar", tt.varyOn...)
			require.NoError(t, err)
			assert.False(t, deleted, "a second Delete finds nothing")
		})
	}
}

func TestRenderRejectsBadKeyValue(t *testing.T) {
	site := testSite()
	tests := []struct {
		name string
		call Call
	}{
		{"struct name", Call{Site: site, Name: struct{}{}}},
		{"map vary_on", Call{Site: site, Name: "n", VaryOn: []any{map[string]int{}}}},
		{"slice vary_on of unnamed block", Call{Site: site, VaryOn: []any{"ok", []int{1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCache(Options{})
			body, calls := countingBody("x")
			out, err := render(c, tt.call, body)
			require.ErrorIs(t, err, ErrKeyValue)
			var se *SiteError
			require.ErrorAs(t, err, &se)
			assert.Same(t, site, se.Site)
			assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d:%d", site.Path, site.Line, site.Col)), err.Error())
			assert.Zero(t, calls.Load(), "body must not run")
			assert.Empty(t, out)
			assert.Zero(t, store.Backend().(*backends.Simple).Len())
		})
	}
}

// seconds is a float64 kind that is not float64 itself.
type seconds float64

func TestRenderTimeoutSetsTTL(t *testing.T) {
	tests := []struct {
		name         string
		timeout      any
		defaultTTL   time.Duration // Options.DefaultTimeout
		storeDefault time.Duration // backends.CacheOptions.DefaultTimeout
		want         time.Duration
	}{
		{name: "int seconds", timeout: 60, want: 60 * time.Second},
		{name: "int64 seconds", timeout: int64(5), want: 5 * time.Second},
		{name: "uint8 seconds", timeout: uint8(9), want: 9 * time.Second},
		{name: "named int seconds", timeout: userID(2), want: 2 * time.Second},
		{name: "float seconds", timeout: 1.5, want: 1500 * time.Millisecond},
		{name: "fraction of a second", timeout: 0.05, want: 50 * time.Millisecond},
		{name: "float32 seconds", timeout: float32(0.25), want: 250 * time.Millisecond},
		{name: "named float seconds", timeout: seconds(0.5), want: 500 * time.Millisecond},
		{name: "Duration as is", timeout: 90 * time.Millisecond, want: 90 * time.Millisecond},
		{name: "positive float below 1 ns is 1 ns, never \"never expires\"", timeout: 1e-10, want: time.Nanosecond},
		{name: "smallest positive float is 1 ns", timeout: math.SmallestNonzeroFloat64, want: time.Nanosecond},
		{name: "positive float32 below 1 ns is 1 ns", timeout: float32(1e-12), want: time.Nanosecond},
		{name: "largest float seconds a Duration holds", timeout: math.Nextafter(float64(math.MaxInt64)/1e9, 0), want: time.Duration(math.Nextafter(float64(math.MaxInt64)/1e9, 0) * 1e9)},
		{name: "0 never expires, as in Flask", timeout: 0, storeDefault: time.Hour, want: backends.NoExpiry},
		{name: "0.0 never expires", timeout: 0.0, defaultTTL: time.Minute, want: backends.NoExpiry},
		{name: "NoExpiry never expires", timeout: backends.NoExpiry, defaultTTL: time.Minute, want: backends.NoExpiry},
		{name: "a Duration of 0 is the default, as everywhere in Go", timeout: time.Duration(0), defaultTTL: time.Minute, want: time.Minute},
		{name: "Options.DefaultTimeout NoExpiry never expires", timeout: nil, defaultTTL: backends.NoExpiry, storeDefault: time.Hour, want: backends.NoExpiry},
		{name: "the store's default NoExpiry never expires", timeout: nil, storeDefault: backends.NoExpiry, want: backends.NoExpiry},
		{name: "nil is Options.DefaultTimeout", timeout: nil, defaultTTL: time.Minute, storeDefault: time.Hour, want: time.Minute},
		{name: "nil without Options.DefaultTimeout is the store's default", timeout: nil, storeDefault: time.Hour, want: time.Hour},
		{name: "nil with no default anywhere is Flask's 300 s", timeout: nil, want: backends.DefaultTimeout},
		{name: "explicit timeout beats both defaults", timeout: 3, defaultTTL: time.Minute, storeDefault: time.Hour, want: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy := newSpy()
			store := backends.New(spy, backends.CacheOptions{DefaultTimeout: tt.storeDefault})
			c := New(store, Options{DefaultTimeout: tt.defaultTTL})
			body, _ := countingBody("x")
			call := Call{Site: testSite(), Timeout: tt.timeout, Name: "t"}
			_, err := render(c, call, body)
			require.NoError(t, err)
			assert.Equal(t, tt.want, spy.ttl(t, c.Key("t")))
		})
	}
}

func TestRenderFloatTimeoutExpires(t *testing.T) {
	const ttl = 50 * time.Millisecond
	c, _ := newTestCache(Options{})
	body, calls := countingBody("x")
	call := Call{Site: testSite(), Timeout: ttl.Seconds(), Name: "short"}

	start := time.Now()
	_, err := render(c, call, body)
	require.NoError(t, err)
	_, err = render(c, call, body)
	require.NoError(t, err)
	if time.Since(start) < ttl { // a loaded machine may be slower; TestRenderTimeoutSetsTTL checks the TTL exactly
		assert.EqualValues(t, 1, calls.Load(), "within its TTL the fragment is a hit")
	}

	time.Sleep(ttl + 30*time.Millisecond - time.Since(start))
	before := calls.Load()
	_, err = render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, before+1, calls.Load(), "after its TTL the fragment has expired")
}

func TestRenderTimeoutDelDeletesAndRendersUncached(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{})
	key := c.Key("sidebar", "1")
	require.NoError(t, store.Set(ctx, key, []byte("stale")))
	body, calls := countingBody("fresh")
	call := Call{Site: testSite(), Timeout: "del", Name: "sidebar", VaryOn: []any{1}}

	for i := 1; i <= 2; i++ {
		out, err := render(c, call, body)
		require.NoError(t, err)
		assert.Equal(t, "fresh", out)
		assert.EqualValues(t, i, calls.Load(), "a \"del\" block always renders its body")
		has, err := store.Has(ctx, key)
		require.NoError(t, err)
		assert.False(t, has, "a \"del\" block deletes and does not store")
	}
	assert.Equal(t, Stats{DelBlocks: 2}, c.Stats())
}

func TestRenderRejectsBadTimeout(t *testing.T) {
	site := testSite()
	tests := []struct {
		name    string
		timeout any
	}{
		{"negative int", -1},
		{"negative int64", int64(-300)},
		{"int seconds overflowing a Duration", math.MaxInt64},
		{"uint seconds overflowing a Duration", uint64(math.MaxUint64)},
		{"negative float", -0.5},
		{"float seconds overflowing a Duration", float64(math.MaxInt64) / 1e9},
		{"just above the largest float seconds a Duration holds", math.Nextafter(float64(math.MaxInt64)/1e9, math.Inf(1))},
		{"float32 seconds overflowing a Duration", float32(math.MaxFloat32)},
		{"huge float", math.MaxFloat64},
		{"NaN", math.NaN()},
		{"+Inf", math.Inf(1)},
		{"negative Duration", -time.Second},
		{"numeric string", "60"},
		{"other string", "forever"},
		{"empty string", ""},
		{"bool", true},
		{"struct", struct{ S int }{1}},
		{"slice", []int{60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, store := newTestCache(Options{})
			body, calls := countingBody("x")
			out, err := render(c, Call{Site: site, Timeout: tt.timeout, Name: "n"}, body)
			require.ErrorIs(t, err, ErrTimeout)
			var se *SiteError
			require.ErrorAs(t, err, &se)
			assert.Same(t, site, se.Site)
			pos := fmt.Sprintf("%s:%d:%d", site.Path, site.Line, site.Col)
			assert.Equal(t, pos, site.String())
			assert.True(t, strings.HasPrefix(err.Error(), pos+":"), "%q does not start with the block's position", err)
			assert.Zero(t, calls.Load(), "body must not run")
			assert.Empty(t, out)
			assert.Zero(t, store.Backend().(*backends.Simple).Len())
		})
	}
}

func TestRenderServesHitsFromStore(t *testing.T) {
	tests := []struct {
		name string
		out  string
	}{
		{"html", "<ul><li>a</li></ul>\n"},
		{"empty body", ""},
		{"binary and invalid UTF-8", "\x00\xff\xfe<b>"},
		{"integer-looking text", "12345"},
		{"negative-number-looking text", "-7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestCache(Options{})
			body, calls := countingBody(tt.out)
			call := Call{Site: testSite(), Timeout: 60, Name: "n", VaryOn: []any{1}}

			first, err := render(c, call, body)
			require.NoError(t, err)
			assert.Equal(t, tt.out, first)
			assert.Equal(t, Stats{Misses: 1, Renders: 1}, c.Stats())

			for i := 1; i <= 3; i++ {
				again, err := render(c, call, body)
				require.NoError(t, err)
				assert.Equal(t, []byte(first), []byte(again), "a hit writes the stored bytes")
				assert.Equal(t, Stats{Hits: uint64(i), Misses: 1, Renders: 1}, c.Stats())
			}
			assert.EqualValues(t, 1, calls.Load(), "hits do not run the body")
		})
	}
}

func TestRenderReturnsBodyErrorAndStoresNothing(t *testing.T) {
	ctx := context.Background()
	c, store := newTestCache(Options{})
	bodyErr := errors.New("template: undefined variable")
	call := Call{Site: testSite(), Name: "n"}
	var buf strings.Builder
	err := c.Render(ctx, call, &buf, func(w io.Writer) error {
		_, _ = io.WriteString(w, "partial")
		return bodyErr
	})
	assert.Same(t, bodyErr, err, "a body's error is returned as the body returned it")
	assert.Empty(t, buf.String(), "a failed render writes nothing")
	has, err := store.Has(ctx, c.Key("n"))
	require.NoError(t, err)
	assert.False(t, has, "a failed render is not stored")

	body, calls := countingBody("ok")
	out, err := render(c, call, body)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)
	assert.EqualValues(t, 1, calls.Load())
}

// App code may write anything under a fragment's key; only text the block
// could have rendered is served, anything else is a miss that the render
// overwrites.
func TestRenderOverwritesStoredValueThatIsNotText(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"int", 42},
		{"negative int64", int64(-7)},
		{"uint64 beyond int64", uint64(math.MaxUint64)},
		{"float", 1.5},
		{"map", map[string]int{"a": 1}},
		{"slice", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, store := newTestCache(Options{})
			key := c.Key("n")
			require.NoError(t, store.Set(ctx, key, tt.value))
			body, calls := countingBody("<p>rendered</p>")
			call := Call{Site: testSite(), Name: "n"}

			out, err := render(c, call, body)
			require.NoError(t, err)
			assert.Equal(t, "<p>rendered</p>", out)
			assert.EqualValues(t, 1, calls.Load())
			assert.Equal(t, Stats{Misses: 1, Renders: 1}, c.Stats())

			var stored string
			found, err := store.Get(ctx, key, &stored)
			require.NoError(t, err)
			require.True(t, found)
			assert.Equal(t, out, stored, "the render overwrote the foreign value")
		})
	}
}

func TestOneSiteWithChangingNamesStoresUnderEachName(t *testing.T) {
	c, store := newTestCache(Options{})
	site := testSite()
	for _, name := range []string{"a", "b", "a", "c", "b"} {
		out, err := render(c, Call{Site: site, Timeout: 60, Name: name}, func(w io.Writer) error {
			_, err := io.WriteString(w, "body of "+name)
			return err
		})
		require.NoError(t, err)
		assert.Equal(t, "body of "+name, out, "a block must never be served another name's fragment")
		var got string
		found, err := store.Get(context.Background(), keys.MakeTemplateFragmentKey(name), &got)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "body of "+name, got)
	}
}
