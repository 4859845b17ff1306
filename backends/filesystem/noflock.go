//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package filesystem

import (
	"context"
	"path/filepath"
	"sync"
)

// dirMutexes holds one lock per cache directory path (a one-place
// semaphore, so that waiting can end with the caller's ctx), so that
// Backend values opened on the same directory in this process exclude each
// other.
var dirMutexes sync.Map

// dirLockAcrossProcesses reports whether dirLock excludes other processes.
const dirLockAcrossProcesses = false

// dirLock is the fallback where the OS has no flock(2): Add and Inc are
// serialised within this process only, so several processes sharing one
// directory may lose increments.
type dirLock struct{ mu chan struct{} }

func openDirLock(path string) (*dirLock, error) {
	mu, _ := dirMutexes.LoadOrStore(filepath.Dir(path), make(chan struct{}, 1))
	return &dirLock{mu.(chan struct{})}, nil
}

func (l *dirLock) lock(ctx context.Context) error {
	select {
	case l.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *dirLock) unlock()      { <-l.mu }
func (l *dirLock) close() error { return nil }
