package backends_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

var registrySeq atomic.Int64

// uniqueBackendName returns a CACHE_TYPE no other test registers: the
// registry is global and tests may run more than once per process.
func uniqueBackendName(t *testing.T) string {
	return fmt.Sprintf("Test%s%d", strings.ReplaceAll(t.Name(), "/", "_"), registrySeq.Add(1))
}

// quietConfig is DefaultConfig with logging discarded.
func quietConfig(typ string) backends.Config {
	cfg := backends.DefaultConfig()
	cfg.Type = typ
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func TestOpenResolvesEveryImplementedNameOldAndNew(t *testing.T) {
	tests := []struct {
		names []string // Flask's current name, then its old alias
		want  reflect.Type
	}{
		{[]string{"NullCache", "null"}, reflect.TypeOf(backends.Null{})},
		{[]string{"SimpleCache", "simple"}, reflect.TypeOf(&backends.Simple{})},
	}
	for _, tt := range tests {
		for _, name := range tt.names {
			t.Run(name, func(t *testing.T) {
				cfg := quietConfig(name)
				c, err := backends.Open(cfg)
				require.NoError(t, err)
				t.Cleanup(func() { _ = c.Close() })
				assert.Equal(t, tt.want, reflect.TypeOf(c.Backend()))
			})
		}
	}
}

func TestOpenOfAnUnknownNameIsErrUnknownBackendListingKnownNames(t *testing.T) {
	// "simplecache" was a module name in Flask-Caching 1.9; dotted paths
	// name Python objects.
	for _, name := range []string{"NoSuchCache", "simplecache", "cachelib.SimpleCache", ""} {
		t.Run(name, func(t *testing.T) {
			_, err := backends.Open(quietConfig(name))
			require.ErrorIs(t, err, backends.ErrUnknownBackend)
			assert.Contains(t, err.Error(), fmt.Sprintf("%q", name))
			assert.Contains(t, err.Error(), strings.Join(backends.Types(), ", "), "the error lists every known name")
		})
	}
}

func TestTypesListsBuiltInsAliasesAndRegisteredNamesSorted(t *testing.T) {
	name := uniqueBackendName(t)
	backends.Register(name, func(backends.Config) (backends.Backend, error) { return backends.NewNull(), nil })
	types := backends.Types()
	assert.True(t, slices.IsSorted(types))
	for _, want := range []string{"NullCache", "null", "SimpleCache", "simple", name} {
		assert.Contains(t, types, want)
	}
	for _, absent := range []string{"RedisCache", "redis", "gaememcached", "FileSystemCache"} {
		assert.NotContains(t, types, absent, "a family's names are known once its package is imported")
	}
	assert.Equal(t, len(types), len(slices.Compact(slices.Clone(types))), "no duplicates")
}

func TestRegisteredFactoryReceivesTheConfigLikeFlasksCustomFactory(t *testing.T) {
	name := uniqueBackendName(t)
	var got backends.Config
	backends.Register(name, func(cfg backends.Config) (backends.Backend, error) {
		got = cfg
		return backends.NewSimple(cfg.Threshold), nil
	})
	cfg, err := backends.FromMap(map[string]any{
		"CACHE_TYPE":    name,
		"CACHE_ARGS":    []any{"127.0.0.1:4000", 2},
		"CACHE_OPTIONS": map[string]any{"pool_size": 4},
		"CACHE_DIR":     "/srv/cache",
	})
	require.NoError(t, err)
	_, err = backends.Open(cfg)
	require.NoError(t, err)
	assert.Equal(t, []any{"127.0.0.1:4000", 2}, got.Args)
	assert.Equal(t, map[string]any{"pool_size": 4}, got.Options)
	assert.Equal(t, "/srv/cache", got.Settings["CACHE_DIR"], "the whole Config, not just args and options")
}

func TestOpenAppliesTheFrontendSettings(t *testing.T) {
	name := uniqueBackendName(t)
	f := &faulty{Simple: backends.NewSimple(0), fail: map[string]bool{"app_bad": true}}
	backends.Register(name, func(backends.Config) (backends.Backend, error) { return f, nil })
	logger, buf := logBuffer()
	cfg := quietConfig(name)
	cfg.KeyPrefix = "app_"
	cfg.DefaultTimeout = 42 * time.Second
	cfg.IgnoreErrors = true
	cfg.Codec = backends.JSONCodec{}
	cfg.Logger = logger
	c, err := backends.Open(cfg)
	require.NoError(t, err)

	assert.Equal(t, "app_", c.KeyPrefix())
	assert.Equal(t, 42*time.Second, c.DefaultTimeout())
	assert.Same(t, f, c.Backend())

	ctx := context.Background()
	require.NoError(t, c.SetMany(ctx, map[string]any{"bad": 1}), "IgnoreErrors drops per-key failures")
	assert.Contains(t, buf.String(), "bad", "and logs them to cfg.Logger")

	require.NoError(t, c.Set(ctx, "doc", map[string]int{"a": 1}))
	raw, found, err := f.Get(ctx, "app_doc")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "\xf7{\"a\":1}", string(raw), "cfg.Codec encodes values")
}

func TestOpenSimpleCacheUsesTheThreshold(t *testing.T) {
	ctx := context.Background()
	cfg := quietConfig("SimpleCache")
	cfg.Threshold = 2
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, k, 1))
	}
	assert.Equal(t, 2, c.Backend().(*backends.Simple).Len())

	cfg.Threshold = -1
	_, err = backends.Open(cfg)
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_THRESHOLD")
}

