package filesystem

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

// bytesRead returns how many bytes this process read through read(2)
// while f ran, from /proc/self/io; ok is false where that file is missing.
func bytesRead(f func()) (n uint64, ok bool) {
	rchar := func() (uint64, bool) {
		b, err := os.ReadFile("/proc/self/io")
		if err != nil {
			return 0, false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, found := strings.CutPrefix(line, "rchar: "); found {
				n, err := strconv.ParseUint(v, 10, 64)
				return n, err == nil
			}
		}
		return 0, false
	}
	before, ok := rchar()
	f()
	after, ok2 := rchar()
	return after - before, ok && ok2
}

// sparseFile makes path a file of size bytes that starts with head and
// takes no disk space beyond it.
func sparseFile(t *testing.T, path string, head []byte, size int64) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, head, 0o600))
	require.NoError(t, os.Truncate(path, size))
}

// entryHeader is a valid header and key for key, whose value claims valLen
// bytes (the checksum is left zero: such files never get that far).
func entryHeader(key string, valLen uint64) []byte {
	h := make([]byte, fsHeaderLen, fsHeaderLen+len(key))
	copy(h, fsMagic)
	h[4] = fsVersion
	binary.BigEndian.PutUint64(h[24:], valLen)
	binary.BigEndian.PutUint32(h[32:], uint32(len(key)))
	return append(h, key...)
}

// fsReadOp is one Backend operation that reads key "k"'s file.
type fsReadOp struct {
	name string
	run  func(ctx context.Context, c *Backend) error
	// replaces: the operation writes its own entry over the file.
	replaces bool
}

var fsReadOps = []fsReadOp{
	{"Get", func(ctx context.Context, c *Backend) error {
		if v, ok, err := c.Get(ctx, "k"); err != nil || ok || v != nil {
			return errors.Join(err, errors.New("a foreign file read as a value"))
		}
		return nil
	}, false},
	{"Has", func(ctx context.Context, c *Backend) error {
		if ok, err := c.Has(ctx, "k"); err != nil || ok {
			return errors.Join(err, errors.New("a foreign file read as a live entry"))
		}
		return nil
	}, false},
	{"GetMany", func(ctx context.Context, c *Backend) error {
		if v, err := c.GetMany(ctx, []string{"k"}); err != nil || v[0] != nil {
			return errors.Join(err, errors.New("a foreign file read as a value"))
		}
		return nil
	}, false},
	{"Delete", func(ctx context.Context, c *Backend) error {
		if deleted, err := c.Delete(ctx, "k"); err != nil || deleted {
			return errors.Join(err, errors.New("a foreign file counted as a live entry"))
		}
		return nil
	}, false},
	{"Add", func(ctx context.Context, c *Backend) error {
		if added, err := c.Add(ctx, "k", []byte("v"), backends.NoExpiry); err != nil || !added {
			return errors.Join(err, errors.New("a foreign file counted as a live entry"))
		}
		return nil
	}, true},
	{"Inc", func(ctx context.Context, c *Backend) error {
		if n, err := c.Inc(ctx, "k", 1, backends.NoExpiry); err != nil || n != 1 {
			return errors.Join(err, errors.New("a foreign file read as a number"))
		}
		return nil
	}, true},
	{"Clear with a prefix", func(ctx context.Context, c *Backend) error {
		return c.Clear(ctx, "k")
	}, false},
	{"Set pruning a full directory", func(ctx context.Context, c *Backend) error {
		return c.Set(ctx, "other", []byte("v"), backends.NoExpiry)
	}, false},
}

