package backends

import (
	"fmt"
	"strings"
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

func TestOpenOfAFlaskNameWhosePackageIsNotImportedNamesTheImport(t *testing.T) {
	for alias, canonical := range aliases {
		for _, name := range []string{canonical, alias} {
			t.Run(name, func(t *testing.T) {
				withoutFactory(t, canonical)
				_, err := Open(Config{Type: name, NoNullWarning: true})
				require.ErrorIs(t, err, ErrUnknownBackend)
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", name), "the error names the CACHE_TYPE")
				assert.Contains(t, err.Error(), fmt.Sprintf("needs import _ %q", builtins[canonical].pkg))
				assert.Contains(t, err.Error(), `"github.com/fragcache/fragcache/backends/all"`)
				assert.NotContains(t, Types(), name, "Types lists only what opens")
			})
		}
	}
}

func TestEveryFlaskNameHasAPackage(t *testing.T) {
	for alias, canonical := range aliases {
		_, ok := builtins[canonical]
		assert.True(t, ok, "alias %s of %s", alias, canonical)
	}
	for name, b := range builtins {
		assert.True(t, strings.HasPrefix(b.pkg, ImportPath), name)
	}
}
