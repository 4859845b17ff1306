//go:build !linux

package testservers

import "syscall"

// sysProcAttr has nothing to add where there is no parent-death signal;
// t.Cleanup alone stops the servers there.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