// TestFileSystemHostileFiles puts what an attacker or an accident can leave
// under an entry's name: every operation takes it for a miss at the cost of
// about a header, reading and allocating nothing like the size the file has
// or claims, never blocking, and removes it.
func TestFileSystemHostileFiles(t *testing.T) {
	const costBound = 64 << 10 // far below every file here, far above a header
	tests := []struct {
		name  string
		plant func(t *testing.T, path string)
		// stays: the file cannot be removed without deleting what is not
		// ours (a directory's contents).
		stays bool
	}{
		{"8 GiB sparse file with a valid header", func(t *testing.T, path string) {
			sparseFile(t, path, entryHeader("k", 8<<30-fsHeaderLen-1), 8<<30)
		}, false},
		{"8 GiB sparse file of zeros", func(t *testing.T, path string) {
			sparseFile(t, path, nil, 8<<30)
		}, false},
		{"256 MiB junk file", func(t *testing.T, path string) {
			sparseFile(t, path, bytes.Repeat([]byte("junk"), 1024), 256<<20)
		}, false},
		{"256 MiB file whose header claims its size", func(t *testing.T, path string) {
			sparseFile(t, path, entryHeader("k", 256<<20-fsHeaderLen-1), 256<<20)
		}, false},
		{"1 MiB file of a longer key", func(t *testing.T, path string) {
			sparseFile(t, path, entryHeader(strings.Repeat("k", 1<<20), 0), fsHeaderLen+1<<20)
		}, false},
		{"header claiming a 4 GiB key", func(t *testing.T, path string) {
			h := entryHeader("k", 0)
			binary.BigEndian.PutUint32(h[32:], 1<<32-1)
			sparseFile(t, path, h, fsHeaderLen+1<<32-1)
		}, false},
		{"a FIFO", func(t *testing.T, path string) {
			mkfifo(t, path)
		}, false},
		{"a symbolic link to a FIFO", func(t *testing.T, path string) {
			fifo := filepath.Join(t.TempDir(), "fifo")
			mkfifo(t, fifo)
			require.NoError(t, os.Symlink(fifo, path))
		}, false},
		{"a symbolic link to a device", func(t *testing.T, path string) {
			if _, err := os.Stat("/dev/zero"); err != nil {
				t.Skip("no /dev/zero")
			}
			require.NoError(t, os.Symlink("/dev/zero", path))
		}, false},
		{"a symbolic link to a directory", func(t *testing.T, path string) {
			require.NoError(t, os.Symlink(t.TempDir(), path))
		}, false},
		{"a symbolic link to a valid entry", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "entry")
			require.NoError(t, os.WriteFile(other, encodeEntry("k", []byte("value"), 1, 0), 0o600))
			require.NoError(t, os.Symlink(other, path))
		}, false},
		{"an empty directory", func(t *testing.T, path string) {
			require.NoError(t, os.Mkdir(path, 0o700))
		}, false},
		{"a directory holding files", func(t *testing.T, path string) {
			require.NoError(t, os.MkdirAll(filepath.Join(path, "sub"), 0o700))
		}, true},
	}
	for _, tt := range tests {
		for _, op := range fsReadOps {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				c, _ := newTestFS(t, Options{Threshold: 1, Logger: slog.New(slog.DiscardHandler)})
				path := c.path("k")
				tt.plant(t, path)
				t.Cleanup(func() { unblockFIFO(path) })
				c.count.Store(1) // so that Set prunes

				type result struct {
					err         error
					alloc, read uint64
					hasIO       bool
				}
				done := make(chan result, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					var r result
					r.read, r.hasIO = bytesRead(func() {
						r.alloc = testkit.Allocated(func() { r.err = op.run(ctx, c) })
					})
					done <- r
				}()
				var r result
				select {
				case r = <-done:
				case <-time.After(2 * time.Minute):
					t.Fatalf("%s blocked on the file", op.name)
				}
				if tt.stays && !op.replaces && (op.name == "Delete" || op.name == "Clear with a prefix" || op.name == "Set pruning a full directory") {
					// Writers report what they could not remove.
					require.ErrorContains(t, r.err, "directory not empty")
				} else if tt.stays && op.replaces {
					require.Error(t, r.err, "cannot write over a directory holding files")
				} else {
					require.NoError(t, r.err)
				}
				assert.Less(t, r.alloc, uint64(costBound), "bytes allocated")
				if r.hasIO {
					assert.Less(t, r.read, uint64(costBound), "bytes read")
				}
				st, err := os.Lstat(path)
				switch {
				case tt.stays:
					require.NoError(t, err)
					assert.True(t, st.IsDir())
				case op.replaces:
					require.NoError(t, err)
					assert.True(t, st.Mode().IsRegular(), "%s wrote its entry over the file", op.name)
				default:
					assert.ErrorIs(t, err, fs.ErrNotExist, "the foreign file is removed")
				}
			})
		}
	}
}

