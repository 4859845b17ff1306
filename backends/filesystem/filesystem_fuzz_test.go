package filesystem

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/fragcache/fragcache/internal/testkit"
)

// FuzzFileSystemEntry writes any bytes as the entry file of key "k" and
// reads them through Get, Clear with a prefix and pruning: never a panic or
// an error, a hit only for bytes that are exactly a valid live entry of
// "k", and at most 64 KiB + 64 bytes per file byte allocated (measured).
// The seeds in testdata/fuzz/FuzzFileSystemEntry are the cases of issue 12
// item 5 that fit in a corpus: valid, expired, truncated and foreign
// entries, and headers claiming 8 GiB values or 4 GiB keys.
func FuzzFileSystemEntry(f *testing.F) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	f.Add(encodeEntry("k", []byte("value"), now-1, 0))
	f.Add(encodeEntry("k", []byte("value"), now-2, now-1))
	f.Add(encodeEntry("other", []byte("value"), now-1, 0))
	dir := f.TempDir()
	c, err := New(dir, Options{Threshold: 1, MaxValueSize: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	c.now = func() int64 { return now }
	ctx := context.Background()
	path := c.path("k")

	f.Fuzz(func(t *testing.T, data []byte) {
		bound := uint64(64<<10 + 64*len(data))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var (
			v   []byte
			ok  bool
			err error
		)
		if n := testkit.Allocated(func() { v, ok, err = c.Get(ctx, "k") }); n > bound {
			t.Fatalf("Get of a %d-byte file allocated %d bytes, over %d", len(data), n, bound)
		}
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if ok {
			setAt := int64(binary.BigEndian.Uint64(data[8:]))
			expires := int64(binary.BigEndian.Uint64(data[16:]))
			if !bytes.Equal(encodeEntry("k", v, setAt, expires), data) {
				t.Fatalf("Get returned %q from a file that is not its entry", v)
			}
			if expires != 0 && expires <= now {
				t.Fatalf("Get returned an entry that expired at %d", expires)
			}
			return // a valid entry stays
		}
		if _, err := os.Lstat(path); err == nil {
			t.Fatal("a file that is not a live entry of its key stays after Get")
		}

		for name, op := range map[string]func() error{
			"Clear with a prefix": func() error { return c.Clear(ctx, "k") },
			"pruning":             func() error { return c.prune(ctx) },
		} {
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if n := testkit.Allocated(func() { err = op() }); n > bound {
				t.Fatalf("%s of a %d-byte file allocated %d bytes, over %d", name, len(data), n, bound)
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	})
}
