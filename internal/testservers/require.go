package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireServersEnv names the environment variable that, set to "1", turns a
// missing server dependency from a skipped test into a failed one.
const RequireServersEnv = "FRAGCACHE_REQUIRE_SERVERS"

// RequireBinary returns the path of the executable name. When it is missing,
// the test is skipped with a message naming the binary and pkg, the
// Debian/Ubuntu package that provides it, or fails if RequireServersEnv is
// "1". Besides PATH it looks in /usr/sbin and /sbin, where tools such as
// saslpasswd2 live but which are often not in a normal user's PATH.
func RequireBinary(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	missingDependency(t, fmt.Sprintf("%s not found in PATH, /usr/sbin or /sbin (install the package %s)", name, pkg))
	return ""
}

// missingDependency skips or fails t for a server dependency that is not
// installed, by the rule in RequireBinary.
func missingDependency(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(RequireServersEnv) == "1" {
		t.Fatalf("testservers: %s; required because %s=1", what, RequireServersEnv)
		return
	}
	t.Skipf("testservers: %s; skipping (set %s=1 to fail instead)", what, RequireServersEnv)
}
