package filesystem

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
)

// fsClock is a settable wall clock for Backend.now.
type fsClock struct{ t atomic.Int64 }

func (c *fsClock) now() int64              { return c.t.Load() }
func (c *fsClock) advance(d time.Duration) { c.t.Add(int64(d)) }

// newTestFS opens a Backend on a fresh directory with a clock the test
// moves; it starts at a realistic time so expiry arithmetic is exercised.
func newTestFS(t *testing.T, opts Options) (*Backend, *fsClock) {
	t.Helper()
	c, err := New(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	clk := &fsClock{}
	clk.t.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c.now = clk.now
	return c, clk
}

// fsEntryNames lists the entry files in dir.
func fsEntryNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, de := range des {
		if isEntryName(de.Name()) {
			out = append(out, de.Name())
		}
	}
	return out
}

// fsLiveKeys returns which of keys hit.
func fsLiveKeys(t *testing.T, c *Backend, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		_, ok, err := c.Get(context.Background(), k)
		require.NoError(t, err)
		if ok {
			out = append(out, k)
		}
	}
	return out
}

func TestFileSystemRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"empty value", "k", []byte{}},
		{"text", "greeting", []byte("hello")},
		{"binary with NUL and high bytes", "bin", []byte{0, 1, 0xff, 0, '\n'}},
		{"integer text", "n", backends.FormatInt(-42)},
		{"1 MiB", "big", big},
		{"empty key", "", []byte("v")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, _ := newTestFS(t, Options{})
			require.NoError(t, c.Set(ctx, tt.key, slices.Clone(tt.value), backends.NoExpiry))
			got, ok, err := c.Get(ctx, tt.key)
			require.NoError(t, err)
			require.True(t, ok)
			require.NotNil(t, got, "a found value is never nil")
			assert.Equal(t, tt.value, got)
			has, err := c.Has(ctx, tt.key)
			require.NoError(t, err)
			assert.True(t, has)

			// Get hands out a fresh slice: scribbling on it changes nothing.
			for i := range got {
				got[i] ^= 0xff
			}
			again, _, err := c.Get(ctx, tt.key)
			require.NoError(t, err)
			assert.Equal(t, tt.value, again)

			many, err := c.GetMany(ctx, []string{tt.key, tt.key + "-missing"})
			require.NoError(t, err)
			assert.Equal(t, [][]byte{tt.value, nil}, many)
		})
	}
}

func TestFileSystemSetReplacesValueAndTTL(t *testing.T) {
	ctx := context.Background()
	c, clk := newTestFS(t, Options{})
	require.NoError(t, c.Set(ctx, "k", []byte("old"), time.Second))
	require.NoError(t, c.Set(ctx, "k", []byte("new"), backends.NoExpiry))
	clk.advance(time.Hour)
	got, ok, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok, "the second Set's ttl 0 replaces the first's 1s")
	assert.Equal(t, []byte("new"), got)
	assert.Len(t, fsEntryNames(t, c.dir), 1, "one file per key, and no temporary left behind")
	des, err := os.ReadDir(c.dir)
	require.NoError(t, err)
	for _, de := range des {
		assert.False(t, strings.HasPrefix(de.Name(), ".tmp-"), "leftover temporary %s", de.Name())
	}
}

func TestFileSystemExpiry(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		elapsed time.Duration
		live    bool
	}{
		{"before expiry", 10 * time.Second, 10*time.Second - 1, true},
		{"at expiry", 10 * time.Second, 10 * time.Second, false},
		{"after expiry", 10 * time.Second, time.Hour, false},
		{"ttl 0 never expires", 0, 200 * 365 * 24 * time.Hour, true},
		{"huge ttl saturates instead of wrapping", time.Duration(1<<63 - 1), 100 * 365 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, clk := newTestFS(t, Options{})
			require.NoError(t, c.Set(ctx, "k", []byte("v"), tt.ttl))
			clk.advance(tt.elapsed)
			has, err := c.Has(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, tt.live, has)
			_, ok, err := c.Get(ctx, "k")
			require.NoError(t, err)
			assert.Equal(t, tt.live, ok)
			if !tt.live {
				assert.Empty(t, fsEntryNames(t, c.dir), "reading an expired entry removes its file")
			}
		})
	}
}

