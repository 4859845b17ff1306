//go:build unix

package filesystem

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// nobodyAttr runs a child process as the user nobody (65534).
func nobodyAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, syscall.Mkfifo(path, 0o600))
}

// unblockFIFO opens the FIFO at path (or its link's target) for writing
// without blocking, which wakes a reader stuck opening it.
func unblockFIFO(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
}
