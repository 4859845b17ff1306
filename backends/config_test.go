package backends_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
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
	// The defaults of backend-specific keys are their packages' (tested
	// there); none is set in Settings.
	want := backends.Config{
		Type:           "null",
		DefaultTimeout: 300 * time.Second,
		Threshold:      500,
		KeyPrefix:      "flask_cache_",
	}
	assert.Equal(t, want, backends.DefaultConfig())
	assert.Equal(t, backends.DefaultThreshold, want.Threshold)

	fromMap, err := backends.FromMap(nil)
	require.NoError(t, err)
	assert.Equal(t, want, fromMap, "FromMap of nothing is the defaults")
	fromEnv, err := backends.FromEnv(nil, backends.EnvOptions{})
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
	{"CACHE_UWSGI_NAME", "mycache@localhost:3031", setting("CACHE_UWSGI_NAME"), "mycache@localhost:3031"},
	{"CACHE_MEMCACHED_SERVERS", []string{"m1:11211", "m2:11211"}, setting("CACHE_MEMCACHED_SERVERS"), []string{"m1:11211", "m2:11211"}},
	{"CACHE_MEMCACHED_SERVERS", []any{"m1:11211"}, setting("CACHE_MEMCACHED_SERVERS"), []string{"m1:11211"}},
	{"CACHE_MEMCACHED_SERVERS", "m1:11211, m2:11211", setting("CACHE_MEMCACHED_SERVERS"), []string{"m1:11211", "m2:11211"}},
	{"CACHE_MEMCACHED_USERNAME", "user", setting("CACHE_MEMCACHED_USERNAME"), "user"},
	{"CACHE_MEMCACHED_PASSWORD", "secret", setting("CACHE_MEMCACHED_PASSWORD"), "secret"},
	{"CACHE_REDIS_HOST", "redis.internal", setting("CACHE_REDIS_HOST"), "redis.internal"},
	{"CACHE_REDIS_PORT", 6380, setting("CACHE_REDIS_PORT"), 6380},
	{"CACHE_REDIS_PASSWORD", "secret", setting("CACHE_REDIS_PASSWORD"), "secret"},
	{"CACHE_REDIS_DB", 2, setting("CACHE_REDIS_DB"), 2},
	{"CACHE_REDIS_URL", "redis://127.0.0.1:6379/3", setting("CACHE_REDIS_URL"), "redis://127.0.0.1:6379/3"},
	{"CACHE_REDIS_SENTINELS", [][]any{{"s1", 26379}, {"s2", 26380}}, setting("CACHE_REDIS_SENTINELS"), []string{"s1:26379", "s2:26380"}},
	{"CACHE_REDIS_SENTINELS", []string{"s1:26379"}, setting("CACHE_REDIS_SENTINELS"), []string{"s1:26379"}},
	{"CACHE_REDIS_SENTINEL_MASTER", "primary", setting("CACHE_REDIS_SENTINEL_MASTER"), "primary"},
	{"CACHE_REDIS_SENTINEL_PASSWORD", "secret", setting("CACHE_REDIS_SENTINEL_PASSWORD"), "secret"},
	{"CACHE_REDIS_CLUSTER", "c1:7000,c2:7001", setting("CACHE_REDIS_CLUSTER"), "c1:7000,c2:7001"},
	{"CACHE_DIR", "/var/cache/app", setting("CACHE_DIR"), "/var/cache/app"},
}

