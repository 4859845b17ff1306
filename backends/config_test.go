package backends_test

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

func TestDefaultConfigIsFlaskCachings(t *testing.T) {
	// Flask-Caching 2.0.2's defaults (spec §2).
	want := backends.Config{
		Type:                "null",
		DefaultTimeout:      300 * time.Second,
		Threshold:           500,
		KeyPrefix:           "flask_cache_",
		MemcachedServers:    []string{"127.0.0.1:11211"},
		RedisHost:           "localhost",
		RedisPort:           6379,
		RedisSentinels:      []string{"127.0.0.1:26379"},
		RedisSentinelMaster: "mymaster",
	}
	assert.Equal(t, want, backends.DefaultConfig())
	assert.Equal(t, backends.DefaultThreshold, want.Threshold)

	fromMap, err := backends.FromMap(nil)
	require.NoError(t, err)
	assert.Equal(t, want, fromMap, "FromMap of nothing is the defaults")
	fromEnv, err := backends.FromEnv(nil)
	require.NoError(t, err)
	assert.Equal(t, want, fromEnv, "FromEnv of nothing is the defaults")
}

// configKeyTests sets every key FromMap knows to a value that differs from
// its default, and says which field must then hold what.
var configKeyTests = []struct {
	key   string
	value any
	field func(backends.Config) any
	want  any
}{
	{"CACHE_TYPE", "SimpleCache", func(c backends.Config) any { return c.Type }, "SimpleCache"},
	{"CACHE_NO_NULL_WARNING", true, func(c backends.Config) any { return c.NoNullWarning }, true},
	{"CACHE_ARGS", []any{"a", 1}, func(c backends.Config) any { return c.Args }, []any{"a", 1}},
	{"CACHE_ARGS", []string{"a", "b"}, func(c backends.Config) any { return c.Args }, []any{"a", "b"}},
	{"CACHE_OPTIONS", map[string]any{"mode": 0o600}, func(c backends.Config) any { return c.Options }, map[string]any{"mode": 0o600}},
	{"CACHE_DEFAULT_TIMEOUT", 60, func(c backends.Config) any { return c.DefaultTimeout }, time.Minute},
	{"CACHE_DEFAULT_TIMEOUT", 1.5, func(c backends.Config) any { return c.DefaultTimeout }, 1500 * time.Millisecond},
	{"CACHE_DEFAULT_TIMEOUT", float32(0.5), func(c backends.Config) any { return c.DefaultTimeout }, 500 * time.Millisecond},
	{"CACHE_DEFAULT_TIMEOUT", 2 * time.Hour, func(c backends.Config) any { return c.DefaultTimeout }, 2 * time.Hour},
	{"CACHE_DEFAULT_TIMEOUT", 0, func(c backends.Config) any { return c.DefaultTimeout }, backends.NoExpiry},   // Flask's 0: never
	{"CACHE_DEFAULT_TIMEOUT", 1e-10, func(c backends.Config) any { return c.DefaultTimeout }, time.Nanosecond}, // not 0, which would be the default
	{"CACHE_DEFAULT_TIMEOUT", float32(1e-12), func(c backends.Config) any { return c.DefaultTimeout }, time.Nanosecond},
	{"CACHE_IGNORE_ERRORS", true, func(c backends.Config) any { return c.IgnoreErrors }, true},
	{"CACHE_THRESHOLD", 1000, func(c backends.Config) any { return c.Threshold }, 1000},
	{"CACHE_THRESHOLD", int64(0), func(c backends.Config) any { return c.Threshold }, 0},
	{"CACHE_THRESHOLD", uint16(7), func(c backends.Config) any { return c.Threshold }, 7},
	{"CACHE_KEY_PREFIX", "app_", func(c backends.Config) any { return c.KeyPrefix }, "app_"},
	{"CACHE_KEY_PREFIX", "", func(c backends.Config) any { return c.KeyPrefix }, ""},
	{"CACHE_SOURCE_CHECK", true, func(c backends.Config) any { return c.SourceCheck }, true},
	{"CACHE_UWSGI_NAME", "mycache@localhost:3031", func(c backends.Config) any { return c.UWSGIName }, "mycache@localhost:3031"},
	{"CACHE_MEMCACHED_SERVERS", []string{"m1:11211", "m2:11211"}, func(c backends.Config) any { return c.MemcachedServers }, []string{"m1:11211", "m2:11211"}},
	{"CACHE_MEMCACHED_SERVERS", []any{"m1:11211"}, func(c backends.Config) any { return c.MemcachedServers }, []string{"m1:11211"}},
	{"CACHE_MEMCACHED_SERVERS", "m1:11211, m2:11211", func(c backends.Config) any { return c.MemcachedServers }, []string{"m1:11211", "m2:11211"}},
	{"CACHE_MEMCACHED_USERNAME", "user", func(c backends.Config) any { return c.MemcachedUsername }, "user"},
	{"CACHE_MEMCACHED_PASSWORD", "secret", func(c backends.Config) any { return c.MemcachedPassword }, "secret"},
	{"CACHE_REDIS_HOST", "redis.internal", func(c backends.Config) any { return c.RedisHost }, "redis.internal"},
	{"CACHE_REDIS_PORT", 6380, func(c backends.Config) any { return c.RedisPort }, 6380},
	{"CACHE_REDIS_PASSWORD", "secret", func(c backends.Config) any { return c.RedisPassword }, "secret"},
	{"CACHE_REDIS_DB", 2, func(c backends.Config) any { return c.RedisDB }, 2},
	{"CACHE_REDIS_URL", "redis://127.0.0.1:6379/3", func(c backends.Config) any { return c.RedisURL }, "redis://127.0.0.1:6379/3"},
	{"CACHE_REDIS_SENTINELS", [][]any{{"s1", 26379}, {"s2", 26380}}, func(c backends.Config) any { return c.RedisSentinels }, []string{"s1:26379", "s2:26380"}},
	{"CACHE_REDIS_SENTINELS", []string{"s1:26379"}, func(c backends.Config) any { return c.RedisSentinels }, []string{"s1:26379"}},
	{"CACHE_REDIS_SENTINEL_MASTER", "primary", func(c backends.Config) any { return c.RedisSentinelMaster }, "primary"},
	{"CACHE_REDIS_SENTINEL_PASSWORD", "secret", func(c backends.Config) any { return c.RedisSentinelPassword }, "secret"},
	{"CACHE_REDIS_CLUSTER", "c1:7000,c2:7001", func(c backends.Config) any { return c.RedisCluster }, "c1:7000,c2:7001"},
	{"CACHE_DIR", "/var/cache/app", func(c backends.Config) any { return c.Dir }, "/var/cache/app"},
}