func TestFileSystemExpiryRealClock(t *testing.T) {
	ctx := context.Background()
	c, err := New(t.TempDir(), Options{})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Set(ctx, "k", []byte("v"), 50*time.Millisecond))
	_, ok, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok)
	time.Sleep(80 * time.Millisecond)
	_, ok, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestFileSystemAdd(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, c *Backend, clk *fsClock)
		added   bool
	}{
		{"missing key is added", func(*testing.T, *Backend, *fsClock) {}, true},
		{"live entry is kept", func(t *testing.T, c *Backend, _ *fsClock) {
			require.NoError(t, c.Set(context.Background(), "k", []byte("old"), time.Minute))
		}, false},
		{"never-expiring entry is kept", func(t *testing.T, c *Backend, _ *fsClock) {
			require.NoError(t, c.Set(context.Background(), "k", []byte("old"), backends.NoExpiry))
		}, false},
		{"expired entry is overwritten", func(t *testing.T, c *Backend, clk *fsClock) {
			require.NoError(t, c.Set(context.Background(), "k", []byte("old"), time.Second))
			clk.advance(time.Second)
		}, true},
		{"corrupt file is overwritten", func(t *testing.T, c *Backend, _ *fsClock) {
			require.NoError(t, os.WriteFile(c.path("k"), []byte("garbage"), 0o600))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, clk := newTestFS(t, Options{})
			tt.prepare(t, c, clk)
			added, err := c.Add(ctx, "k", []byte("new"), time.Minute)
			require.NoError(t, err)
			assert.Equal(t, tt.added, added)
			want := map[bool]string{true: "new", false: "old"}[tt.added]
			got, ok, err := c.Get(ctx, "k")
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, want, string(got))
		})
	}
}

func TestFileSystemInc(t *testing.T) {
	ctx := context.Background()
	t.Run("missing key is created as delta with the given ttl", func(t *testing.T) {
		c, clk := newTestFS(t, Options{})
		n, err := c.Inc(ctx, "n", 5, 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, int64(5), n)
		got, ok, err := c.Get(ctx, "n")
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, backends.FormatInt(5), got)
		clk.advance(10 * time.Second)
		_, ok, err = c.Get(ctx, "n")
		require.NoError(t, err)
		assert.False(t, ok)
	})
	t.Run("existing entry keeps its expiry (Flask resets it)", func(t *testing.T) {
		c, clk := newTestFS(t, Options{})
		require.NoError(t, c.Set(ctx, "n", backends.FormatInt(1), 10*time.Second))
		clk.advance(6 * time.Second)
		n, err := c.Inc(ctx, "n", -3, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, int64(-2), n)
		clk.advance(4 * time.Second)
		_, ok, err := c.Get(ctx, "n")
		require.NoError(t, err)
		assert.False(t, ok, "the entry still expires 10s after its Set")
	})
	t.Run("expired entry starts again from delta", func(t *testing.T) {
		c, clk := newTestFS(t, Options{})
		require.NoError(t, c.Set(ctx, "n", backends.FormatInt(100), time.Second))
		clk.advance(time.Second)
		n, err := c.Inc(ctx, "n", 2, backends.NoExpiry)
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
	})
	bad := []struct {
		name  string
		value []byte
		delta int64
	}{
		{"text", []byte("abc"), 1},
		{"empty", []byte{}, 1},
		{"overflow", backends.FormatInt(1<<63 - 1), 1},
		{"underflow", backends.FormatInt(-1 << 63), -1},
	}
	for _, tt := range bad {
		t.Run("ErrNotInteger for "+tt.name, func(t *testing.T) {
			c, _ := newTestFS(t, Options{})
			require.NoError(t, c.Set(ctx, "n", tt.value, backends.NoExpiry))
			_, err := c.Inc(ctx, "n", tt.delta, backends.NoExpiry)
			require.ErrorIs(t, err, backends.ErrNotInteger)
			got, _, err := c.Get(ctx, "n")
			require.NoError(t, err)
			assert.Equal(t, tt.value, got, "a failed Inc leaves the value alone")
		})
	}
}

