package backends

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the Go form of Flask-Caching's CACHE_* settings. Build one with
// [DefaultConfig], [FromMap] or [FromEnv] (which apply Flask's defaults) and
// pass it to [Open]. Each field names its Flask key.
type Config struct {
	Type           string         // CACHE_TYPE (default "null")
	NoNullWarning  bool           // CACHE_NO_NULL_WARNING
	Args           []any          // CACHE_ARGS: positional arguments for a factory
	Options        map[string]any // CACHE_OPTIONS: keyword options for the backend
	DefaultTimeout time.Duration  // CACHE_DEFAULT_TIMEOUT (0: 300 s; NoExpiry: never; FromMap and FromEnv read Flask's 0 as NoExpiry)
	IgnoreErrors   bool           // CACHE_IGNORE_ERRORS
	Threshold      int            // CACHE_THRESHOLD (default 500; 0 = unlimited)
	KeyPrefix      string         // CACHE_KEY_PREFIX (default "flask_cache_")
	SourceCheck    bool           // CACHE_SOURCE_CHECK

	UWSGIName string // CACHE_UWSGI_NAME

	MemcachedServers  []string // CACHE_MEMCACHED_SERVERS (default ["127.0.0.1:11211"])
	MemcachedUsername string   // CACHE_MEMCACHED_USERNAME
	MemcachedPassword string   // CACHE_MEMCACHED_PASSWORD

	RedisHost             string   // CACHE_REDIS_HOST (default "localhost")
	RedisPort             int      // CACHE_REDIS_PORT (default 6379)
	RedisPassword         string   // CACHE_REDIS_PASSWORD
	RedisDB               int      // CACHE_REDIS_DB
	RedisURL              string   // CACHE_REDIS_URL (wins over host and port)
	RedisSentinels        []string // CACHE_REDIS_SENTINELS, as "host:port" (default ["127.0.0.1:26379"])
	RedisSentinelMaster   string   // CACHE_REDIS_SENTINEL_MASTER (default "mymaster")
	RedisSentinelPassword string   // CACHE_REDIS_SENTINEL_PASSWORD
	RedisCluster          string   // CACHE_REDIS_CLUSTER ("host:port,host:port")

	Dir string // CACHE_DIR

	// Codec encodes structured values; nil means MsgpackCodec. Not a Flask key.
	Codec Codec
	// Logger receives warnings; nil means slog.Default(). Not a Flask key.
	Logger *slog.Logger
}

// DefaultConfig returns Flask-Caching's defaults.
func DefaultConfig() Config {
	return Config{
		Type:                "null",
		DefaultTimeout:      300 * time.Second,
		Threshold:           DefaultThreshold,
		KeyPrefix:           "flask_cache_",
		MemcachedServers:    []string{"127.0.0.1:11211"},
		RedisHost:           "localhost",
		RedisPort:           6379,
		RedisSentinels:      []string{"127.0.0.1:26379"},
		RedisSentinelMaster: "mymaster",
	}
}

// configKey describes one CACHE_* key: how to take its value from a map
// (typed Go values) and from the environment (text).
type configKey struct {
	name    string
	fromAny func(c *Config, v any) error
	fromEnv func(c *Config, s string) error
}

func stringKey(name string, field func(*Config) *string) configKey {
	return configKey{name,
		func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeError(v, "a string")
			}
			*field(c) = s
			return nil
		},
		func(c *Config, s string) error { *field(c) = s; return nil }}
}

func boolKey(name string, field func(*Config) *bool) configKey {
	return configKey{name,
		func(c *Config, v any) error {
			b, ok := v.(bool)
			if !ok {
				return typeError(v, "a bool")
			}
			*field(c) = b
			return nil
		},
		func(c *Config, s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not a boolean (want true/false/1/0)", s)
			}
			*field(c) = b
			return nil
		}}
}

func intKey(name string, field func(*Config) *int) configKey {
	return configKey{name,
		func(c *Config, v any) error {
			n, ok := asInt(v)
			if !ok {
				return typeError(v, "an integer")
			}
			*field(c) = n
			return nil
		},
		func(c *Config, s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not an integer", s)
			}
			*field(c) = n
			return nil
		}}
}