// changedFields names the fields in which a and b differ.
func changedFields(a, b backends.Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

func TestFromMapSetsEachKeysField(t *testing.T) {
	for _, tt := range configKeyTests {
		t.Run(tt.key, func(t *testing.T) {
			cfg, err := backends.FromMap(map[string]any{tt.key: tt.value})
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.field(cfg))

			def := backends.DefaultConfig()
			assert.Len(t, changedFields(def, cfg), 1, "one key sets one field")

			cfgWithDefault, err := backends.FromMap(map[string]any{tt.key: nil})
			require.NoError(t, err)
			assert.Equal(t, def, cfgWithDefault, "a nil value means the default")
		})
	}
}

func TestKeysListsEveryKeyFromMapAccepts(t *testing.T) {
	keys := backends.Keys()
	assert.True(t, slices.IsSorted(keys))
	var tested []string
	for _, tt := range configKeyTests {
		tested = append(tested, tt.key)
	}
	slices.Sort(tested)
	assert.Equal(t, keys, slices.Compact(tested), "configKeyTests covers exactly the keys Keys lists")
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, "CACHE_"), k)
	}
}

func TestFromMapUnknownKeyIsAnErrorNamingIt(t *testing.T) {
	_, err := backends.FromMap(map[string]any{"CACHE_TYPE": "SimpleCache", "CACHE_TRESHOLD": 10})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_TRESHOLD")
	assert.Contains(t, err.Error(), "CACHE_THRESHOLD", "the error lists the known keys")
}

