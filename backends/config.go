package backends

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fragcache/fragcache/internal/cacheopt"
)

// Config is the Go form of Flask-Caching's CACHE_* settings. Build one with
// [DefaultConfig], [FromMap] or [FromEnv] (which apply Flask's defaults) and
// pass it to [Open]. Each field names its Flask key.
//
// The fields are the keys every backend shares. The keys of one backend
// family (CACHE_REDIS_*, CACHE_MEMCACHED_*, CACHE_DIR, CACHE_UWSGI_NAME)
// are in Settings, read by that family's package with its own defaults;
// FromMap and FromEnv parse and type-check them whatever the program
// imports, since they are Flask's fixed set.
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

	// Settings holds the backend-specific keys that are set (see
	// SettingKeys), by name, as typed values: a string, an int, or a
	// []string for CACHE_MEMCACHED_SERVERS and CACHE_REDIS_SENTINELS. A key
	// that is not set is absent, and the backend applies Flask's default.
	// Read them with [Setting].
	Settings map[string]any

	// Codec encodes structured values; nil means MsgpackCodec. Not a Flask key.
	Codec Codec
	// Logger receives warnings; nil means slog.Default(). Not a Flask key.
	Logger *slog.Logger
}

// DefaultConfig returns Flask-Caching's defaults for the keys every backend
// shares. (The defaults of backend-specific keys, such as
// CACHE_REDIS_HOST's "localhost", are applied by the backend's package.)
func DefaultConfig() Config {
	return Config{
		Type:           "null",
		DefaultTimeout: DefaultTimeout,
		Threshold:      DefaultThreshold,
		KeyPrefix:      "flask_cache_",
	}
}

// settingKind is what a backend-specific key holds.
type settingKind uint8

const (
	settingString   settingKind = iota
	settingInt                  // an int
	settingList                 // a []string: a list, or one comma-separated string
	settingHostList             // a list whose items may also be [host, port] pairs
)

// configKey describes one CACHE_* key: how to take its value from a map
// (typed Go values) and from the environment (text). A key with a setting
// kind is stored in Config.Settings.
type configKey struct {
	name    string
	fromAny func(c *Config, v any) error
	fromEnv func(c *Config, s string) error
	setting bool
	kind    settingKind
}

func stringKey(name string, field func(*Config) *string) configKey {
	return configKey{name: name,
		fromAny: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return cacheopt.TypeError(v, "a string")
			}
			*field(c) = s
			return nil
		},
		fromEnv: func(c *Config, s string) error { *field(c) = s; return nil }}
}

func boolKey(name string, field func(*Config) *bool) configKey {
	return configKey{name: name,
		fromAny: func(c *Config, v any) error {
			b, ok := v.(bool)
			if !ok {
				return cacheopt.TypeError(v, "a bool")
			}
			*field(c) = b
			return nil
		},
		fromEnv: func(c *Config, s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not a boolean (want true/false/1/0)", s)
			}
			*field(c) = b
			return nil
		}}
}

func intKey(name string, field func(*Config) *int) configKey {
	return configKey{name: name,
		fromAny: func(c *Config, v any) error {
			n, ok := cacheopt.AsInt(v)
			if !ok {
				return cacheopt.TypeError(v, "an integer")
			}
			*field(c) = n
			return nil
		},
		fromEnv: func(c *Config, s string) error {
			n, err := parseEnvInt(s)
			*field(c) = n
			return err
		}}
}

// settingKey is a backend-specific key: parsed by its kind, stored in
// Config.Settings.
func settingKey(name string, kind settingKind) configKey {
	return configKey{name: name, setting: true, kind: kind,
		fromAny: func(c *Config, v any) error {
			x, err := parseSetting(kind, v)
			if err == nil {
				c.setSetting(name, x)
			}
			return err
		},
		fromEnv: func(c *Config, s string) error {
			var x any = s
			var err error
			switch kind {
			case settingInt:
				x, err = parseEnvInt(s)
			case settingList, settingHostList:
				x = splitList(s)
			}
			if err == nil {
				c.setSetting(name, x)
			}
			return err
		}}
}

