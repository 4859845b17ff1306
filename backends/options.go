package backends

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// This file reads CACHE_OPTIONS, the backend-specific keyword options, the
// same way for every backend: unknown keys are errors, and every error
// names the key.

// CheckOptions returns an error naming the first CACHE_OPTIONS key of opts
// that is not in known; backend factories use it to reject misspelt options.
func CheckOptions(backend string, opts map[string]any, known ...string) error {
	var unknown []string
	for k := range opts {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	accepted := "none"
	if len(known) > 0 {
		accepted = strings.Join(known, ", ")
	}
	return fmt.Errorf("%w: CACHE_OPTIONS key %q is not an option of %s (accepted: %s)", ErrConfig, unknown[0], backend, accepted)
}

// durationOption reads a duration option: seconds as a number (as Flask's
// redis-py socket timeouts are), a Go duration string such as "500ms", or a
// time.Duration.
func durationOption(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return seconds(v)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"500ms\" or a number of seconds", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%v is negative", d)
	}
	return d, nil
}

// durationOpt reads the duration option name, if present, into dst.
func durationOpt(m map[string]any, name string, dst *time.Duration) error {
	v, ok := m[name]
	if !ok {
		return nil
	}
	d, err := durationOption(v)
	if err != nil {
		return fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, name, err)
	}
	*dst = d
	return nil
}

// positiveIntOpt reads the positive integer option name, if present, into dst.
func positiveIntOpt(m map[string]any, name string, dst *int) error {
	v, ok := m[name]
	if !ok {
		return nil
	}
	n, ok := asInt(v)
	if !ok || n <= 0 {
		return fmt.Errorf("%w: CACHE_OPTIONS %s: got %v (%T), want a positive integer", ErrConfig, name, v, v)
	}
	*dst = n
	return nil
}

// stringsOpt reads the list-of-strings option name, if present, into dst.
func stringsOpt(m map[string]any, name string, dst *[]string) error {
	v, ok := m[name]
	if !ok {
		return nil
	}
	l, err := stringList(v)
	if err != nil {
		return fmt.Errorf("%w: CACHE_OPTIONS %s: %w", ErrConfig, name, err)
	}
	*dst = l
	return nil
}

// stringList accepts []string or a []any of strings (as JSON decodes).
func stringList(v any) ([]string, error) {
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("item %d: %w", i, typeError(x, "a string"))
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, typeError(v, "a list of strings")
}
