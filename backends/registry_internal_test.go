package backends

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withoutFactory unregisters a built-in backend for the rest of the test, as
// if its implementation had not landed yet, whichever backends have.
func withoutFactory(t *testing.T, name string) {
	registry.Lock()
	f, ok := registry.factories[name]
	delete(registry.factories, name)
	registry.Unlock()
	t.Cleanup(func() {
		if ok {
			registry.Lock()
			registry.factories[name] = f
			registry.Unlock()
		}
	})
}

func TestOpenOfABuiltInNameWithoutFactoryIsErrNotImplemented(t *testing.T) {
	for alias, canonical := range aliases {
		for _, name := range []string{canonical, alias} {
			t.Run(name, func(t *testing.T) {
				withoutFactory(t, canonical)
				_, err := Open(Config{Type: name, NoNullWarning: true})
				require.ErrorIs(t, err, ErrNotImplemented)
				assert.False(t, errors.Is(err, ErrUnknownBackend))
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", name), "the error names the CACHE_TYPE")
				assert.Contains(t, err.Error(), canonical)
				assert.Contains(t, err.Error(), "not available in this version")
			})
		}
	}
}