// listKey takes a list of strings, or one comma-separated string.
func listKey(name string, field func(*Config) *[]string, item func(any) (string, bool)) configKey {
	return configKey{name,
		func(c *Config, v any) error {
			if s, ok := v.(string); ok {
				*field(c) = splitList(s)
				return nil
			}
			rv := reflect.ValueOf(v)
			if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
				return typeError(v, "a list of strings")
			}
			out := make([]string, rv.Len())
			for i := range out {
				s, ok := item(rv.Index(i).Interface())
				if !ok {
					return fmt.Errorf("item %d: %w", i, typeError(rv.Index(i).Interface(), "a string"))
				}
				out[i] = s
			}
			*field(c) = out
			return nil
		},
		func(c *Config, s string) error { *field(c) = splitList(s); return nil }}
}

var configKeys = []configKey{
	stringKey("CACHE_TYPE", func(c *Config) *string { return &c.Type }),
	boolKey("CACHE_NO_NULL_WARNING", func(c *Config) *bool { return &c.NoNullWarning }),
	{"CACHE_ARGS",
		func(c *Config, v any) error {
			rv := reflect.ValueOf(v)
			if v == nil || rv.Kind() != reflect.Slice {
				return typeError(v, "a list")
			}
			c.Args = make([]any, rv.Len())
			for i := range c.Args {
				c.Args[i] = rv.Index(i).Interface()
			}
			return nil
		},
		func(c *Config, s string) error { return jsonInto(s, &c.Args, "a JSON array") }},
	{"CACHE_OPTIONS",
		func(c *Config, v any) error {
			m, ok := v.(map[string]any)
			if !ok {
				return typeError(v, "a map[string]any")
			}
			c.Options = m
			return nil
		},
		func(c *Config, s string) error { return jsonInto(s, &c.Options, "a JSON object") }},
	{"CACHE_DEFAULT_TIMEOUT",
		func(c *Config, v any) error {
			d, err := flaskTimeout(v)
			c.DefaultTimeout = d
			return err
		},
		func(c *Config, s string) error {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return fmt.Errorf("%q is not a number of seconds", s)
			}
			d, err := flaskTimeout(f)
			c.DefaultTimeout = d
			return err
		}},
	boolKey("CACHE_IGNORE_ERRORS", func(c *Config) *bool { return &c.IgnoreErrors }),
	intKey("CACHE_THRESHOLD", func(c *Config) *int { return &c.Threshold }),
	stringKey("CACHE_KEY_PREFIX", func(c *Config) *string { return &c.KeyPrefix }),
	boolKey("CACHE_SOURCE_CHECK", func(c *Config) *bool { return &c.SourceCheck }),
	stringKey("CACHE_UWSGI_NAME", func(c *Config) *string { return &c.UWSGIName }),
	listKey("CACHE_MEMCACHED_SERVERS", func(c *Config) *[]string { return &c.MemcachedServers }, asString),
	stringKey("CACHE_MEMCACHED_USERNAME", func(c *Config) *string { return &c.MemcachedUsername }),
	stringKey("CACHE_MEMCACHED_PASSWORD", func(c *Config) *string { return &c.MemcachedPassword }),
	stringKey("CACHE_REDIS_HOST", func(c *Config) *string { return &c.RedisHost }),
	intKey("CACHE_REDIS_PORT", func(c *Config) *int { return &c.RedisPort }),
	stringKey("CACHE_REDIS_PASSWORD", func(c *Config) *string { return &c.RedisPassword }),
	intKey("CACHE_REDIS_DB", func(c *Config) *int { return &c.RedisDB }),
	stringKey("CACHE_REDIS_URL", func(c *Config) *string { return &c.RedisURL }),
	listKey("CACHE_REDIS_SENTINELS", func(c *Config) *[]string { return &c.RedisSentinels }, hostPort),
	stringKey("CACHE_REDIS_SENTINEL_MASTER", func(c *Config) *string { return &c.RedisSentinelMaster }),
	stringKey("CACHE_REDIS_SENTINEL_PASSWORD", func(c *Config) *string { return &c.RedisSentinelPassword }),
	stringKey("CACHE_REDIS_CLUSTER", func(c *Config) *string { return &c.RedisCluster }),
	stringKey("CACHE_DIR", func(c *Config) *string { return &c.Dir }),
}

// Keys returns the CACHE_* keys FromMap and FromEnv accept, sorted.
func Keys() []string {
	out := make([]string, len(configKeys))
	for i, k := range configKeys {
		out[i] = k.name
	}
	sort.Strings(out)
	return out
}

func lookupKey(name string) (configKey, bool) {
	for _, k := range configKeys {
		if k.name == name {
			return k, true
		}
	}
	return configKey{}, false
}