func (c *Config) setSetting(name string, v any) {
	if c.Settings == nil {
		c.Settings = map[string]any{}
	}
	c.Settings[name] = v
}

// parseSetting turns a Go value into the typed value of a setting of kind.
func parseSetting(kind settingKind, v any) (any, error) {
	switch kind {
	case settingInt:
		n, ok := cacheopt.AsInt(v)
		if !ok {
			return nil, cacheopt.TypeError(v, "an integer")
		}
		return n, nil
	case settingList:
		return parseList(v, func(x any) (string, bool) { s, ok := x.(string); return s, ok })
	case settingHostList:
		return parseList(v, hostPort)
	}
	s, ok := v.(string)
	if !ok {
		return nil, cacheopt.TypeError(v, "a string")
	}
	return s, nil
}

// parseList takes a list of strings (or of whatever item accepts), or one
// comma-separated string.
func parseList(v any, item func(any) (string, bool)) ([]string, error) {
	if s, ok := v.(string); ok {
		return splitList(s), nil
	}
	rv := reflect.ValueOf(v)
	if v == nil || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return nil, cacheopt.TypeError(v, "a list of strings")
	}
	out := make([]string, rv.Len())
	for i := range out {
		s, ok := item(rv.Index(i).Interface())
		if !ok {
			return nil, fmt.Errorf("item %d: %w", i, cacheopt.TypeError(rv.Index(i).Interface(), "a string"))
		}
		out[i] = s
	}
	return out, nil
}

