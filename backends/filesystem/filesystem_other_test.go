//go:build !unix

package filesystem

import (
	"syscall"
	"testing"
)

func nobodyAttr() *syscall.SysProcAttr { return nil }

func mkfifo(t *testing.T, _ string) { t.Skip("no FIFOs on this OS") }

func unblockFIFO(string) {}
