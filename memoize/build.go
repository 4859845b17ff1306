package memoize

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"runtime/debug"
	"sync"
)

// buildDigest identifies the running build for Options.SourceCheck: the
// SHA-256 of the executable file, read once per process. /proc/self/exe is
// tried first because it still opens after the file was replaced on disk by
// a deploy (os.Executable's path then names the new binary, or nothing).
// Where neither can be read, the module build information stands in; it
// changes with the VCS revision and dependency versions, not with
// uncommitted edits. Without even that, it panics: a source check that
// silently checks nothing would be worse.
var buildDigest = sync.OnceValue(func() string {
	paths := []string{"/proc/self/exe"}
	if p, err := os.Executable(); err == nil {
		paths = append(paths, p)
	}
	for _, p := range paths {
		if d, err := fileDigest(p); err == nil {
			return "exe:" + d
		}
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		sum := sha256.Sum256([]byte(info.String()))
		return "buildinfo:" + hex.EncodeToString(sum[:])
	}
	panic("memoize: SourceCheck: cannot read the executable nor its build information")
})

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