// FromMap builds a Config from Flask-style settings, applying Flask's
// defaults for absent keys. Values keep their Go types: strings, bools,
// integers (or float64 holding an integer, as JSON decodes them), seconds as
// a number or a time.Duration for CACHE_DEFAULT_TIMEOUT, lists as []string
// or []any, CACHE_OPTIONS as map[string]any. CACHE_REDIS_SENTINELS also takes
// [host, port] pairs as Flask does. A nil value means "use the default".
// An unknown key or a wrong type is an error naming the key and wrapping
// ErrConfig.
func FromMap(m map[string]any) (Config, error) {
	cfg := DefaultConfig()
	for _, name := range sortedKeys(m) {
		k, ok := lookupKey(name)
		if !ok {
			return Config{}, unknownKey(name)
		}
		if m[name] == nil {
			continue
		}
		if err := k.fromAny(&cfg, m[name]); err != nil {
			return Config{}, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
		}
	}
	return cfg, nil
}

// FromEnv builds a Config from environment entries ("KEY=value", as
// os.Environ returns them), reading every variable that starts with CACHE_:
//
//	cfg, err := backends.FromEnv(os.Environ())
//
// Text is parsed per key: integers and seconds as numbers, booleans as
// strconv.ParseBool does, lists as comma-separated items, CACHE_OPTIONS as a
// JSON object and CACHE_ARGS as a JSON array. An unknown CACHE_* variable
// is an error, so that a misspelt setting is not silently ignored.
func FromEnv(environ []string) (Config, error) {
	cfg := DefaultConfig()
	for _, kv := range environ {
		name, val, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "CACHE_") {
			continue
		}
		k, ok := lookupKey(name)
		if !ok {
			return Config{}, unknownKey(name)
		}
		if err := k.fromEnv(&cfg, val); err != nil {
			return Config{}, fmt.Errorf("%w: environment variable %s: %w", ErrConfig, name, err)
		}
	}
	return cfg, nil
}

// MissingKeyError reports a CACHE_* key that the chosen backend needs.
func MissingKeyError(backend, key string) error {
	return fmt.Errorf("%w: %s needs %s", ErrConfig, backend, key)
}

func unknownKey(name string) error {
	return fmt.Errorf("%w: unknown key %s (known keys: %s)", ErrConfig, name, strings.Join(Keys(), ", "))
}

func typeError(v any, want string) error {
	return fmt.Errorf("got %T, want %s", v, want)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func asString(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// hostPort accepts "host:port" or a [host, port] pair.
func hostPort(v any) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) || rv.Len() != 2 {
		return "", false
	}
	host, ok := rv.Index(0).Interface().(string)
	if !ok {
		return "", false
	}
	port, ok := asInt(rv.Index(1).Interface())
	if !ok {
		return "", false
	}
	return host + ":" + strconv.Itoa(port), true
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		i := reflect.ValueOf(n)
		if i.CanInt() {
			return int(i.Int()), true
		}
		if i.Uint() > math.MaxInt {
			return 0, false
		}
		return int(i.Uint()), true
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// flaskTimeout converts a timeout as Flask's settings give it (seconds, or
// a Duration) to the Go convention: Flask's 0, never, is NoExpiry.
func flaskTimeout(v any) (time.Duration, error) {
	d, err := seconds(v)
	if err == nil && d == 0 {
		d = NoExpiry
	}
	return d, err
}

// seconds converts a Flask timeout (int or float seconds, or a Duration). A
// positive number of seconds under a nanosecond is a nanosecond, never 0.
func seconds(v any) (time.Duration, error) {
	var d time.Duration
	switch n := v.(type) {
	case time.Duration:
		d = n
	case float32:
		return seconds(float64(n)) // NaN and infinities need the same checks
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("%v is not a usable number of seconds", n)
		}
		if n < 0 {
			return 0, fmt.Errorf("%w: %v seconds is negative", ErrInvalidTimeout, n)
		}
		d = time.Duration(n * float64(time.Second))
		if d == 0 && n > 0 {
			d = time.Nanosecond
		}
	default:
		i, ok := asInt(v)
		if !ok {
			return 0, typeError(v, "seconds as a number, or a time.Duration")
		}
		d = time.Duration(i) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: %v is negative", ErrInvalidTimeout, d)
	}
	return d, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func jsonInto(s string, dst any, want string) error {
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return fmt.Errorf("want %s: %w", want, err)
	}
	return nil
}