func TestFileSystemDelete(t *testing.T) {
	ctx := context.Background()
	c, clk := newTestFS(t, Options{})
	require.NoError(t, c.Set(ctx, "live", []byte("v"), backends.NoExpiry))
	require.NoError(t, c.Set(ctx, "expired", []byte("v"), time.Second))
	clk.advance(time.Second)

	tests := []struct {
		key     string
		deleted bool
	}{
		{"live", true},
		{"live", false},
		{"expired", false},
		{"missing", false},
	}
	for _, tt := range tests {
		deleted, err := c.Delete(ctx, tt.key)
		require.NoError(t, err)
		assert.Equal(t, tt.deleted, deleted, "Delete(%q)", tt.key)
	}
	assert.Empty(t, fsEntryNames(t, c.dir), "the expired entry's file is removed too")

	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, k, []byte(k), backends.NoExpiry))
	}
	n, err := c.DeleteMany(ctx, []string{"a", "missing", "b", "a"})
	require.NoError(t, err)
	assert.Equal(t, 2, n, "DeleteMany goes on past missing keys and counts live ones")
	assert.Equal(t, []string{"c"}, fsLiveKeys(t, c, "a", "b", "c"))
}

func TestFileSystemClear(t *testing.T) {
	ctx := context.Background()
	keys := []string{"app1:a", "app1:b", "app2:a", "other"}
	foreign := []string{"notes.txt", "2029240f6d1128be89ddc32729463129", ".tmp-fresh"}
	tests := []struct {
		prefix string
		kept   []string
	}{
		{"app1:", []string{"app2:a", "other"}},
		{"app", []string{"other"}},
		{"nomatch", keys},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix %q", tt.prefix), func(t *testing.T) {
			c, _ := newTestFS(t, Options{})
			for _, k := range keys {
				require.NoError(t, c.Set(ctx, k, []byte(k), backends.NoExpiry))
			}
			for _, name := range foreign {
				require.NoError(t, os.WriteFile(filepath.Join(c.dir, name), []byte("not ours"), 0o600))
			}
			stale := filepath.Join(c.dir, ".tmp-stale")
			require.NoError(t, os.WriteFile(stale, []byte("partial"), 0o600))
			past := time.Now().Add(-2 * fsTempMaxAge)
			require.NoError(t, os.Chtimes(stale, past, past))
			damaged := c.path("damaged")
			require.NoError(t, os.WriteFile(damaged, []byte("damaged"), 0o600))

			require.NoError(t, c.Clear(ctx, tt.prefix))
			assert.Equal(t, tt.kept, fsLiveKeys(t, c, keys...))
			assert.Len(t, fsEntryNames(t, c.dir), len(tt.kept))
			assert.NoFileExists(t, damaged, "a damaged entry file goes, whatever the prefix")
			assert.NoFileExists(t, stale, "a crashed writer's temporary goes")
			for _, name := range append(foreign, fsLockName) {
				assert.FileExists(t, filepath.Join(c.dir, name), "Clear touches only files named like entries")
			}
		})
	}
}

func TestFileSystemThresholdEviction(t *testing.T) {
	ctx := context.Background()
	type write struct {
		key string
		ttl time.Duration
	}
	tests := []struct {
		name      string
		threshold int
		writes    []write       // one second apart
		wait      time.Duration // after the writes, before the last Set
		last      write
		evicted   []string
	}{
		{
			name:      "expired entries go first",
			threshold: 3,
			writes:    []write{{"forever", 0}, {"short", 2 * time.Second}, {"long", time.Hour}},
			wait:      5 * time.Second,
			last:      write{"new", 0},
			evicted:   []string{"short"},
		},
		{
			// Flask evicts "forever" here, because expiry 0 sorts first.
			name:      "then the oldest write, never-expiring entries not favoured",
			threshold: 3,
			writes:    []write{{"long", 1000 * time.Second}, {"forever", 0}, {"short", 10 * time.Second}},
			last:      write{"new", time.Minute},
			evicted:   []string{"long"},
		},
		{
			name:      "oldest write even if it expires last",
			threshold: 2,
			writes:    []write{{"forever", 0}, {"short", 10 * time.Second}},
			last:      write{"new", 0},
			evicted:   []string{"forever"},
		},
		{
			name:      "overwriting a key in a full cache evicts nothing",
			threshold: 2,
			writes:    []write{{"a", 0}, {"b", 0}},
			last:      write{"a", 0},
		},
		{
			name:      "a large threshold frees a tenth of it at once",
			threshold: 20,
			writes: func() []write {
				w := make([]write, 20)
				for i := range w {
					w[i] = write{fmt.Sprintf("k%02d", i), 0}
				}
				return w
			}(),
			last:    write{"new", 0},
			evicted: []string{"k00", "k01", "k02"}, // 20 - 1 - 20/10 kept before the insert
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, clk := newTestFS(t, Options{Threshold: tt.threshold})
			var all []string
			for _, w := range tt.writes {
				require.NoError(t, c.Set(ctx, w.key, []byte(w.key), w.ttl))
				all = append(all, w.key)
				clk.advance(time.Second)
			}
			clk.advance(tt.wait)
			require.NoError(t, c.Set(ctx, tt.last.key, []byte(tt.last.key), tt.last.ttl))
			if !slices.Contains(all, tt.last.key) {
				all = append(all, tt.last.key)
			}
			want := slices.DeleteFunc(slices.Clone(all), func(k string) bool { return slices.Contains(tt.evicted, k) })
			assert.Equal(t, want, fsLiveKeys(t, c, all...))
			assert.LessOrEqual(t, len(fsEntryNames(t, c.dir)), tt.threshold)
		})
	}
}

