package backends

import (
	"fmt"

	"github.com/fragcache/fragcache/internal/cacheopt"
)

// CheckOptions returns an error naming the first CACHE_OPTIONS key of opts
// that is not in known; a backend factory uses it to reject misspelt
// options. Every CACHE_OPTIONS error names its key and wraps ErrConfig.
func CheckOptions(backend string, opts map[string]any, known ...string) error {
	if err := cacheopt.Check(backend, opts, known...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
