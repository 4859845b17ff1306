//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package filesystem

import (
	"path/filepath"
	"sync"
)

// dirMutexes holds one mutex per cache directory path, so that Backend
// values opened on the same directory in this process exclude each other.
var dirMutexes sync.Map

// dirLockAcrossProcesses reports whether dirLock excludes other processes.
const dirLockAcrossProcesses = false

// dirLock is the fallback where the OS has no flock(2): Add and Inc are
// serialised within this process only, so several processes sharing one
// directory may lose increments.
type dirLock struct{ mu *sync.Mutex }

func openDirLock(path string) (*dirLock, error) {
	mu, _ := dirMutexes.LoadOrStore(filepath.Dir(path), new(sync.Mutex))
	return &dirLock{mu.(*sync.Mutex)}, nil
}

func (l *dirLock) lock() error  { l.mu.Lock(); return nil }
func (l *dirLock) unlock()      { l.mu.Unlock() }
func (l *dirLock) close() error { return nil }
