//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// dirLockAcrossProcesses reports whether dirLock excludes other processes.
const dirLockAcrossProcesses = true

// dirLock is the cross-process half of a Backend's lock: flock(2) on a
// file in the cache directory. flock locks belong to an open file
// description, so two Backend values that open the same directory, in one
// process or in two, exclude each other. Goroutines of one Backend share
// the descriptor and are ordered by its mutex instead.
//
// In a directory this process cannot write, an existing lock file is
// locked through a read-only descriptor (flock needs no write access), and
// without one there is no cross-process lock: f is nil. Writes fail there
// anyway; reads take no lock.
type dirLock struct{ f *os.File }

func openDirLock(path string) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		return &dirLock{f}, nil
	}
	if !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EROFS) {
		return nil, err
	}
	if f, err := os.Open(path); err == nil {
		return &dirLock{f}, nil
	}
	return &dirLock{}, nil
}

func (l *dirLock) lock() error {
	if l.f == nil {
		return nil
	}
	return l.flock(syscall.LOCK_EX)
}

// unlock cannot fail in a way worth reporting: the lock is released at the
// latest when the descriptor is closed.
func (l *dirLock) unlock() {
	if l.f != nil {
		_ = l.flock(syscall.LOCK_UN)
	}
}

func (l *dirLock) flock(how int) error {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}

func (l *dirLock) close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}