func TestFromMapWrongTypeIsAnErrorNamingTheKey(t *testing.T) {
	tests := []struct {
		kind, key string
		value     any
	}{
		{"string", "CACHE_TYPE", 5},
		{"string", "CACHE_DIR", []string{"/tmp"}},
		{"bool", "CACHE_IGNORE_ERRORS", "yes"},
		{"bool", "CACHE_NO_NULL_WARNING", 1},
		{"int", "CACHE_THRESHOLD", "500"},
		{"int", "CACHE_REDIS_PORT", 6379.5},
		{"int", "CACHE_REDIS_DB", true},
		{"list", "CACHE_MEMCACHED_SERVERS", 11211},
		{"list", "CACHE_MEMCACHED_SERVERS", []any{"m1:11211", 11211}},
		{"list", "CACHE_REDIS_SENTINELS", [][]any{{"s1"}}},
		{"list", "CACHE_REDIS_SENTINELS", [][]any{{"s1", "26379"}}},
		{"options", "CACHE_OPTIONS", map[string]string{"mode": "0600"}},
		{"options", "CACHE_OPTIONS", "mode=0600"},
		{"args", "CACHE_ARGS", "a,b"},
		{"args", "CACHE_ARGS", map[string]any{}},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", "300"},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", -1},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", -1.5},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", -time.Second},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", 1e300},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", float32(math.Inf(1))},
		{"timeout", "CACHE_DEFAULT_TIMEOUT", math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.key, func(t *testing.T) {
			_, err := backends.FromMap(map[string]any{tt.key: tt.value})
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestFromMapNegativeTimeoutIsErrInvalidTimeout(t *testing.T) {
	for _, v := range []any{-5, -1, -1e-10, -time.Second, backends.NoExpiry} {
		_, err := backends.FromMap(map[string]any{"CACHE_DEFAULT_TIMEOUT": v})
		assert.ErrorIs(t, err, backends.ErrInvalidTimeout, "%v", v)
	}
}

func TestFromMapAcceptsJSONDecodedSettings(t *testing.T) {
	// JSON numbers decode as float64 and lists as []any.
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(`{
		"CACHE_TYPE": "RedisSentinelCache",
		"CACHE_THRESHOLD": 1000,
		"CACHE_REDIS_PORT": 6380,
		"CACHE_DEFAULT_TIMEOUT": 2.5,
		"CACHE_REDIS_SENTINELS": [["s1", 26379], "s2:26380"],
		"CACHE_MEMCACHED_SERVERS": ["m1:11211"],
		"CACHE_ARGS": [1, "x"],
		"CACHE_OPTIONS": {"socket_timeout": 3},
		"CACHE_KEY_PREFIX": null
	}`), &m))
	cfg, err := backends.FromMap(m)
	require.NoError(t, err)
	assert.Equal(t, "RedisSentinelCache", cfg.Type)
	assert.Equal(t, 1000, cfg.Threshold)
	assert.Equal(t, 6380, cfg.RedisPort)
	assert.Equal(t, 2500*time.Millisecond, cfg.DefaultTimeout)
	assert.Equal(t, []string{"s1:26379", "s2:26380"}, cfg.RedisSentinels)
	assert.Equal(t, []string{"m1:11211"}, cfg.MemcachedServers)
	assert.Equal(t, []any{float64(1), "x"}, cfg.Args)
	assert.Equal(t, map[string]any{"socket_timeout": float64(3)}, cfg.Options)
	assert.Equal(t, backends.DefaultConfig().KeyPrefix, cfg.KeyPrefix, "null keeps the default")
}

