//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package filesystem

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAttackFileSystemLockIgnoresContext (attack finding 8, ported from branch attack): Add, Inc, pruning and the
// removal of an expired or damaged file take the cache directory's flock
// with a blocking LOCK_EX, and the in-process write lock before it. Another
// process that holds the flock and stops (SIGSTOP, a debugger, a disk that
// hangs under it, or any local process of the same user that takes it)
// blocks those calls in every process, past their context's deadline and
// forever; while one waits, it holds the write lock, so this process's Set
// and Delete wait too. The fragment Lock option takes its lock with Add.
func TestAttackFileSystemLockIgnoresContext(t *testing.T) {
	dir := t.TempDir()
	c, err := New(dir, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	bg := context.Background()
	require.NoError(t, c.Set(bg, "expired", []byte("v"), time.Nanosecond))

	// Another process's hold on the directory lock: a file description of
	// its own, so the flock conflicts with the backend's.
	other, err := os.Open(filepath.Join(dir, fsLockName))
	require.NoError(t, err)
	defer other.Close()
	require.NoError(t, syscall.Flock(int(other.Fd()), syscall.LOCK_EX))
	var pending []chan struct{}
	defer func() {
		// Let the blocked calls finish, so that no goroutine outlives the test.
		_ = syscall.Flock(int(other.Fd()), syscall.LOCK_UN)
		for _, done := range pending {
			<-done
		}
	}()

	for _, tc := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"Get of an expired entry", func(ctx context.Context) error { _, _, err := c.Get(ctx, "expired"); return err }},
		{"Add", func(ctx context.Context) error { _, err := c.Add(ctx, "lock", []byte("me"), time.Second); return err }},
		{"Inc", func(ctx context.Context) error { _, err := c.Inc(ctx, "n", 1, time.Second); return err }},
	} {
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = tc.op(ctx)
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			pending = append(pending, done)
			assert.Fail(t, tc.name+" blocked past its 200 ms deadline", "still blocked after 2 s while another process holds the directory lock")
		}
		cancel()
	}
}
