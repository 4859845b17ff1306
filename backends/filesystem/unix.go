//go:build unix

package filesystem

import (
	"errors"
	"syscall"
)

// fsOpenFlags make opening an entry file safe whatever is under its name:
// O_NONBLOCK so that opening a FIFO does not wait for a writer, O_NOFOLLOW
// so that a symbolic link is refused rather than followed. Reads of regular
// files ignore O_NONBLOCK.
const fsOpenFlags = syscall.O_NONBLOCK | syscall.O_NOFOLLOW

// isReadOnlyFS reports a write refused because the file system is mounted
// read-only.
func isReadOnlyFS(err error) bool { return errors.Is(err, syscall.EROFS) }