func TestFileSystemThresholdHoldsAtMostThreshold(t *testing.T) {
	ctx := context.Background()
	for _, threshold := range []int{1, 2, 7, 50} {
		t.Run(strconv.Itoa(threshold), func(t *testing.T) {
			c, clk := newTestFS(t, Options{Threshold: threshold})
			var keys []string
			for i := range 3 * threshold {
				k := "k" + strconv.Itoa(i)
				keys = append(keys, k)
				require.NoError(t, c.Set(ctx, k, []byte("v"), backends.NoExpiry))
				clk.advance(time.Millisecond)
				require.LessOrEqual(t, len(fsEntryNames(t, c.dir)), threshold, "after %d sets", i+1)
			}
			live := fsLiveKeys(t, c, keys...)
			require.NotEmpty(t, live)
			assert.Equal(t, keys[len(keys)-len(live):], live, "the survivors are the newest writes")
		})
	}
}

func TestFileSystemThresholdCountsExistingFilesAtOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, err := New(dir, Options{Threshold: 3})
	require.NoError(t, err)
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, first.Set(ctx, k, []byte(k), backends.NoExpiry))
	}
	require.NoError(t, first.Close())

	second, err := New(dir, Options{Threshold: 3})
	require.NoError(t, err)
	defer second.Close()
	require.NoError(t, second.Set(ctx, "d", []byte("d"), backends.NoExpiry))
	assert.Len(t, fsEntryNames(t, dir), 3)
}

func TestFileSystemThresholdUnlimited(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestFS(t, Options{Threshold: 0})
	n := backends.DefaultThreshold + 10
	for i := range n {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), []byte("v"), backends.NoExpiry))
	}
	assert.Len(t, fsEntryNames(t, c.dir), n)
}

func TestFileSystemBadFilesAreMisses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(t *testing.T, c *Backend, path string)
	}{
		{"empty file", func(t *testing.T, _ *Backend, path string) {
			require.NoError(t, os.Truncate(path, 0))
		}},
		{"short header", func(t *testing.T, _ *Backend, path string) {
			require.NoError(t, os.Truncate(path, fsHeaderLen-1))
		}},
		{"truncated value", func(t *testing.T, _ *Backend, path string) {
			st, err := os.Stat(path)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(path, st.Size()-1))
		}},
		{"appended bytes", func(t *testing.T, _ *Backend, path string) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteString("x")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"flipped value byte", func(t *testing.T, _ *Backend, path string) {
			flipByte(t, path, -1)
		}},
		{"flipped expiry byte", func(t *testing.T, _ *Backend, path string) {
			flipByte(t, path, 20)
		}},
		{"bad magic", func(t *testing.T, _ *Backend, path string) {
			flipByte(t, path, 0)
		}},
		{"unknown version", func(t *testing.T, _ *Backend, path string) {
			flipByte(t, path, 4)
		}},
		{"Flask's format (uint32 expiry then pickle)", func(t *testing.T, _ *Backend, path string) {
			require.NoError(t, os.WriteFile(path, []byte("\x00\x00\x00\x00\x80\x05\x95\x05\x00"), 0o600))
		}},
		{"another key's entry", func(t *testing.T, _ *Backend, path string) {
			require.NoError(t, os.WriteFile(path, encodeEntry("other", []byte("value"), 1, 0), 0o600))
		}},
		{"a directory", func(t *testing.T, _ *Backend, path string) {
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Mkdir(path, 0o700))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c, _ := newTestFS(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			require.NoError(t, c.Set(ctx, "k", []byte("value"), backends.NoExpiry))
			path := c.path("k")
			tt.damage(t, c, path)

			_, ok, err := c.Get(ctx, "k")
			require.NoError(t, err)
			assert.False(t, ok)
			assert.NoFileExists(t, path)
			assert.NoDirExists(t, path)
			assert.Contains(t, logs.String(), fileName("k"), "the removal is logged")

			tt.damage(t, c, writeEntry(t, c, "k"))
			has, err := c.Has(ctx, "k")
			require.NoError(t, err)
			assert.False(t, has)

			tt.damage(t, c, writeEntry(t, c, "k"))
			deleted, err := c.Delete(ctx, "k")
			require.NoError(t, err)
			assert.False(t, deleted)
			assert.NoFileExists(t, path)
		})
	}
}