func TestFromEnvParsesEachKind(t *testing.T) {
	tests := []struct {
		env   string
		field func(backends.Config) any
		want  any
	}{
		{"CACHE_TYPE=SimpleCache", func(c backends.Config) any { return c.Type }, "SimpleCache"},
		{"CACHE_KEY_PREFIX=", func(c backends.Config) any { return c.KeyPrefix }, ""},
		{"CACHE_DIR=/tmp/a=b", func(c backends.Config) any { return c.Dir }, "/tmp/a=b"},
		{"CACHE_NO_NULL_WARNING=true", func(c backends.Config) any { return c.NoNullWarning }, true},
		{"CACHE_IGNORE_ERRORS=1", func(c backends.Config) any { return c.IgnoreErrors }, true},
		{"CACHE_THRESHOLD= 1000 ", func(c backends.Config) any { return c.Threshold }, 1000},
		{"CACHE_REDIS_PORT=6380", func(c backends.Config) any { return c.RedisPort }, 6380},
		{"CACHE_DEFAULT_TIMEOUT=60", func(c backends.Config) any { return c.DefaultTimeout }, time.Minute},
		{"CACHE_DEFAULT_TIMEOUT=0.25", func(c backends.Config) any { return c.DefaultTimeout }, 250 * time.Millisecond},
		{"CACHE_MEMCACHED_SERVERS=m1:11211, m2:11211", func(c backends.Config) any { return c.MemcachedServers }, []string{"m1:11211", "m2:11211"}},
		{"CACHE_REDIS_SENTINELS=s1:26379", func(c backends.Config) any { return c.RedisSentinels }, []string{"s1:26379"}},
		{`CACHE_OPTIONS={"mode": 384}`, func(c backends.Config) any { return c.Options }, map[string]any{"mode": float64(384)}},
		{`CACHE_ARGS=["a", 2]`, func(c backends.Config) any { return c.Args }, []any{"a", float64(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			cfg, err := backends.FromEnv([]string{"HOME=/root", tt.env})
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.field(cfg))
		})
	}
}

func TestFromEnvBadValueIsAnErrorNamingTheVariable(t *testing.T) {
	tests := []struct{ kind, env string }{
		{"bool", "CACHE_IGNORE_ERRORS=yes"},
		{"int", "CACHE_THRESHOLD=many"},
		{"int", "CACHE_REDIS_DB=1.5"},
		{"timeout", "CACHE_DEFAULT_TIMEOUT=5m"},
		{"timeout", "CACHE_DEFAULT_TIMEOUT=-1"},
		{"timeout", "CACHE_DEFAULT_TIMEOUT=NaN"},
		{"options", "CACHE_OPTIONS=mode=384"},
		{"options", "CACHE_OPTIONS=[1]"},
		{"args", `CACHE_ARGS={"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := backends.FromEnv([]string{tt.env})
			require.ErrorIs(t, err, backends.ErrConfig)
			name, _, _ := strings.Cut(tt.env, "=")
			assert.Contains(t, err.Error(), name)
		})
	}
}

func TestFromEnvUnknownCacheVariableIsAnError(t *testing.T) {
	_, err := backends.FromEnv([]string{"CACHE_TYPE=SimpleCache", "CACHE_TRESHOLD=10"})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_TRESHOLD")
}

func TestFromEnvIgnoresOtherVariables(t *testing.T) {
	cfg, err := backends.FromEnv([]string{"PATH=/bin", "CACHEDIR=/x", "MY_CACHE_TYPE=redis", "cache_type=redis", "NOEQUALS"})
	require.NoError(t, err)
	assert.Equal(t, backends.DefaultConfig(), cfg)
}