// setting reads a backend-specific key from Settings.
func setting(key string) func(backends.Config) any {
	return func(c backends.Config) any { return c.Settings[key] }
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
	assert.Equal(t, 6380, cfg.Settings["CACHE_REDIS_PORT"])
	assert.Equal(t, 2500*time.Millisecond, cfg.DefaultTimeout)
	assert.Equal(t, []string{"s1:26379", "s2:26380"}, cfg.Settings["CACHE_REDIS_SENTINELS"])
	assert.Equal(t, []string{"m1:11211"}, cfg.Settings["CACHE_MEMCACHED_SERVERS"])
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
		{"CACHE_DIR=/tmp/a=b", setting("CACHE_DIR"), "/tmp/a=b"},
		{"CACHE_NO_NULL_WARNING=true", func(c backends.Config) any { return c.NoNullWarning }, true},
		{"CACHE_IGNORE_ERRORS=1", func(c backends.Config) any { return c.IgnoreErrors }, true},
		{"CACHE_THRESHOLD= 1000 ", func(c backends.Config) any { return c.Threshold }, 1000},
		{"CACHE_REDIS_PORT=6380", setting("CACHE_REDIS_PORT"), 6380},
		{"CACHE_DEFAULT_TIMEOUT=60", func(c backends.Config) any { return c.DefaultTimeout }, time.Minute},
		{"CACHE_DEFAULT_TIMEOUT=0.25", func(c backends.Config) any { return c.DefaultTimeout }, 250 * time.Millisecond},
		{"CACHE_DEFAULT_TIMEOUT=0", func(c backends.Config) any { return c.DefaultTimeout }, backends.NoExpiry},
		{"CACHE_MEMCACHED_SERVERS=m1:11211, m2:11211", setting("CACHE_MEMCACHED_SERVERS"), []string{"m1:11211", "m2:11211"}},
		{"CACHE_REDIS_SENTINELS=s1:26379", setting("CACHE_REDIS_SENTINELS"), []string{"s1:26379"}},
		{`CACHE_OPTIONS={"mode": 384}`, func(c backends.Config) any { return c.Options }, map[string]any{"mode": float64(384)}},
		{`CACHE_ARGS=["a", 2]`, func(c backends.Config) any { return c.Args }, []any{"a", float64(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			cfg, err := backends.FromEnv([]string{"HOME=/root", tt.env}, backends.EnvOptions{})
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
			_, err := backends.FromEnv([]string{tt.env}, backends.EnvOptions{})
			require.ErrorIs(t, err, backends.ErrConfig)
			name, _, _ := strings.Cut(tt.env, "=")
			assert.Contains(t, err.Error(), name)
		})
	}
}

func TestFromEnvIgnoresUnknownCacheVariablesUnlessStrict(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := []string{"CACHE_TYPE=SimpleCache", "CACHE_TRESHOLD=10"}
	cfg, err := backends.FromEnv(env, backends.EnvOptions{Logger: logger})
	require.NoError(t, err)
	assert.Equal(t, "SimpleCache", cfg.Type)
	assert.Equal(t, backends.DefaultThreshold, cfg.Threshold, "the misspelt setting did nothing")
	assert.Contains(t, logs.String(), `"level":"DEBUG"`)
	assert.Contains(t, logs.String(), `"name":"CACHE_TRESHOLD"`, "an ignored variable is logged at debug level")

	_, err = backends.FromEnv(env, backends.EnvOptions{Strict: true})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_TRESHOLD")
	assert.Contains(t, err.Error(), "CACHE_THRESHOLD", "the error lists the known keys")
}

func TestFromEnvReadsUnderAPrefix(t *testing.T) {
	env := []string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_PORT=tcp://10.0.0.5:6379", "CACHE_BOGUS=1",
		"MYAPP_CACHE_TYPE=SimpleCache", "MYAPP_CACHE_THRESHOLD=7", "MYAPP_OTHER=x", "MYAPPCACHE_DIR=/x"}
	cfg, err := backends.FromEnv(env, backends.EnvOptions{Prefix: "MYAPP_", Strict: true})
	require.NoError(t, err, "variables without the prefix are not the app's, even in strict mode")
	assert.Equal(t, "SimpleCache", cfg.Type)
	assert.Equal(t, 7, cfg.Threshold)
	assert.Empty(t, cfg.Settings)

	_, err = backends.FromEnv([]string{"MYAPP_CACHE_THRESHOLD=many"}, backends.EnvOptions{Prefix: "MYAPP_"})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "MYAPP_CACHE_THRESHOLD", "errors name the variable as it is spelt")
}

// kubernetesLinks are the service link variables Kubernetes puts into every
// pod for a Service named "cache" (port 6379) in the namespace.
var kubernetesLinks = []string{
	"CACHE_SERVICE_HOST=10.0.0.5", "CACHE_SERVICE_PORT=6379", "CACHE_PORT=tcp://10.0.0.5:6379",
	"CACHE_PORT_6379_TCP=tcp://10.0.0.5:6379", "CACHE_PORT_6379_TCP_PROTO=tcp",
	"CACHE_PORT_6379_TCP_PORT=6379", "CACHE_PORT_6379_TCP_ADDR=10.0.0.5",
}