// writeEntry stores a valid entry for key and returns its path.
func writeEntry(t *testing.T, c *Backend, key string) string {
	t.Helper()
	require.NoError(t, c.Set(context.Background(), key, []byte("value"), backends.NoExpiry))
	return c.path(key)
}

// flipByte inverts the byte at offset i of the file (negative: from the end).
func flipByte(t *testing.T, path string, i int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func TestFileSystemBadFilesArePruned(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestFS(t, Options{Threshold: 3})
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, k, []byte(k), backends.NoExpiry))
	}
	require.NoError(t, os.Truncate(c.path("c"), 3))
	require.NoError(t, c.Set(ctx, "d", []byte("d"), backends.NoExpiry))
	assert.Equal(t, []string{"a", "b", "d"}, fsLiveKeys(t, c, "a", "b", "c", "d"),
		"the damaged file makes room before any live entry is evicted")
}

func TestFileSystemKeysStayInsideDir(t *testing.T) {
	ctx := context.Background()
	keys := []string{
		"../escape", "../../etc/passwd", "/absolute", "a/b/c", `a\b`, ".", "..", "",
		"nul\x00byte", "unicodé ✓ 日本語", "line\nbreak", strings.Repeat("long", 1<<14),
		".fragcache.lock", ".tmp-123",
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "cache")
	c, err := New(dir, Options{})
	require.NoError(t, err)
	defer c.Close()
	for i, k := range keys {
		require.NoError(t, c.Set(ctx, k, []byte(strconv.Itoa(i)), backends.NoExpiry), "key %q", k)
	}
	for i, k := range keys {
		got, ok, err := c.Get(ctx, k)
		require.NoError(t, err)
		require.True(t, ok, "key %q", k)
		assert.Equal(t, strconv.Itoa(i), string(got), "key %q", k)
	}
	assert.Len(t, fsEntryNames(t, dir), len(keys), "one entry file per key")
	des, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, des, 1, "nothing written beside the cache directory")
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path != dir {
			return fmt.Errorf("subdirectory %s created", path)
		}
		return err
	})
	require.NoError(t, err)
}

func TestFileSystemFileMode(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		mode os.FileMode
		want os.FileMode
	}{
		{0, 0o600},
		{0o600, 0o600},
		{0o640, 0o640},
		{0o444, 0o444},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#o", uint32(tt.mode)), func(t *testing.T) {
			c, _ := newTestFS(t, Options{Mode: tt.mode})
			require.NoError(t, c.Set(ctx, "k", []byte("v"), backends.NoExpiry))
			require.NoError(t, c.Set(ctx, "k", []byte("v2"), backends.NoExpiry), "a read-only mode still allows replacing")
			st, err := os.Stat(c.path("k"))
			require.NoError(t, err)
			assert.Equal(t, tt.want, st.Mode().Perm())
		})
	}
	for _, bad := range []os.FileMode{0o200, 0o1600, os.ModeDir | 0o600, 0o7777} {
		t.Run(fmt.Sprintf("invalid %v", bad), func(t *testing.T) {
			_, err := New(t.TempDir(), Options{Mode: bad})
			require.ErrorIs(t, err, backends.ErrConfig)
			assert.Contains(t, err.Error(), "mode")
		})
	}
}

func TestFileSystemCreatesDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	c, err := New(dir, Options{})
	require.NoError(t, err)
	defer c.Close()
	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.True(t, st.IsDir())
	assert.Equal(t, 0o700&^umaskBits(t), st.Mode().Perm())
}

// umaskBits returns what the process umask strips from 0700, by creating a
// directory with that mode.
func umaskBits(t *testing.T) os.FileMode {
	probe := filepath.Join(t.TempDir(), "probe")
	require.NoError(t, os.Mkdir(probe, 0o700))
	st, err := os.Stat(probe)
	require.NoError(t, err)
	return 0o700 &^ st.Mode().Perm()
}

func TestFileSystemNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	tests := []struct {
		name string
		dir  string
		opts Options
		is   error
		text string
	}{
		{"empty dir", "", Options{}, backends.ErrConfig, "directory"},
		{"negative threshold", t.TempDir(), Options{Threshold: -1}, backends.ErrConfig, "CACHE_THRESHOLD"},
		{"dir is a file", file, Options{}, nil, "cache directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.dir, tt.opts)
			require.Error(t, err)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			assert.Contains(t, err.Error(), tt.text)
		})
	}
}

func TestFileSystemStaleTempFiles(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ".tmp-old")
	fresh := filepath.Join(dir, ".tmp-fresh")
	for _, p := range []string{old, fresh} {
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o600))
	}
	past := time.Now().Add(-2 * fsTempMaxAge)
	require.NoError(t, os.Chtimes(old, past, past))
	c, err := New(dir, Options{Threshold: 1})
	require.NoError(t, err)
	defer c.Close()
	assert.NoFileExists(t, old, "a temporary older than a minute is a crashed writer's")
	assert.FileExists(t, fresh, "a fresh temporary may be another process's write in progress")
	assert.Equal(t, int64(0), c.count.Load(), "temporaries are not entries")
}

func TestFileSystemClosed(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestFS(t, Options{Threshold: 10})
	require.NoError(t, c.Set(ctx, "k", []byte("v"), backends.NoExpiry))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close twice is harmless")
	ops := map[string]func() error{
		"Get":        func() error { _, _, err := c.Get(ctx, "k"); return err },
		"GetMany":    func() error { _, err := c.GetMany(ctx, []string{"k"}); return err },
		"Has":        func() error { _, err := c.Has(ctx, "k"); return err },
		"Set":        func() error { return c.Set(ctx, "k", []byte("v"), backends.NoExpiry) },
		"SetMany":    func() error { return c.SetMany(ctx, map[string][]byte{"k": []byte("v")}, backends.NoExpiry) },
		"Add":        func() error { _, err := c.Add(ctx, "new", []byte("v"), backends.NoExpiry); return err },
		"Inc":        func() error { _, err := c.Inc(ctx, "n", 1, backends.NoExpiry); return err },
		"Delete":     func() error { _, err := c.Delete(ctx, "k"); return err },
		"DeleteMany": func() error { _, err := c.DeleteMany(ctx, []string{"k"}); return err },
		"Clear":      func() error { return c.Clear(ctx, "") },
	}
	for name, op := range ops {
		assert.ErrorIs(t, op(), backends.ErrClosed, name)
	}
	assert.Len(t, fsEntryNames(t, c.dir), 1, "entries outlive Close")
}

func TestFileSystemSetManyReportsEachFailure(t *testing.T) {
	ctx := context.Background()
	c, _ := newTestFS(t, Options{})
	// A non-empty directory under a key's file name cannot be renamed over.
	blocked := c.path("blocked")
	require.NoError(t, os.MkdirAll(filepath.Join(blocked, "x"), 0o700))
	err := c.SetMany(ctx, map[string][]byte{"a": []byte("1"), "blocked": []byte("2"), "b": []byte("3")}, backends.NoExpiry)
	var ke *backends.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "blocked", ke.Key)
	assert.Equal(t, []string{"a", "b"}, fsLiveKeys(t, c, "a", "b"))
}