func TestFileSystemHonoursContext(t *testing.T) {
	c, _ := newTestFS(t, Options{})
	require.NoError(t, c.Set(context.Background(), "k", []byte("v"), backends.NoExpiry))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	_, err = c.GetMany(ctx, []string{"k"})
	require.ErrorIs(t, err, context.Canceled)
	_, err = c.Has(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	_, err = c.Delete(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, fsEntryNames(t, c.dir), 1, "nothing was removed")
}

// TestFileSystemLargeValueHonoursContext cancels a Get while it reads a
// value larger than one read chunk.
func TestFileSystemLargeValueHonoursContext(t *testing.T) {
	c, _ := newTestFS(t, Options{})
	value := bytes.Repeat([]byte("v"), 3*fsReadChunk)
	require.NoError(t, c.Set(context.Background(), "k", value, backends.NoExpiry))
	got, ok, err := c.Get(context.Background(), "k")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, value, got)

	ctx, cancel := context.WithCancel(context.Background())
	f, err := os.Open(c.path("k"))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 3*fsReadChunk)
	chunks := 0
	err = readFullHook(ctx, f, buf, func() {
		if chunks++; chunks == 1 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, chunks, "reading stops at the first chunk after the cancellation")
}

func TestFileSystemMaxValueSize(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestFS(t, Options{MaxValueSize: 100, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, c.Set(ctx, "fits", bytes.Repeat([]byte("x"), 100), backends.NoExpiry))
	v, ok, err := c.Get(ctx, "fits")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Len(t, v, 100)

	err = c.Set(ctx, "big", bytes.Repeat([]byte("x"), 101), backends.NoExpiry)
	require.ErrorIs(t, err, backends.ErrValueTooLarge)
	assert.ErrorContains(t, err, "101")
	assert.ErrorContains(t, err, "max_value_size")
	_, err = c.Add(ctx, "big", bytes.Repeat([]byte("x"), 101), backends.NoExpiry)
	require.ErrorIs(t, err, backends.ErrValueTooLarge)
	assert.NoFileExists(t, c.path("big"))

	// A file written under a larger limit is a miss here.
	other, err := New(c.dir, Options{})
	require.NoError(t, err)
	defer other.Close()
	assert.Equal(t, int64(DefaultMaxValueSize), other.maxValue)
	require.NoError(t, other.Set(ctx, "big", make([]byte, 101), backends.NoExpiry))
	_, ok, err = c.Get(ctx, "big")
	require.NoError(t, err)
	assert.False(t, ok)

	_, err = New(t.TempDir(), Options{MaxValueSize: -1})
	require.ErrorIs(t, err, backends.ErrConfig)
}

func TestFileSystemMaxValueSizeOption(t *testing.T) {
	cfg := backends.DefaultConfig()
	cfg.Type, cfg.Options = "FileSystemCache", map[string]any{"max_value_size": float64(1 << 20)}
	cfg.Settings = map[string]any{"CACHE_DIR": t.TempDir()}
	c, err := backends.Open(cfg)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, int64(1<<20), c.Backend().(*Backend).maxValue)

	for _, bad := range []any{0, -5, "big", 1.5} {
		cfg.Options = map[string]any{"max_value_size": bad}
		_, err := backends.Open(cfg)
		require.ErrorIs(t, err, backends.ErrConfig, "%v", bad)
		assert.ErrorContains(t, err, "max_value_size")
	}
}

const fsReadOnlyEnv = "FRAGCACHE_FS_READONLY_HELPER"

