package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	_ "github.com/fragcache/fragcache/backends/all"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
	"github.com/fragcache/fragcache/internal/testservers"
)

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, environ []string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, environ, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// redisEnv starts a real redis-server and returns the environment an
// application would be configured with, and that application's cache.
func redisEnv(t *testing.T, extra ...string) ([]string, *backends.Cache) {
	t.Helper()
	srv := testservers.Redis(t)
	environ := append([]string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_URL=redis://" + srv.Addr}, extra...)
	cfg, err := backends.FromEnv(environ, backends.EnvOptions{})
	require.NoError(t, err)
	app, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { app.Close() })
	return environ, app
}

var latency = regexp.MustCompile(`: ok in [0-9]+\.[0-9]{3} ms\n`)

func TestPingRedis(t *testing.T) {
	environ, _ := redisEnv(t)

	r := runCLI(t, environ, "ping")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `^RedisCache .*`+latency.String()+`$`, r.stdout)

	r = runCLI(t, environ, "ping", "-count", "3")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Len(t, latency.FindAllString(r.stdout, -1), 3)
	assert.Regexp(t, `3 pings: min [0-9.]+ ms, median [0-9.]+ ms, max [0-9.]+ ms\n$`, r.stdout)
}

// The binary itself, as `go run ./cmd/fragcache ping` runs it: flags, exit
// status and output through os.Args and os.Exit.
func TestBinaryPingsRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	environ, _ := redisEnv(t)
	bin := filepath.Join(t.TempDir(), "fragcache")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	cmd := exec.Command(bin, "ping")
	cmd.Env = append(os.Environ(), environ...)
	out, err = cmd.Output()
	require.NoError(t, err)
	assert.Regexp(t, latency, string(out))

	cmd = exec.Command(bin, "get", "absent")
	cmd.Env = append(os.Environ(), environ...)
	err = cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, exitMiss, exit.ExitCode())
}

func TestPingUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	tests := []struct {
		name    string
		environ []string
	}{
		{"redis", []string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_URL=redis://" + addr}},
		{"memcached", []string{"CACHE_TYPE=MemcachedCache", "CACHE_MEMCACHED_SERVERS=" + addr}},
		// The near cache wraps the backend; the server must still be asked.
		{"memcached near cache", []string{"CACHE_TYPE=MemcachedCache", "CACHE_MEMCACHED_SERVERS=" + addr,
			`CACHE_OPTIONS={"near_cache": true}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.environ, "ping", "-timeout", "10s")
			assert.Equal(t, exitError, r.code)
			assert.Contains(t, r.stderr, addr)
			assert.Contains(t, r.stderr, "refused")
			assert.Empty(t, r.stdout)
		})
	}
}

func TestGetPrintsEachKindOfValue(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	type product struct {
		SKU   string
		Price float64
	}
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"text", "<p>hello</p>", "<p>hello</p>"},
		{"bytes", []byte{0, 1, 0xFF}, "\x00\x01\xff"},
		{"integer", 42, "42\n"},
		{"negative", -7, "-7\n"},
		{"struct", product{"lamp", 9.5}, "{\n  \"Price\": 9.5,\n  \"SKU\": \"lamp\"\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, app.Set(ctx, tt.name, tt.value))
			r := runCLI(t, environ, "get", tt.name)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, tt.want, r.stdout)
		})
	}

	t.Run("foreign", func(t *testing.T) {
		// Written by another program (redis-cli SET flask_cache_spam bacon).
		require.NoError(t, app.Backend().Set(ctx, app.KeyPrefix()+"spam", []byte("bacon"), 0))
		r := runCLI(t, environ, "get", "spam")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "bacon", r.stdout)
	})
	t.Run("pickle", func(t *testing.T) {
		require.NoError(t, app.Backend().Set(ctx, app.KeyPrefix()+"pickled", []byte("!\x80\x04K*."), 0))
		r := runCLI(t, environ, "get", "pickled")
		assert.Equal(t, exitError, r.code)
		assert.Contains(t, r.stderr, "pickle")
		assert.Empty(t, r.stdout)
	})
	t.Run("miss", func(t *testing.T) {
		r := runCLI(t, environ, "get", "absent")
		assert.Equal(t, exitMiss, r.code)
		assert.Contains(t, r.stderr, `"flask_cache_absent"`)
		assert.Empty(t, r.stdout)
	})
}

// renderSidebar renders a named block through the application's fragment
// cache, as a page would.
func renderSidebar(t *testing.T, fc *fragment.Cache, user string) string {
	t.Helper()
	tpl := htmltemplate.Must(htmltemplate.New("page.html", fc).Parse(`{{ cache 300 "sidebar" .User }}<aside>{{ .User }}</aside>{{ endcache }}`))
	var out strings.Builder
	require.NoError(t, tpl.Execute(&out, map[string]string{"User": user}))
	return out.String()
}

func TestFragments(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		opts  fragment.Options
		flags []string
	}{
		{"flask keys", fragment.Options{}, nil},
		// With stale-while-revalidate the fragment is stored behind a header.
		{"stale while revalidate", fragment.Options{StaleWhileRevalidate: time.Minute}, nil},
		{"prefix and version", fragment.Options{KeyPrefix: "shop/", Version: "v7"},
			[]string{"-fragment-prefix", "shop/", "-fragment-version", "v7"}},
		{"unambiguous keys", fragment.Options{UnambiguousKeys: true}, []string{"-unambiguous-keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := fragment.New(app, tt.opts)
			user := "ann_" + strings.ReplaceAll(tt.name, " ", "-") // "_" is escaped in unambiguous keys
			page := renderSidebar(t, fc, user)

			r := runCLI(t, environ, append(append([]string{"key"}, tt.flags...), "sidebar", user)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, app.KeyPrefix()+fc.Key("sidebar", user)+"\n", r.stdout)
			stored, err := app.Backend().Has(ctx, strings.TrimSuffix(r.stdout, "\n"))
			require.NoError(t, err)
			assert.True(t, stored, "key prints the key the fragment is stored under")

			r = runCLI(t, environ, append(append([]string{"get", "-fragment"}, tt.flags...), "sidebar", user)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, page, r.stdout)

			r = runCLI(t, environ, append(append([]string{"del", "-fragment"}, tt.flags...), "sidebar", user)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, "1 of 1 deleted\n", r.stdout)
			found, err := app.Has(ctx, fc.Key("sidebar", user))
			require.NoError(t, err)
			assert.False(t, found)
		})
	}
}

// A value under a fragment's key that is not a fragment is reported, not
// printed as one.
func TestGetFragmentRefusesOtherValues(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	fc := fragment.New(app, fragment.Options{})
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"integer", 7, "not a fragment"},
		{"structured", map[string]int{"a": 1}, "not a fragment"},
		{"bad header", []byte("\xf8\x02 not a header"), "not one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, app.Set(ctx, fc.Key("box", tt.name), tt.value))
			r := runCLI(t, environ, "get", "-fragment", "box", tt.name)
			assert.Equal(t, exitError, r.code)
			assert.Contains(t, r.stderr, tt.want)
			assert.Empty(t, r.stdout)
		})
	}
}

func TestDelKeys(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	require.NoError(t, app.SetMany(ctx, map[string]any{"a": 1, "b": "two", "keep": 3}))

	r := runCLI(t, environ, "del", "a", "b", "absent")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "2 of 3 deleted\n", r.stdout)
	vals, err := app.GetDict(ctx, "a", "b", "keep")
	require.NoError(t, err)
	assert.Equal(t, []string{"keep"}, sortedKeys(vals))
}

func sortedKeys(m map[string]backends.Value) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestClear(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	other := backends.New(app.Backend(), backends.CacheOptions{KeyPrefix: "other_"})
	require.NoError(t, app.Set(ctx, "mine", 1))
	require.NoError(t, other.Set(ctx, "theirs", 2))

	r := runCLI(t, environ, "clear")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, `every key starting with "flask_cache_"`)
	assert.Contains(t, r.stderr, "-yes")
	found, err := app.Has(ctx, "mine")
	require.NoError(t, err)
	assert.True(t, found, "clear without -yes deletes nothing")

	r = runCLI(t, environ, "clear", "-yes")
	require.Equal(t, exitOK, r.code, r.stderr)
	found, err = app.Has(ctx, "mine")
	require.NoError(t, err)
	assert.False(t, found)
	found, err = other.Has(ctx, "theirs")
	require.NoError(t, err)
	assert.True(t, found, "clear keeps other prefixes' keys")
}

func TestStatsRedis(t *testing.T) {
	environ, app := redisEnv(t)
	ctx := context.Background()
	require.NoError(t, app.Set(ctx, "k", "v"))
	_, err := app.Get(ctx, "k", new(string))
	require.NoError(t, err)

	r := runCLI(t, environ, "stats")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{`backend: +RedisCache redis://127\.0\.0\.1:`, `key_prefix: +"flask_cache_"`,
		`default_timeout: +5m0s`, `breaker: +closed`, `ping: +[0-9.]+ ms`, `redis_version: +[0-9]`,
		`used_memory_human: `, `keyspace_hits: +1\n`, `evicted_keys: +0`, `db0: +keys=1,`} {
		assert.Regexp(t, want, r.stdout)
	}
}

func TestStatsFileSystem(t *testing.T) {
	dir := t.TempDir()
	environ := []string{"CACHE_TYPE=FileSystemCache", "CACHE_DIR=" + dir}
	cfg, err := backends.FromEnv(environ, backends.EnvOptions{})
	require.NoError(t, err)
	app, err := backends.Open(cfg)
	require.NoError(t, err)
	defer app.Close()
	require.NoError(t, app.SetMany(context.Background(), map[string]any{"a": "x", "b": "y"}))

	r := runCLI(t, environ, "stats")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `entry_files: +2\n`, r.stdout)
	r = runCLI(t, environ, "get", "a")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "x", r.stdout)
}

