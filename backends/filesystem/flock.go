//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filesystem

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"
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

// lock takes the exclusive flock, or returns ctx's error once ctx ends.
// flock(2) cannot be interrupted by a deadline, so it is tried without
// blocking and retried after a pause that grows from 50 µs to 10 ms: a
// lock held for microseconds by another process costs about that, one
// held by a stopped process costs the caller its deadline, not forever.
func (l *dirLock) lock(ctx context.Context) error {
	if l.f == nil {
		return nil
	}
	pause := 50 * time.Microsecond
	for {
		err := l.flock(syscall.LOCK_EX | syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
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
