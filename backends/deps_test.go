package backends_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A program that imports only backends and calls NewSimple links no
// network client: the backend families are packages of their own.
func TestCoreLinksNoNetworkClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "./testdata/simpleonly").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/fragcache/fragcache/backends", "the list is the program's dependencies")
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/redis/go-redis/",
			"github.com/fragcache/fragcache/internal/memcache",
			"github.com/fragcache/fragcache/internal/uwsgi",
			"github.com/fragcache/fragcache/backends/redis",
			"github.com/fragcache/fragcache/backends/memcached",
			"github.com/fragcache/fragcache/backends/uwsgi",
			"github.com/fragcache/fragcache/backends/filesystem",
		} {
			assert.False(t, strings.HasPrefix(dep+"/", banned+"/") || strings.HasPrefix(dep, banned) && strings.HasSuffix(banned, "/"),
				"a NewSimple-only program links %s", dep)
		}
	}
}