func TestRegisterPanicsOnAnUnusableName(t *testing.T) {
	dup := uniqueBackendName(t)
	factory := func(backends.Config) (backends.Backend, error) { return backends.NewNull(), nil }
	backends.Register(dup, factory)
	tests := []struct {
		why     string
		name    string
		factory backends.Factory
	}{
		{"duplicate", dup, factory},
		{"built-in", "SimpleCache", factory},
		{"old alias", "simple", factory},
		{"old alias of an unimplemented backend", "redis", factory},
		{"empty name", "", factory},
		{"nil factory", uniqueBackendName(t), nil},
	}
	for _, tt := range tests {
		t.Run(tt.why, func(t *testing.T) {
			assert.Panics(t, func() { backends.Register(tt.name, tt.factory) })
		})
	}
}

func TestOpenNullCacheWarnsUnlessNoNullWarning(t *testing.T) {
	for _, name := range []string{"null", "NullCache"} {
		for _, silenced := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s silenced=%v", name, silenced), func(t *testing.T) {
				logger, buf := logBuffer()
				cfg := quietConfig(name)
				cfg.Logger = logger
				cfg.NoNullWarning = silenced
				_, err := backends.Open(cfg)
				require.NoError(t, err)
				if silenced {
					assert.Empty(t, buf.String())
					return
				}
				assert.Contains(t, buf.String(), "level=WARN")
				assert.Contains(t, buf.String(), "caching is effectively disabled")
				assert.Contains(t, buf.String(), name)
			})
		}
	}
}

func TestOpenOtherBackendsDoNotWarn(t *testing.T) {
	logger, buf := logBuffer()
	cfg := quietConfig("SimpleCache")
	cfg.Logger = logger
	_, err := backends.Open(cfg)
	require.NoError(t, err)
	assert.Empty(t, buf.String())
}

func TestOpenOptionsDefaultTimeoutOverridesDefaultTimeout(t *testing.T) {
	tests := []struct {
		value any
		want  time.Duration
	}{
		{10, 10 * time.Second},
		{2.5, 2500 * time.Millisecond},
		{0, backends.NoExpiry}, // Flask's 0: never
		{1e-10, time.Nanosecond},
		{time.Minute, time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.value), func(t *testing.T) {
			name := uniqueBackendName(t)
			var seen backends.Config
			backends.Register(name, func(cfg backends.Config) (backends.Backend, error) {
				seen = cfg
				return backends.NewSimple(0), backends.CheckOptions(name, cfg.Options)
			})
			opts := map[string]any{"default_timeout": tt.value}
			cfg := quietConfig(name)
			cfg.Options = opts
			c, err := backends.Open(cfg)
			require.NoError(t, err, "the factory does not see default_timeout")
			assert.Equal(t, tt.want, c.DefaultTimeout())
			assert.Equal(t, tt.want, seen.DefaultTimeout, "the factory sees the overridden timeout")
			assert.Equal(t, map[string]any{"default_timeout": tt.value}, opts, "the caller's map is not modified")
		})
	}
}

func TestOpenBadTimeoutIsAConfigError(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*backends.Config)
		want   string
	}{
		{"negative CACHE_OPTIONS default_timeout", func(c *backends.Config) { c.Options = map[string]any{"default_timeout": -1} }, "default_timeout"},
		{"non-number CACHE_OPTIONS default_timeout", func(c *backends.Config) { c.Options = map[string]any{"default_timeout": "300"} }, "default_timeout"},
		{"negative CACHE_DEFAULT_TIMEOUT", func(c *backends.Config) { c.DefaultTimeout = -time.Second }, "CACHE_DEFAULT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := quietConfig("SimpleCache")
			tt.modify(&cfg)
			_, err := backends.Open(cfg)
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestOpenUnknownOptionIsAnErrorNamingIt(t *testing.T) {
	for _, name := range []string{"SimpleCache", "NullCache"} {
		t.Run(name, func(t *testing.T) {
			cfg := quietConfig(name)
			cfg.Options = map[string]any{"treshold": 10}
			_, err := backends.Open(cfg)
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.Contains(t, err.Error(), `"treshold"`)
			assert.Contains(t, err.Error(), name)
		})
	}
}

func TestOpenWrapsAFactoryErrorWithTheBackendName(t *testing.T) {
	name := uniqueBackendName(t)
	backends.Register(name, func(cfg backends.Config) (backends.Backend, error) {
		return nil, fmt.Errorf("%w: %s needs CACHE_DIR", backends.ErrConfig, name)
	})
	_, err := backends.Open(quietConfig(name))
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "open "+name)
	assert.Contains(t, err.Error(), "needs CACHE_DIR")
}

func TestOpenRejectsAFactoryReturningNoBackend(t *testing.T) {
	name := uniqueBackendName(t)
	backends.Register(name, func(backends.Config) (backends.Backend, error) { return nil, nil })
	_, err := backends.Open(quietConfig(name))
	assert.ErrorContains(t, err, "nil Backend")
}

func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    map[string]any
		known   []string
		wantErr []string // substrings of the error; nil for no error
	}{
		{"no options", nil, nil, nil},
		{"only known options", map[string]any{"mode": 1, "threshold": 2}, []string{"threshold", "mode"}, nil},
		{"unknown option names the first, sorted, and what is accepted", map[string]any{"b": 1, "a": 2, "mode": 3}, []string{"mode"}, []string{`"a"`, "accepted: mode"}},
		{"nothing accepted", map[string]any{"x": 1}, nil, []string{`"x"`, "accepted: none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := backends.CheckOptions("MyCache", tt.opts, tt.known...)
			if tt.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.Contains(t, err.Error(), "MyCache")
			for _, s := range tt.wantErr {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}
