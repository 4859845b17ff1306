package backends

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// EnvOptions configure FromEnv. The zero value reads CACHE_* variables and
// ignores the ones it does not know.
type EnvOptions struct {
	// Prefix is put before every name FromEnv reads: with "MYAPP_",
	// CACHE_TYPE is read from MYAPP_CACHE_TYPE, and variables that do not
	// start with MYAPP_CACHE_ are not looked at. A prefix of the
	// application's own keeps fragcache's settings apart from variables
	// that others set, such as the service links Kubernetes puts into
	// every pod (a Service named "cache" gives CACHE_SERVICE_HOST,
	// CACHE_PORT and more).
	Prefix string
	// Strict makes a variable named like a setting (Prefix + "CACHE_…")
	// that is not one an error, so that a misspelt setting does not pass
	// unnoticed. By default such a variable is ignored and logged at debug
	// level.
	Strict bool
	// Logger receives the debug line for each variable ignored; nil means
	// slog.Default().
	Logger *slog.Logger
}

// FromEnv builds a Config from environment entries ("KEY=value", as
// os.Environ returns them), reading every variable named opts.Prefix +
// "CACHE_…":
//
//	cfg, err := backends.FromEnv(os.Environ(), backends.EnvOptions{})
//
// Text is parsed per key: integers and seconds as numbers, booleans as
// strconv.ParseBool does, lists as comma-separated items, CACHE_OPTIONS as a
// JSON object and CACHE_ARGS as a JSON array; CACHE_DEFAULT_TIMEOUT=0 is
// Flask's "never", read as NoExpiry. A variable FromEnv does not know is
// ignored (an error with opts.Strict). A known variable holding a
// Kubernetes service link (CACHE_REDIS_PORT=tcp://10.0.0.5:6379, which a
// Service named "cache-redis" sets) is an error that says so and how to
// avoid it. Every error wraps ErrConfig and names the variable.
func FromEnv(environ []string, opts EnvOptions) (Config, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg := DefaultConfig()
	for _, kv := range environ {
		env, val, _ := strings.Cut(kv, "=")
		name, ours := strings.CutPrefix(env, opts.Prefix)
		if !ours || !strings.HasPrefix(name, "CACHE_") {
			continue
		}
		k, known := lookupKey(name)
		switch {
		case !known && opts.Strict:
			return Config{}, unknownVariable(env, opts.Prefix)
		case !known:
			logger.Debug("fragcache: ignoring an environment variable that is not a cache setting", "name", env)
			continue
		case serviceLink.MatchString(val):
			return Config{}, serviceLinkError(env, val, name, opts.Prefix)
		}
		if err := k.fromEnv(&cfg, val); err != nil {
			return Config{}, fmt.Errorf("%w: environment variable %s: %w", ErrConfig, env, err)
		}
	}
	return cfg, nil
}

// serviceLink matches the value of a Kubernetes service link variable
// (<SERVICE>_PORT, <SERVICE>_PORT_<port>_<PROTO>): "tcp://10.0.0.5:6379".
var serviceLink = regexp.MustCompile(`^(tcp|udp|sctp)://[^/\s]+:[0-9]+$`)

// serviceLinkName matches the names Kubernetes gives service link
// variables, and captures the service's name part.
var serviceLinkName = regexp.MustCompile(`^([A-Z0-9_]+?)_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_ADDR|_PORT|_PROTO)?)?)$`)

// serviceLinkError explains a setting that Kubernetes has overwritten.
func serviceLinkError(env, val, name, prefix string) error {
	service := strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(name, "_PORT"), "_", "-"))
	return fmt.Errorf("%w: environment variable %s=%q is a Kubernetes service link (Kubernetes sets it in every pod of the namespace of a Service named %q), not a cache setting: %s",
		ErrConfig, env, val, service, serviceLinkFixes(prefix))
}

func serviceLinkFixes(prefix string) string {
	fix := `read fragcache's settings under a prefix of your own (FromEnv with EnvOptions{Prefix: "MYAPP_"}, then MYAPP_CACHE_TYPE, MYAPP_CACHE_REDIS_PORT…)`
	if prefix != "" {
		fix = "choose a prefix no Service name in the namespace starts with (EnvOptions.Prefix, now " + prefix + ")"
	}
	return fix + ", or turn service links off in the pod spec (enableServiceLinks: false)"
}

func unknownVariable(env, prefix string) error {
	err := fmt.Errorf("%w: environment variable %s is not a cache setting (known: %s; EnvOptions.Strict is on)", ErrConfig, env, strings.Join(Keys(), ", "))
	if serviceLinkName.MatchString(strings.TrimPrefix(env, prefix)) {
		err = fmt.Errorf("%w; it looks like a Kubernetes service link: %s, or turn Strict off", err, serviceLinkFixes(prefix))
	}
	return err
}