func TestFileSystemConcurrentNoTornReads(t *testing.T) {
	ctx := context.Background()
	c, err := New(t.TempDir(), Options{Threshold: 8})
	require.NoError(t, err)
	defer c.Close()
	// Values of different lengths and contents, so that any mix of two
	// writes is none of them.
	values := make([][]byte, 6)
	for i := range values {
		values[i] = bytes.Repeat([]byte{byte('a' + i)}, 1+i*3000)
	}
	keys := []string{"x", "y", "z"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				k := keys[(w+i)%len(keys)]
				if err := c.Set(ctx, k, values[(w+i)%len(values)], backends.NoExpiry); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for i := range 400 {
				v, ok, err := c.Get(ctx, keys[(w+i)%len(keys)])
				if err != nil {
					errs <- err
					return
				}
				if ok && !slices.ContainsFunc(values, func(x []byte) bool { return bytes.Equal(x, v) }) {
					errs <- fmt.Errorf("torn read: %d bytes starting %q", len(v), v[:min(len(v), 8)])
					return
				}
			}
		})
	}
	const incs, incers = 100, 4
	for range incers {
		wg.Go(func() {
			for range incs {
				if _, err := c.Inc(ctx, "counter", 1, backends.NoExpiry); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, ok, err := c.Get(ctx, "counter")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, backends.FormatInt(incs*incers), got)
}

func TestFileSystemConcurrentPruning(t *testing.T) {
	ctx := context.Background()
	const threshold, workers, perWorker = 10, 4, 50
	c, err := New(t.TempDir(), Options{Threshold: threshold})
	require.NoError(t, err)
	defer c.Close()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				assert.NoError(t, c.Set(ctx, fmt.Sprintf("%d-%d", w, i), []byte("v"), backends.NoExpiry))
			}
		})
	}
	wg.Wait()
	// Writers that pass the fullness check together each insert, so the
	// bound is approximate by at most one file per concurrent writer.
	assert.LessOrEqual(t, len(fsEntryNames(t, c.dir)), threshold+workers-1)
}

func TestFileSystemTwoInstancesShareDirectory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var caches []*Backend
	for range 2 {
		c, err := New(dir, Options{})
		require.NoError(t, err)
		defer c.Close()
		caches = append(caches, c)
	}
	const perWorker, workersPerCache = 100, 3
	var wg sync.WaitGroup
	var added atomic.Int64
	for _, c := range caches {
		for range workersPerCache {
			wg.Go(func() {
				for range perWorker {
					_, err := c.Inc(ctx, "counter", 1, backends.NoExpiry)
					assert.NoError(t, err)
				}
				ok, err := c.Add(ctx, "once", []byte("v"), backends.NoExpiry)
				assert.NoError(t, err)
				if ok {
					added.Add(1)
				}
			})
		}
	}
	wg.Wait()
	got, ok, err := caches[1].Get(ctx, "counter")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, backends.FormatInt(int64(len(caches)*workersPerCache*perWorker)), got)
	assert.Equal(t, int64(1), added.Load(), "exactly one Add wins")
	v, ok, err := caches[0].Get(ctx, "once")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, []byte("v"), v)
}

// fsHelperEnv names the directory a helper process increments in.
const fsHelperEnv = "FRAGCACHE_FS_INC_HELPER_DIR"

const fsHelperIncs = 200

// TestFileSystemIncHelperProcess is not a test: it is the second process of
// TestFileSystemIncAcrossProcesses, run by re-executing the test binary.
func TestFileSystemIncHelperProcess(t *testing.T) {
	dir := os.Getenv(fsHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestFileSystemIncAcrossProcesses")
	}
	c, err := New(dir, Options{})
	require.NoError(t, err)
	defer c.Close()
	for range fsHelperIncs {
		_, err := c.Inc(context.Background(), "counter", 1, backends.NoExpiry)
		require.NoError(t, err)
	}
}

