package testservers

import "syscall"

// sysProcAttr makes the kernel SIGKILL a server when the test binary dies
// without running its cleanups (a -timeout panic, os.Exit), so no server is
// left holding a port. The signal follows the OS thread that started the
// child, which the Go runtime does not end while tests run: no goroutine
// here locks its thread.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
