package memcached_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// openCache opens a cache from Flask-style settings, closed when t ends.
func openCache(t *testing.T, settings map[string]any) *backends.Cache {
	t.Helper()
	cfg, err := backends.FromMap(settings)
	require.NoError(t, err)
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