func TestFromEnvOpensBesideKubernetesServiceLinks(t *testing.T) {
	env := append([]string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_HOST=redis.internal"}, kubernetesLinks...)
	cfg, err := backends.FromEnv(env, backends.EnvOptions{})
	require.NoError(t, err)
	assert.Equal(t, "RedisCache", cfg.Type)
	assert.Equal(t, map[string]any{"CACHE_REDIS_HOST": "redis.internal"}, cfg.Settings)

	_, err = backends.FromEnv(env, backends.EnvOptions{Strict: true})
	require.ErrorIs(t, err, backends.ErrConfig)
	for _, want := range []string{"Kubernetes service link", "Prefix", "enableServiceLinks: false"} {
		assert.Contains(t, err.Error(), want, "strict mode says what the variable probably is")
	}
}

func TestFromEnvNamesAKubernetesCollisionAndBothFixes(t *testing.T) {
	// A Service named "cache-redis" sets CACHE_REDIS_PORT=tcp://…, which is
	// one of Flask's keys.
	for _, env := range [][]string{
		{"CACHE_TYPE=RedisCache", "CACHE_SERVICE_HOST=10.0.0.5", "CACHE_REDIS_PORT=tcp://10.0.0.5:6379"},
		{"CACHE_TYPE=RedisCache", "CACHE_REDIS_SERVICE_HOST=10.0.0.5", "CACHE_REDIS_PORT=tcp://10.0.0.5:6379"},
	} {
		_, err := backends.FromEnv(env, backends.EnvOptions{})
		require.ErrorIs(t, err, backends.ErrConfig)
		for _, want := range []string{
			`CACHE_REDIS_PORT="tcp://10.0.0.5:6379"`, "Kubernetes service link", `Service named "cache-redis"`,
			`EnvOptions{Prefix: "MYAPP_"}`, "MYAPP_CACHE_REDIS_PORT", "enableServiceLinks: false",
		} {
			assert.Contains(t, err.Error(), want)
		}
	}
	_, err := backends.FromEnv([]string{"X_CACHE_REDIS_PORT=udp://10.0.0.5:53"}, backends.EnvOptions{Prefix: "X_"})
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "no Service name in the namespace starts with", "with a prefix already, the fix is another one")
}

func TestSettingReadsTypedValuesWithDefaults(t *testing.T) {
	cfg, err := backends.FromMap(map[string]any{"CACHE_REDIS_PORT": 6380.0, "CACHE_MEMCACHED_SERVERS": "a:1,b:2"})
	require.NoError(t, err)
	port, err := backends.Setting(cfg, "CACHE_REDIS_PORT", 6379)
	require.NoError(t, err)
	assert.Equal(t, 6380, port)
	servers, err := backends.Setting(cfg, "CACHE_MEMCACHED_SERVERS", []string{"127.0.0.1:11211"})
	require.NoError(t, err)
	assert.Equal(t, []string{"a:1", "b:2"}, servers)
	host, err := backends.Setting(cfg, "CACHE_REDIS_HOST", "localhost")
	require.NoError(t, err)
	assert.Equal(t, "localhost", host, "an absent key is the default")

	// A Config built by hand is converted as FromMap converts.
	byHand := backends.Config{Settings: map[string]any{"CACHE_REDIS_DB": int64(3), "CACHE_REDIS_SENTINELS": []any{[]any{"s", 1}}, "CACHE_DIR": 5}}
	db, err := backends.Setting(byHand, "CACHE_REDIS_DB", 0)
	require.NoError(t, err)
	assert.Equal(t, 3, db)
	sentinels, err := backends.Setting(byHand, "CACHE_REDIS_SENTINELS", []string(nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"s:1"}, sentinels)
	_, err = backends.Setting(byHand, "CACHE_DIR", "")
	require.ErrorIs(t, err, backends.ErrConfig)
	assert.Contains(t, err.Error(), "CACHE_DIR: got int, want a string")

	for _, bad := range []func() error{
		func() error { _, err := backends.Setting(cfg, "CACHE_THRESHOLD", 0); return err },
		func() error { _, err := backends.Setting(cfg, "CACHE_NOPE", ""); return err },
		func() error { _, err := backends.Setting(cfg, "CACHE_REDIS_PORT", ""); return err },
	} {
		assert.ErrorIs(t, bad(), backends.ErrConfig)
	}
	assert.Equal(t, 14, len(backends.SettingKeys()), "Flask's backend-specific keys")
}

func TestFromEnvIgnoresOtherVariables(t *testing.T) {
	cfg, err := backends.FromEnv([]string{"PATH=/bin", "CACHEDIR=/x", "MY_CACHE_TYPE=redis", "cache_type=redis", "NOEQUALS"}, backends.EnvOptions{Strict: true})
	require.NoError(t, err)
	assert.Equal(t, backends.DefaultConfig(), cfg)
}