// The application reads MYAPP_CACHE_*; the unprefixed CACHE_* variables
// are someone else's (here: a NullCache that would find nothing).
func TestEnvPrefix(t *testing.T) {
	srv := testservers.Redis(t)
	environ := []string{"CACHE_TYPE=null", "MYAPP_CACHE_TYPE=RedisCache", "MYAPP_CACHE_REDIS_URL=redis://" + srv.Addr,
		"MYAPP_CACHE_KEY_PREFIX=myapp:"}

	r := runCLI(t, environ, "ping", "-env-prefix", "MYAPP_")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, latency, r.stdout)
	r = runCLI(t, environ, "key", "-env-prefix", "MYAPP_", "sidebar")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "myapp:_template_fragment_cache_sidebar\n", r.stdout)
}

// Kubernetes puts <SERVICE>_… variables into every pod; the command, like
// the application, ignores the ones that are not settings, and names a
// service link that lands on a setting.
func TestKubernetesServiceLinks(t *testing.T) {
	environ, _ := redisEnv(t, "CACHE_SERVICE_HOST=10.0.0.5", "CACHE_SERVICE_PORT=6379",
		"CACHE_PORT=tcp://10.0.0.5:6379", "CACHE_PORT_6379_TCP_ADDR=10.0.0.5")

	r := runCLI(t, environ, "ping")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, latency, r.stdout)
	assert.Empty(t, r.stderr, "ignored variables are logged at debug level only")

	r = runCLI(t, append(environ, "CACHE_REDIS_PORT=tcp://10.0.0.5:6379"), "ping")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, "CACHE_REDIS_PORT")
	assert.Contains(t, r.stderr, "Kubernetes service link")
	assert.Contains(t, r.stderr, "enableServiceLinks: false")
	assert.Empty(t, r.stdout)
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		args    []string
		code    int
		stderr  string
	}{
		{"no command", nil, nil, exitError, "usage: fragcache COMMAND"},
		{"help", nil, []string{"-h"}, exitOK, "usage: fragcache COMMAND"},
		{"unknown command", nil, []string{"frob"}, exitError, `unknown command "frob"`},
		{"bad flag", nil, []string{"get", "-nope", "k"}, exitError, "flag provided but not defined: -nope"},
		{"command help", nil, []string{"ping", "-h"}, exitOK, "usage: fragcache ping [-count N]"},
		{"null cache", nil, []string{"get", "k"}, exitError, "NullCache stores nothing"},
		{"simple cache", []string{"CACHE_TYPE=SimpleCache"}, []string{"del", "k"}, exitError, "inside the application's process"},
		{"bad config", []string{"CACHE_TYPE=RedisCache", "CACHE_REDIS_PORT=many"}, []string{"ping"}, exitError, "CACHE_REDIS_PORT"},
		{"get without key", []string{"CACHE_TYPE=SimpleCache"}, []string{"get"}, exitError, "get needs one KEY"},
		{"get two keys", []string{"CACHE_TYPE=SimpleCache"}, []string{"get", "a", "b"}, exitError, "get needs one KEY"},
		{"del without key", nil, []string{"del"}, exitError, "del needs KEYs"},
		{"key without name", nil, []string{"key"}, exitError, "key needs a block NAME"},
		{"ping count", nil, []string{"ping", "-count", "0"}, exitError, "-count must be at least 1"},
		{"lock prefix", nil, []string{"key", "-fragment-prefix", "fragcache-lock:", "x"}, exitError, "fragment options: fragment.New: key prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.environ, tt.args...)
			assert.Equal(t, tt.code, r.code)
			assert.Contains(t, r.stderr, tt.stderr)
			assert.Empty(t, r.stdout)
		})
	}
}

// Ping works on the in-process backends too (a round trip to nothing), so
// a readiness probe can run it whatever the configuration.
func TestPingSimple(t *testing.T) {
	r := runCLI(t, []string{"CACHE_TYPE=SimpleCache"}, "ping")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `^SimpleCache`+latency.String()+`$`, r.stdout)
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"redis://127.0.0.1:6379/0":            "redis://127.0.0.1:6379/0",
		"redis://:secret@host:6379":           "redis://:xxxxx@host:6379",
		"rediss://shop:s3cr3t@cache.internal": "rediss://shop:xxxxx@cache.internal",
		"redis://shop@host":                   "redis://shop@host",
		"unix:///run/redis.sock":              "unix:///run/redis.sock",
	}
	for in, want := range tests {
		assert.Equal(t, want, redactURL(in), in)
	}
}