var configKeys = []configKey{
	stringKey("CACHE_TYPE", func(c *Config) *string { return &c.Type }),
	boolKey("CACHE_NO_NULL_WARNING", func(c *Config) *bool { return &c.NoNullWarning }),
	{name: "CACHE_ARGS",
		fromAny: func(c *Config, v any) error {
			rv := reflect.ValueOf(v)
			if v == nil || rv.Kind() != reflect.Slice {
				return cacheopt.TypeError(v, "a list")
			}
			c.Args = make([]any, rv.Len())
			for i := range c.Args {
				c.Args[i] = rv.Index(i).Interface()
			}
			return nil
		},
		fromEnv: func(c *Config, s string) error { return jsonInto(s, &c.Args, "a JSON array") }},
	{name: "CACHE_OPTIONS",
		fromAny: func(c *Config, v any) error {
			m, ok := v.(map[string]any)
			if !ok {
				return cacheopt.TypeError(v, "a map[string]any")
			}
			c.Options = m
			return nil
		},
		fromEnv: func(c *Config, s string) error { return jsonInto(s, &c.Options, "a JSON object") }},
	{name: "CACHE_DEFAULT_TIMEOUT",
		fromAny: func(c *Config, v any) error {
			d, err := flaskTimeout(v)
			c.DefaultTimeout = d
			return err
		},
		fromEnv: func(c *Config, s string) error {
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

	settingKey("CACHE_UWSGI_NAME", settingString),
	settingKey("CACHE_MEMCACHED_SERVERS", settingList),
	settingKey("CACHE_MEMCACHED_USERNAME", settingString),
	settingKey("CACHE_MEMCACHED_PASSWORD", settingString),
	settingKey("CACHE_REDIS_HOST", settingString),
	settingKey("CACHE_REDIS_PORT", settingInt),
	settingKey("CACHE_REDIS_PASSWORD", settingString),
	settingKey("CACHE_REDIS_DB", settingInt),
	settingKey("CACHE_REDIS_URL", settingString),
	settingKey("CACHE_REDIS_SENTINELS", settingHostList),
	settingKey("CACHE_REDIS_SENTINEL_MASTER", settingString),
	settingKey("CACHE_REDIS_SENTINEL_PASSWORD", settingString),
	settingKey("CACHE_REDIS_CLUSTER", settingString),
	settingKey("CACHE_DIR", settingString),
}

// Keys returns the CACHE_* keys FromMap and FromEnv accept, sorted.
func Keys() []string {
	out := make([]string, len(configKeys))
	for i, k := range configKeys {
		out[i] = k.name
	}
	slices.Sort(out)
	return out
}

// SettingKeys returns the backend-specific CACHE_* keys, the ones stored in
// Config.Settings, sorted.
func SettingKeys() []string {
	var out []string
	for _, k := range configKeys {
		if k.setting {
			out = append(out, k.name)
		}
	}
	slices.Sort(out)
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

// Setting returns the value of the backend-specific key in cfg.Settings,
// or def when it is not set; backend packages read their CACHE_* keys with
// it. A value of another type than the key's (a Config built by hand) is
// converted as FromMap would convert it. It is an error wrapping ErrConfig
// when key is not a backend-specific key, when T is not the key's kind
// (string for most keys, int for CACHE_REDIS_PORT and CACHE_REDIS_DB,
// []string for CACHE_MEMCACHED_SERVERS and CACHE_REDIS_SENTINELS), or when
// the value does not convert.
func Setting[T string | int | []string](cfg Config, key string, def T) (T, error) {
	k, ok := lookupKey(key)
	if !ok || !k.setting {
		return def, fmt.Errorf("%w: %s is not a backend setting (known: %s)", ErrConfig, key, strings.Join(SettingKeys(), ", "))
	}
	v, set := cfg.Settings[key]
	if !set || v == nil {
		return def, nil
	}
	if t, ok := v.(T); ok {
		return t, nil
	}
	x, err := parseSetting(k.kind, v)
	if err != nil {
		return def, fmt.Errorf("%w: %s: %w", ErrConfig, key, err)
	}
	t, ok := x.(T)
	if !ok {
		return def, fmt.Errorf("%w: %s holds %T, read as %T", ErrConfig, key, x, def)
	}
	return t, nil
}

// FromMap builds a Config from Flask-style settings, applying Flask's
// defaults for absent keys. Values keep their Go types: strings, bools,
// integers (or float64 holding an integer, as JSON decodes them), seconds as
// a number or a time.Duration for CACHE_DEFAULT_TIMEOUT (0 is Flask's
// "never", read as NoExpiry), lists as []string or []any, CACHE_OPTIONS as
// map[string]any. CACHE_REDIS_SENTINELS also takes [host, port] pairs as
// Flask does. A nil value means "use the default". An unknown key or a
// wrong type is an error naming the key and wrapping ErrConfig.
func FromMap(m map[string]any) (Config, error) {
	cfg := DefaultConfig()
	for _, name := range slices.Sorted(maps.Keys(m)) {
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

func unknownKey(name string) error {
	return fmt.Errorf("%w: unknown key %s (known keys: %s)", ErrConfig, name, strings.Join(Keys(), ", "))
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
	port, ok := cacheopt.AsInt(rv.Index(1).Interface())
	if !ok {
		return "", false
	}
	return host + ":" + strconv.Itoa(port), true
}

// flaskTimeout converts a timeout as Flask's settings give it (seconds, or
// a Duration) to the Go convention: Flask's 0, never, is NoExpiry. A
// positive timeout under a nanosecond is a nanosecond, not 0 (the default).
func flaskTimeout(v any) (time.Duration, error) {
	d, err := seconds(v)
	if err == nil && d == 0 {
		d = NoExpiry
	}
	return d, err
}

// seconds converts a number of seconds or a Duration; a negative one is
// ErrInvalidTimeout.
func seconds(v any) (time.Duration, error) {
	d, err := cacheopt.Seconds(v)
	if errors.Is(err, cacheopt.ErrNegative) {
		return 0, fmt.Errorf("%w: %w", ErrInvalidTimeout, err)
	}
	return d, err
}

func parseEnvInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	return n, nil
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