// TestFileSystemUnwritableDirectory checks a directory this process cannot
// write, with and without a lock file: it opens, live entries are hits,
// expired and damaged ones are misses, and writes fail saying why. Root
// writes anywhere, so as root the checks run in a helper process with the
// uid of nobody.
func TestFileSystemUnwritableDirectory(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("directory permissions differ")
	}
	for _, lockFile := range []bool{true, false} {
		t.Run("lock file "+strconv.FormatBool(lockFile), func(t *testing.T) {
			ctx := context.Background()
			parent := t.TempDir()
			dir := filepath.Join(parent, "cache")
			c, err := New(dir, Options{Mode: 0o644})
			require.NoError(t, err)
			require.NoError(t, c.Set(ctx, "live", []byte("value"), backends.NoExpiry))
			require.NoError(t, c.Set(ctx, "expired", []byte("value"), time.Millisecond))
			require.NoError(t, c.Set(ctx, "damaged", []byte("value"), backends.NoExpiry))
			flipByte(t, c.path("damaged"), -1)
			require.NoError(t, os.Chmod(c.path("damaged"), 0o644))
			require.NoError(t, c.Close())
			if !lockFile {
				require.NoError(t, os.Remove(filepath.Join(dir, fsLockName)))
			}
			time.Sleep(5 * time.Millisecond) // "expired" expires by the wall clock
			require.NoError(t, os.Chmod(dir, 0o555))
			t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

			if os.Geteuid() != 0 {
				checkUnwritableDirectory(t, dir)
				return
			}
			// nobody must reach the directory and run the test binary,
			// which lives in a directory only root may enter.
			for p := parent; p != "/" && p != "."; p = filepath.Dir(p) {
				st, err := os.Stat(p)
				require.NoError(t, err)
				if perm := st.Mode().Perm(); perm&0o001 == 0 {
					require.NoError(t, os.Chmod(p, perm|0o001))
					t.Cleanup(func() { _ = os.Chmod(p, perm) })
				}
			}
			bin := filepath.Join(parent, "helper.test")
			self, err := os.ReadFile(os.Args[0])
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(bin, self, 0o755))
			cmd := exec.Command(bin, "-test.run=^TestFileSystemUnwritableDirectoryHelperProcess$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), fsReadOnlyEnv+"="+dir)
			cmd.Dir = parent
			cmd.SysProcAttr = nobodyAttr()
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "helper process:\n%s", out)
			require.Contains(t, string(out), "--- PASS: TestFileSystemUnwritableDirectoryHelperProcess", "helper process:\n%s", out)
		})
	}
}

// TestFileSystemUnwritableDirectoryHelperProcess is not a test: it is the
// unprivileged half of TestFileSystemUnwritableDirectory.
func TestFileSystemUnwritableDirectoryHelperProcess(t *testing.T) {
	dir := os.Getenv(fsReadOnlyEnv)
	if dir == "" {
		t.Skip("helper process of TestFileSystemUnwritableDirectory")
	}
	checkUnwritableDirectory(t, dir)
}

func checkUnwritableDirectory(t *testing.T, dir string) {
	ctx := context.Background()
	c, err := New(dir, Options{Threshold: 10})
	require.NoError(t, err, "a read-only directory opens")
	defer c.Close()

	v, ok, err := c.Get(ctx, "live")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "value", string(v))
	for _, k := range []string{"expired", "damaged", "missing"} {
		_, ok, err := c.Get(ctx, k)
		require.NoError(t, err, "Get of %s", k)
		assert.False(t, ok, k)
		ok, err = c.Has(ctx, k)
		require.NoError(t, err, "Has of %s", k)
		assert.False(t, ok, k)
	}
	got, err := c.GetMany(ctx, []string{"live", "expired", "damaged"})
	require.NoError(t, err)
	assert.Equal(t, [][]byte{[]byte("value"), nil, nil}, got)

	err = c.Set(ctx, "new", []byte("v"), backends.NoExpiry)
	require.Error(t, err)
	assert.ErrorContains(t, err, "not writable")
	assert.ErrorContains(t, err, dir)
	_, err = c.Add(ctx, "new", []byte("v"), backends.NoExpiry)
	assert.ErrorContains(t, err, "not writable")
	_, err = c.Inc(ctx, "n", 1, backends.NoExpiry)
	assert.ErrorContains(t, err, "not writable")
}