func TestFileSystemIncAcrossProcesses(t *testing.T) {
	if !dirLockAcrossProcesses {
		t.Skip("no flock(2) on this OS: Add and Inc are serialised within one process only")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const children = 2
	var cmds []*exec.Cmd
	for range children {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFileSystemIncHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fsHelperEnv+"="+dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("helper output:\n%s", out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	c, err := New(dir, Options{})
	require.NoError(t, err)
	defer c.Close()
	for range fsHelperIncs {
		_, err := c.Inc(ctx, "counter", 1, backends.NoExpiry)
		require.NoError(t, err)
	}
	for _, cmd := range cmds {
		require.NoError(t, cmd.Wait())
	}
	got, ok, err := c.Get(ctx, "counter")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, backends.FormatInt((children+1)*fsHelperIncs), got)
}

func TestFileSystemFactory(t *testing.T) {
	ctx := context.Background()
	for _, typ := range []string{"FileSystemCache", "filesystem"} {
		t.Run(typ, func(t *testing.T) {
			cfg := backends.DefaultConfig()
			cfg.Type, cfg.Settings = typ, map[string]any{"CACHE_DIR": t.TempDir()}
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			defer c.Close()
			require.IsType(t, &Backend{}, c.Backend())
			assert.Nil(t, c.Breaker(), "a local directory is not guarded by a circuit breaker")
			require.NoError(t, c.Set(ctx, "k", "v"))
			var got string
			found, err := c.Get(ctx, "k", &got)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "v", got)
			assert.Equal(t, backends.DefaultThreshold, c.Backend().(*Backend).threshold)
		})
	}

	good := []struct {
		name      string
		threshold int
		options   map[string]any
		mode      os.FileMode
		wantLimit int
	}{
		{"mode as Go int", 500, map[string]any{"mode": 0o640}, 0o640, 500},
		{"mode as JSON number", 500, map[string]any{"mode": float64(0o640)}, 0o640, 500},
		{"mode as octal string", 500, map[string]any{"mode": "0640"}, 0o640, 500},
		{"mode as 0o string", 500, map[string]any{"mode": "0o640"}, 0o640, 500},
		{"CACHE_THRESHOLD overrides options threshold", 7, map[string]any{"threshold": 3}, 0o600, 7},
		{"CACHE_THRESHOLD 0 is unlimited", 0, map[string]any{"threshold": 3}, 0o600, 0},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			cfg := backends.DefaultConfig()
			cfg.Type, cfg.Threshold, cfg.Options = "FileSystemCache", tt.threshold, tt.options
			cfg.Settings = map[string]any{"CACHE_DIR": t.TempDir()}
			c, err := backends.Open(cfg)
			require.NoError(t, err)
			defer c.Close()
			fsc := c.Backend().(*Backend)
			assert.Equal(t, tt.mode, fsc.mode)
			assert.Equal(t, tt.wantLimit, fsc.threshold)
		})
	}

	bad := []struct {
		name string
		cfg  func(*backends.Config)
		text []string
	}{
		{"missing CACHE_DIR", func(c *backends.Config) { c.Settings = nil }, []string{"FileSystemCache", "CACHE_DIR"}},
		{"CACHE_DIR of the wrong type", func(c *backends.Config) { c.Settings = map[string]any{"CACHE_DIR": 7} }, []string{"CACHE_DIR", "string"}},
		{"negative CACHE_THRESHOLD", func(c *backends.Config) { c.Threshold = -1 }, []string{"CACHE_THRESHOLD"}},
		{"unknown option", func(c *backends.Config) { c.Options = map[string]any{"hash_method": "md5"} }, []string{"hash_method", "threshold, mode"}},
		{"mode not a number", func(c *backends.Config) { c.Options = map[string]any{"mode": true} }, []string{"mode"}},
		{"mode not octal", func(c *backends.Config) { c.Options = map[string]any{"mode": "rw-------"} }, []string{"mode", "octal"}},
		{"mode without owner read", func(c *backends.Config) { c.Options = map[string]any{"mode": 0o200} }, []string{"mode"}},
		{"options threshold negative", func(c *backends.Config) { c.Options = map[string]any{"threshold": -2} }, []string{"threshold"}},
		{"options threshold not a number", func(c *backends.Config) { c.Options = map[string]any{"threshold": "many"} }, []string{"threshold"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := backends.DefaultConfig()
			cfg.Type, cfg.Settings = "FileSystemCache", map[string]any{"CACHE_DIR": t.TempDir()}
			tt.cfg(&cfg)
			_, err := backends.Open(cfg)
			require.ErrorIs(t, err, backends.ErrConfig)
			for _, s := range tt.text {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestFileSystemLogsToDefaultLogger(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	c, _ := newTestFS(t, Options{})
	require.NoError(t, os.WriteFile(c.path("k"), []byte("junk"), 0o600))
	_, ok, err := c.Get(context.Background(), "k")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Contains(t, logs.String(), "corrupt or foreign")
}
