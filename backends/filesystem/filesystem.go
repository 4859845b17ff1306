package filesystem

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/cacheopt"
)

func init() {
	backends.Register("FileSystemCache", openFromConfig)
}

// openFromConfig is FileSystemCache's factory: CACHE_DIR,
// CACHE_THRESHOLD and CACHE_OPTIONS.
func openFromConfig(cfg backends.Config) (backends.Backend, error) {
	dir, err := backends.Setting(cfg, "CACHE_DIR", "")
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: FileSystemCache needs CACHE_DIR", backends.ErrConfig)
	}
	if cfg.Threshold < 0 {
		return nil, fmt.Errorf("%w: CACHE_THRESHOLD %d is negative", backends.ErrConfig, cfg.Threshold)
	}
	opts := Options{Threshold: cfg.Threshold, Logger: cfg.Logger}
	if err := cacheopt.Decode("FileSystemCache", cfg.Options, &opts, optionTable); err != nil {
		return nil, fmt.Errorf("%w: %w", backends.ErrConfig, err)
	}
	return New(dir, opts)
}

// optionTable lists FileSystemCache's CACHE_OPTIONS.
var optionTable = []cacheopt.Option[Options]{
	// Flask's factory passes CACHE_THRESHOLD over CACHE_OPTIONS
	// "threshold", so the option never wins; it is still checked so that a
	// wrong value does not pass silently.
	cacheopt.Func("threshold", func(_ *Options, v any) error {
		if n, ok := cacheopt.AsInt(v); !ok || n < 0 {
			return fmt.Errorf("got %v (%T), want a non-negative integer", v, v)
		}
		return nil
	}),
	cacheopt.Func("mode", func(o *Options, v any) error {
		m, err := fileModeOption(v)
		o.Mode = m
		return err
	}),
	cacheopt.PositiveInt("max_value_size", func(o *Options) *int { return &o.MaxValueSize }),
}

// fileModeOption reads CACHE_OPTIONS "mode": an integer (0o600, or 384 as
// JSON gives it) or a string, read as octal ("0600", "600", "0o600").
func fileModeOption(v any) (os.FileMode, error) {
	if s, ok := v.(string); ok {
		t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
		n, err := strconv.ParseUint(t, 8, 32)
		if err != nil {
			return 0, fmt.Errorf("%q is not an octal file mode", s)
		}
		return os.FileMode(n), nil
	}
	n, ok := cacheopt.AsInt(v)
	if !ok || n < 0 || n > math.MaxUint32 {
		return 0, cacheopt.TypeError(v, "a file mode such as 0o600 (384)")
	}
	return os.FileMode(n), nil
}

// DefaultMaxValueSize is the default of
// Options.MaxValueSize: 64 MiB, far above any rendered fragment,
// and what one Get may cost at most whatever file is put under an entry's
// name.
const DefaultMaxValueSize = 64 << 20

// Options configures a [Backend]. The zero value is
// usable: no entry limit, files readable by their owner only, values up to
// DefaultMaxValueSize.
type Options struct {
	// Threshold is the most entries the directory holds; 0 means unlimited,
	// as for Flask's FileSystemCache.
	Threshold int
	// Mode is the permission of entry files; 0 means 0600. It must give the
	// owner read access, and may hold permission bits only.
	Mode os.FileMode
	// MaxValueSize is the largest value, in bytes, that Set writes and Get
	// reads; 0 means DefaultMaxValueSize (CACHE_OPTIONS
	// "max_value_size"). An entry file whose header declares a larger value
	// is a miss, read no further than its header.
	MaxValueSize int
	// Logger receives a warning for each corrupt or foreign entry file that
	// is removed; nil means slog.Default().
	Logger *slog.Logger
}

// Backend is Flask's FileSystemCache: one file per entry in a directory,
// shared safely by every goroutine and every process that opens the same
// directory.
//
// An entry lives in a file named after the SHA-256 of its key (the first 32
// hex digits, then ".fcache"), so no key, whatever it contains, names a path
// outside the directory. The file holds a 40-byte header (magic "FCFS",
// format version, the write time and the absolute expiry as Unix
// nanoseconds, 0 meaning never, the value and key lengths, and a CRC-32C of
// the whole file), then the full key, then the value. A file whose magic,
// lengths, checksum or key do not match reads as a miss and is removed:
// truncated or damaged files, and files of a different key or program under
// our name pattern. Files not named like ours (".tmp-*" temporaries, the
// ".fragcache.lock" file, anything else) are never read, counted or removed,
// except temporaries older than a minute, left by a crashed writer, which
// opening, pruning and Clear delete. So, unlike Flask, Clear does not empty
// the directory: it removes our entries only.
//
// Every write goes to a temporary file in the same directory that is then
// renamed over the entry, so readers, in this process or another, see the
// old value or the new one, never part of either; Get takes no lock. Writes
// are not fsynced: after a power loss an entry may be lost or damaged, and
// the length and checksum checks turn damage into a miss. A cache can afford
// that, and fsync costs far more than the whole rest of a Set.
//
// Add and Inc read, then write, so they serialise on a lock: an in-process
// mutex and, where the OS has flock(2) (Linux, the BSDs, macOS, illumos),
// an exclusive flock on the directory's lock file, which also covers other
// processes and other Backend values on the same directory; elsewhere
// the lock covers this process only. Clear and pruning take the same lock. Set and Delete are single renames and
// unlinks; in this process they are ordered with Add and Inc, but a Set or
// Delete from another process can interleave with an Add or Inc here (the
// Set lost to the Inc, a Delete undone by it), as with any unlocked writer.
//
// With a Threshold, a write that creates a file when the directory is full
// first prunes: expired entries go first, then the oldest writes (by the
// write time in the header; Inc keeps it, like Simple keeps an entry's
// place), until a tenth of the threshold (at least one entry) is free, so
// the directory is listed and its headers read once per Threshold/10
// inserts rather than on every insert. Never-expiring entries are not favoured as victims (Flask
// evicts them first). The entry count that triggers pruning is kept in
// process, initialised from the directory when it is opened and re-counted
// at each prune; with several processes writing, each sees only its own
// inserts between prunes, so the limit is approximate.
//
// Files are untrusted: anything under an entry's name costs a Get about a
// header's worth of reading and memory unless it is a valid entry of that
// key. The header is checked before the rest is read: its lengths must add
// up to the file's size, the value must be at most MaxValueSize and the key
// as long as the one asked for, so at most MaxValueSize plus the key's
// length is ever allocated, and only for a file that large. A FIFO, device,
// directory or symbolic link under an entry's name is a miss, never read
// or waited on: the file is opened without following links and without
// blocking, and read only if it is a regular file. Large values are read in
// chunks, checking the context between them.
//
// A directory the process cannot write still opens: Get and Has work (an
// expired or damaged entry that cannot be removed is a miss all the same),
// and writes fail with an error saying the directory is not writable.
//
// Expiry uses the wall clock, since it must mean the same in every process
// and after a restart; an entry is live while now < expiry. Inc keeps the
// entry's expiry (Flask resets it to the default timeout). Get returns a
// fresh slice that the caller may keep.
type Backend struct {
	dir       string
	threshold int
	mode      os.FileMode
	maxValue  int64
	logger    *slog.Logger
	now       func() int64 // Unix nanoseconds; a field so tests can move time

	// rw orders this process's writers: Set and Delete share it, Add, Inc,
	// Clear and pruning hold it exclusively, together with lock.
	rw sync.RWMutex
	// excl is the exclusive slot of lockExclusive: a one-place semaphore,
	// so that waiting for it can give up when the caller's ctx ends.
	excl   chan struct{}
	lock   *dirLock
	closed atomic.Bool
	// count approximates the number of entry files; it is exact after a
	// prune and drifts with other processes' writes.
	count atomic.Int64
}

// The on-disk format.
const (
	fsMagic     = "FCFS"
	fsVersion   = 1
	fsHeaderLen = 40
	fsNameLen   = 32 // hex digits of SHA-256 kept in a file name
	fsSuffix    = ".fcache"
	fsTempGlob  = ".tmp-*"
	fsLockName  = ".fragcache.lock"
	// fsTempMaxAge is how old a temporary file must be before pruning
	// takes it for the debris of a crashed writer rather than a write in
	// progress.
	fsTempMaxAge = time.Minute
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadEntry marks a file under our name pattern that is not a valid entry.
var errBadEntry = errors.New("not a valid cache entry file")

// New opens the cache directory dir, creating it (mode 0700) if
// it does not exist, and counts the entries already there. Invalid options
// give an error wrapping backends.ErrConfig.
func New(dir string, opts Options) (*Backend, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: filesystem.New needs a directory", backends.ErrConfig)
	}
	if opts.Threshold < 0 {
		return nil, fmt.Errorf("%w: filesystem threshold (CACHE_THRESHOLD) %d is negative", backends.ErrConfig, opts.Threshold)
	}
	if opts.MaxValueSize < 0 {
		return nil, fmt.Errorf("%w: filesystem MaxValueSize %d is negative", backends.ErrConfig, opts.MaxValueSize)
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o600
	}
	if mode&^os.ModePerm != 0 || mode&0o400 == 0 {
		return nil, fmt.Errorf("%w: filesystem file mode %#o: want permission bits that include owner read (0400)", backends.ErrConfig, uint32(opts.Mode))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("filesystem: cache directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("filesystem: create cache directory: %w", err)
	}
	lock, err := openDirLock(filepath.Join(abs, fsLockName))
	if err != nil {
		return nil, fmt.Errorf("filesystem: cache directory lock: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Backend{
		dir:       abs,
		threshold: opts.Threshold,
		mode:      mode,
		maxValue:  int64(cmp.Or(opts.MaxValueSize, DefaultMaxValueSize)),
		logger:    logger,
		now:       func() int64 { return time.Now().UnixNano() },
		lock:      lock,
		excl:      make(chan struct{}, 1),
	}
	names, err := c.listEntries()
	if err != nil {
		lock.close()
		return nil, err
	}
	c.count.Store(int64(len(names)))
	return c, nil
}

// fsEntry is one decoded entry file; key and value share the file's buffer.
type fsEntry struct {
	setAt, expires int64
	key, value     []byte
}

func (e *fsEntry) live(now int64) bool { return e.expires == 0 || now < e.expires }

// fileName maps a key to its file name: hex digits and a suffix only, so it
// can never leave the directory.
func fileName(key string) string {
	sum := sha256.Sum256([]byte(key))
	var b [fsNameLen + len(fsSuffix)]byte
	hex.Encode(b[:fsNameLen], sum[:fsNameLen/2])
	copy(b[fsNameLen:], fsSuffix)
	return string(b[:])
}

// isEntryName reports whether name follows our entry file pattern.
func isEntryName(name string) bool {
	if len(name) != fsNameLen+len(fsSuffix) || !strings.HasSuffix(name, fsSuffix) {
		return false
	}
	for i := range fsNameLen {
		if c := name[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (c *Backend) path(key string) string { return filepath.Join(c.dir, fileName(key)) }

// encodeEntry builds a whole entry file in one buffer, so it is written with
// one system call.
func encodeEntry(key string, value []byte, setAt, expires int64) []byte {
	buf := make([]byte, fsHeaderLen+len(key)+len(value))
	copy(buf, fsMagic)
	buf[4] = fsVersion
	binary.BigEndian.PutUint64(buf[8:], uint64(setAt))
	binary.BigEndian.PutUint64(buf[16:], uint64(expires))
	binary.BigEndian.PutUint64(buf[24:], uint64(len(value)))
	binary.BigEndian.PutUint32(buf[32:], uint32(len(key)))
	copy(buf[fsHeaderLen:], key)
	copy(buf[fsHeaderLen+len(key):], value)
	binary.BigEndian.PutUint32(buf[36:], entryCRC(buf))
	return buf
}

// entryCRC covers the whole file except the checksum field itself.
func entryCRC(buf []byte) uint32 {
	return crc32.Update(crc32.Checksum(buf[:36], crcTable), crcTable, buf[fsHeaderLen:])
}

// parseHeader checks the fixed header against the file size and the
// largest value allowed, and returns the key length.
func parseHeader(h []byte, size, maxValue int64) (e fsEntry, keyLen int, err error) {
	if len(h) < fsHeaderLen || string(h[:4]) != fsMagic {
		return e, 0, fmt.Errorf("%w: bad magic or short header", errBadEntry)
	}
	if h[4] != fsVersion {
		return e, 0, fmt.Errorf("%w: format version %d", errBadEntry, h[4])
	}
	e.setAt = int64(binary.BigEndian.Uint64(h[8:]))
	e.expires = int64(binary.BigEndian.Uint64(h[16:]))
	valLen := binary.BigEndian.Uint64(h[24:])
	keyLen = int(binary.BigEndian.Uint32(h[32:]))
	if valLen > math.MaxInt64-fsHeaderLen-uint64(keyLen) || size != fsHeaderLen+int64(keyLen)+int64(valLen) {
		return e, 0, fmt.Errorf("%w: size %d does not match header", errBadEntry, size)
	}
	if valLen > uint64(maxValue) {
		return e, 0, fmt.Errorf("%w: value of %d bytes, over the limit of %d", errBadEntry, valLen, maxValue)
	}
	return e, keyLen, nil
}

// readPart says how much of an entry file to read.
type readPart int

const (
	readHeader readPart = iota // the fixed header, checked against the size
	readKey                    // the header and the start of the key
	readAll                    // everything, checksum verified
)

// readSpec says what readEntry reads and what it accepts.
type readSpec struct {
	part     readPart
	maxValue int64
	// key, for readAll, is the key the entry must hold: a header declaring
	// another length is refused before anything more is read.
	key string
	// keyPrefix, for readKey, is how many bytes of the key to read.
	keyPrefix int
}

const (
	// fsReadAtOnce is the file size up to which readAll reads a file with
	// one system call, header included: no more than this is read or
	// allocated before the header is checked.
	fsReadAtOnce = 64 << 10
	// fsReadChunk is how much is read between two checks of the context.
	fsReadChunk = 1 << 20
)

// readEntry reads the entry file at path. It returns an error matching
// fs.ErrNotExist for a missing file and errBadEntry for a damaged or foreign
// one, never reading more than the header of such a file, and ctx's error
// if it ends while a large value is read.
func readEntry(ctx context.Context, path string, spec readSpec) (fsEntry, error) {
	if err := ctx.Err(); err != nil {
		return fsEntry{}, err
	}
	// fsOpenFlags: no blocking on a FIFO, no following a link.
	f, err := os.OpenFile(path, os.O_RDONLY|fsOpenFlags, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
				return fsEntry{}, fmt.Errorf("%w: a symbolic link", errBadEntry)
			}
		}
		return fsEntry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fsEntry{}, err
	}
	if !st.Mode().IsRegular() {
		return fsEntry{}, fmt.Errorf("%w: not a regular file (%v)", errBadEntry, st.Mode().Type())
	}
	size := st.Size()
	if size < fsHeaderLen {
		return fsEntry{}, fmt.Errorf("%w: short header", errBadEntry)
	}
	if spec.part == readAll && size <= fsReadAtOnce {
		// Small enough to read whole: one read instead of two.
		buf := make([]byte, size)
		if err := readFull(ctx, f, buf); err != nil {
			return fsEntry{}, err
		}
		e, keyLen, err := parseHeader(buf, size, spec.maxValue)
		if err != nil {
			return e, err
		}
		if binary.BigEndian.Uint32(buf[36:]) != entryCRC(buf) {
			return fsEntry{}, fmt.Errorf("%w: checksum mismatch", errBadEntry)
		}
		e.key = buf[fsHeaderLen : fsHeaderLen+keyLen]
		e.value = buf[fsHeaderLen+keyLen:]
		return e, nil
	}
	var h [fsHeaderLen]byte
	if err := readFull(ctx, f, h[:]); err != nil {
		return fsEntry{}, err
	}
	e, keyLen, err := parseHeader(h[:], size, spec.maxValue)
	if err != nil || spec.part == readHeader {
		return e, err
	}
	if spec.part == readKey {
		e.key = make([]byte, min(keyLen, spec.keyPrefix))
		if err := readFull(ctx, f, e.key); err != nil {
			return fsEntry{}, err
		}
		return e, nil
	}
	if keyLen != len(spec.key) {
		return fsEntry{}, fmt.Errorf("%w: holds a key of %d bytes, not this one of %d", errBadEntry, keyLen, len(spec.key))
	}
	// size matches the header, whose value length is within maxValue.
	rest := make([]byte, size-fsHeaderLen)
	if err := readFull(ctx, f, rest); err != nil {
		return fsEntry{}, err
	}
	crc := crc32.Update(crc32.Checksum(h[:36], crcTable), crcTable, rest)
	if binary.BigEndian.Uint32(h[36:]) != crc {
		return fsEntry{}, fmt.Errorf("%w: checksum mismatch", errBadEntry)
	}
	e.key = rest[:keyLen]
	e.value = rest[keyLen:]
	return e, nil
}

// readFull fills buf from f, in chunks between which it checks ctx. A file
// shorter than its size said is a bad entry.
func readFull(ctx context.Context, f *os.File, buf []byte) error {
	return readFullHook(ctx, f, buf, nil)
}

// readFullHook is readFull calling chunkRead, if not nil, after each chunk;
// tests use it.
func readFullHook(ctx context.Context, f *os.File, buf []byte, chunkRead func()) error {
	for len(buf) > 0 {
		n := min(len(buf), fsReadChunk)
		if _, err := io.ReadFull(f, buf[:n]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: file shrank while read", errBadEntry)
			}
			return err
		}
		buf = buf[n:]
		if chunkRead != nil {
			chunkRead()
		}
		if len(buf) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// lookupState classifies what load found.
type lookupState int

const (
	entryMissing lookupState = iota
	entryLive
	entryExpired
	entryBad // damaged, or a different key under our name
)

// load reads and verifies key's entry file.
func (c *Backend) load(ctx context.Context, key, path string) (fsEntry, lookupState, error) {
	e, err := readEntry(ctx, path, readSpec{part: readAll, maxValue: c.maxValue, key: key})
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return e, entryMissing, err
	case errors.Is(err, fs.ErrNotExist):
		return e, entryMissing, nil
	case errors.Is(err, errBadEntry):
		return e, entryBad, nil
	case err != nil:
		return e, entryMissing, fmt.Errorf("filesystem: read cache file: %w", err)
	case string(e.key) != key:
		return e, entryBad, nil
	case !e.live(c.now()):
		return e, entryExpired, nil
	}
	return e, entryLive, nil
}

// get is Get without the closed check.
func (c *Backend) get(ctx context.Context, key string) ([]byte, bool, error) {
	path := c.path(key)
	e, state, err := c.load(ctx, key, path)
	if err != nil {
		return nil, false, err
	}
	if state == entryLive {
		return e.value, true, nil
	}
	if state != entryMissing {
		// Removing the file is housekeeping: where it fails (a directory
		// this process cannot write, say) the entry is a miss all the same,
		// and the failure, which would repeat on every Get, is logged at
		// debug level only.
		if err := c.discard(ctx, key, path); err != nil {
			c.logger.Debug("fragcache: cannot remove an expired or damaged cache file", "path", path, "err", err)
		}
	}
	return nil, false, nil
}

// discard removes key's file after a lock-free read found it expired or
// bad. It looks again under the lock, because a writer may have replaced
// the file since.
func (c *Backend) discard(ctx context.Context, key, path string) error {
	if err := c.lockExclusive(ctx); err != nil {
		return err
	}
	defer c.unlockExclusive()
	_, state, err := c.load(ctx, key, path)
	if err != nil || (state != entryExpired && state != entryBad) {
		return err
	}
	return c.remove(path, state == entryBad)
}

// remove deletes an entry file; bad says it was damaged or foreign, which
// is worth a warning.
func (c *Backend) remove(path string, bad bool) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("filesystem: remove cache file: %w", err)
	}
	c.count.Add(-1)
	if bad {
		c.logger.Warn("fragcache: removed a corrupt or foreign file from the cache directory", "path", path)
	}
	return nil
}

// Get reads key's file and returns the value in a fresh slice the caller
// owns.
func (c *Backend) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if c.closed.Load() {
		return nil, false, backends.ErrClosed
	}
	return c.get(ctx, key)
}

// GetMany reads each key's file in turn; nil marks a miss.
func (c *Backend) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if c.closed.Load() {
		return nil, backends.ErrClosed
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, _, err := c.get(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// Has reports whether key holds a live, intact entry.
func (c *Backend) Has(ctx context.Context, key string) (bool, error) {
	if c.closed.Load() {
		return false, backends.ErrClosed
	}
	_, found, err := c.get(ctx, key)
	return found, err
}

// Set writes value to a temporary file and renames it over key's file.
func (c *Backend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if c.closed.Load() {
		return backends.ErrClosed
	}
	return c.set(ctx, key, value, ttl)
}

func (c *Backend) set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.checkSize(value); err != nil {
		return err
	}
	now := c.now()
	tmp, err := c.writeTemp(encodeEntry(key, value, now, expiresAt(now, ttl)))
	if err != nil {
		return err
	}
	path := c.path(key)
	if c.full() && !exists(path) {
		if err := c.prune(ctx); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	c.rw.RLock()
	defer c.rw.RUnlock()
	if c.closed.Load() {
		os.Remove(tmp)
		return backends.ErrClosed
	}
	return c.install(tmp, path)
}

// SetMany sets every item, reporting failures as *backends.KeyError.
func (c *Backend) SetMany(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if c.closed.Load() {
		return backends.ErrClosed
	}
	var errs []error
	for k, v := range items {
		if err := c.set(ctx, k, v, ttl); err != nil {
			if errors.Is(err, backends.ErrClosed) {
				return err
			}
			errs = append(errs, &backends.KeyError{Key: k, Err: err})
		}
	}
	return errors.Join(errs...)
}

// Add writes value unless key holds a live entry, holding the directory
// lock so that no other Add or Inc interleaves.
func (c *Backend) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := c.checkSize(value); err != nil {
		return false, err
	}
	if err := c.lockExclusive(ctx); err != nil {
		return false, err
	}
	defer c.unlockExclusive()
	path := c.path(key)
	_, state, err := c.load(ctx, key, path)
	if err != nil || state == entryLive {
		return false, err
	}
	now := c.now()
	if err := c.writeLocked(path, state, encodeEntry(key, value, now, expiresAt(now, ttl))); err != nil {
		return false, err
	}
	return true, nil
}

// Inc adds delta to the integer under key while holding the directory
// lock, keeping the entry's expiry and write time.
func (c *Backend) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := c.lockExclusive(ctx); err != nil {
		return 0, err
	}
	defer c.unlockExclusive()
	path := c.path(key)
	e, state, err := c.load(ctx, key, path)
	if err != nil {
		return 0, err
	}
	n := delta
	if state == entryLive {
		var err error
		if n, _, err = backends.AddInt(e.value, delta); err != nil {
			return 0, err
		}
	} else {
		e.setAt = c.now()
		e.expires = expiresAt(e.setAt, ttl)
	}
	if err := c.writeLocked(path, state, encodeEntry(key, backends.FormatInt(n), e.setAt, e.expires)); err != nil {
		return 0, err
	}
	return n, nil
}

// writeLocked writes an entry file while the exclusive lock is held,
// pruning first if it creates a file in a full directory.
func (c *Backend) writeLocked(path string, state lookupState, data []byte) error {
	if state == entryBad {
		// A foreign file goes first: a rename cannot replace a directory.
		if err := c.remove(path, true); err != nil {
			return err
		}
	}
	creates := state == entryMissing || state == entryBad
	if creates && c.full() {
		if err := c.pruneLocked(); err != nil {
			return err
		}
	}
	tmp, err := c.writeTemp(data)
	if err != nil {
		return err
	}
	return c.install(tmp, path)
}

// Delete removes key's file; deleted reports whether it held a live entry.
func (c *Backend) Delete(ctx context.Context, key string) (bool, error) {
	if c.closed.Load() {
		return false, backends.ErrClosed
	}
	c.rw.RLock()
	defer c.rw.RUnlock()
	if c.closed.Load() {
		return false, backends.ErrClosed
	}
	return c.delete(ctx, key)
}

func (c *Backend) delete(ctx context.Context, key string) (bool, error) {
	path := c.path(key)
	_, state, err := c.load(ctx, key, path)
	if err != nil || state == entryMissing {
		return false, err
	}
	if err := c.remove(path, state == entryBad); err != nil {
		return false, err
	}
	return state == entryLive, nil
}

// DeleteMany deletes every key, going on past missing ones and failures.
func (c *Backend) DeleteMany(ctx context.Context, keys []string) (int, error) {
	if c.closed.Load() {
		return 0, backends.ErrClosed
	}
	c.rw.RLock()
	defer c.rw.RUnlock()
	if c.closed.Load() {
		return 0, backends.ErrClosed
	}
	n := 0
	var errs []error
	for _, k := range keys {
		deleted, err := c.delete(ctx, k)
		if err != nil {
			errs = append(errs, &backends.KeyError{Key: k, Err: err})
		}
		if deleted {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Clear removes every entry whose key starts with prefix; with an empty
// prefix, every file named like an entry (damaged ones included). Other
// files in the directory are left alone, apart from stale temporaries.
func (c *Backend) Clear(ctx context.Context, prefix string) error {
	if err := c.lockExclusive(ctx); err != nil {
		return err
	}
	defer c.unlockExclusive()
	names, err := c.listEntries()
	if err != nil {
		return err
	}
	kept := 0
	var errs []error
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(c.dir, name)
		if prefix != "" {
			// A damaged file goes with any prefix; one we cannot read
			// may hold any key, so it stays and its error is reported.
			e, err := readEntry(ctx, path, readSpec{part: readKey, maxValue: c.maxValue, keyPrefix: len(prefix)})
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue
			case errors.Is(err, errBadEntry):
			case err != nil:
				errs = append(errs, err)
				kept++
				continue
			case !strings.HasPrefix(string(e.key), prefix):
				kept++
				continue
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			kept++
		}
	}
	c.count.Store(int64(kept))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("filesystem: clear cache directory: %w", err)
	}
	return nil
}

// Close releases the directory lock; later operations return backends.ErrClosed.
// Entries stay on disk.
func (c *Backend) Close() error {
	c.rw.Lock()
	defer c.rw.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	return c.lock.close()
}

// lockExclusive takes the in-process and the cross-process lock, failing
// once the cache is closed, and giving up with ctx's error when ctx ends
// first: another process that holds the directory lock and stops (SIGSTOP,
// a hung disk) costs a caller its deadline, not forever. The order is
// fixed: the exclusive slot (which orders this Backend's Add, Inc, Clear
// and pruning), then the directory lock, then the write lock that orders
// them with this process's Set and Delete, so that Set and Delete go on
// while another process holds the directory lock.
func (c *Backend) lockExclusive(ctx context.Context) error {
	if c.closed.Load() {
		return backends.ErrClosed
	}
	select {
	case c.excl <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.lock.lock(ctx); err != nil {
		<-c.excl
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return err
		}
		return fmt.Errorf("filesystem: lock cache directory: %w", err)
	}
	c.rw.Lock()
	if c.closed.Load() {
		c.rw.Unlock()
		c.lock.unlock()
		<-c.excl
		return backends.ErrClosed
	}
	return nil
}

func (c *Backend) unlockExclusive() {
	c.rw.Unlock()
	c.lock.unlock()
	<-c.excl
}

// writeTemp writes data to a new temporary file in the directory and
// returns its path.
func (c *Backend) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(c.dir, fsTempGlob)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || isReadOnlyFS(err) {
			return "", fmt.Errorf("filesystem: cache directory %s is not writable: %w", c.dir, err)
		}
		return "", fmt.Errorf("filesystem: create cache file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		// CreateTemp's 0600 is subject to the umask; Chmod is not.
		err = f.Chmod(c.mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("filesystem: write cache file: %w", err)
	}
	return f.Name(), nil
}

// checkSize refuses a value larger than MaxValueSize, which Get would not
// read back.
func (c *Backend) checkSize(value []byte) error {
	if int64(len(value)) > c.maxValue {
		return fmt.Errorf("%w: %d bytes, over the limit of %d (CACHE_OPTIONS max_value_size)", backends.ErrValueTooLarge, len(value), c.maxValue)
	}
	return nil
}

// install renames a written temporary file over path and counts a file
// that did not exist before.
func (c *Backend) install(tmp, path string) error {
	existed := c.threshold > 0 && exists(path)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("filesystem: install cache file: %w", err)
	}
	if c.threshold > 0 && !existed {
		c.count.Add(1)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// full reports whether, by the in-process count, a new file needs a prune.
func (c *Backend) full() bool {
	return c.threshold > 0 && c.count.Load() >= int64(c.threshold)
}

func (c *Backend) prune(ctx context.Context) error {
	if err := c.lockExclusive(ctx); err != nil {
		return err
	}
	defer c.unlockExclusive()
	return c.pruneLocked()
}

// pruneLocked makes room for one new file: it re-counts the directory,
// since other processes change it, removes expired and damaged entries,
// and then, if still full, the oldest writes until a tenth of the
// threshold is free.
func (c *Backend) pruneLocked() error {
	names, err := c.listEntries()
	if err != nil {
		return err
	}
	type candidate struct {
		setAt int64
		name  string
	}
	now := c.now()
	live := make([]candidate, 0, len(names))
	for _, name := range names {
		path := filepath.Join(c.dir, name)
		e, err := readEntry(context.Background(), path, readSpec{part: readHeader, maxValue: c.maxValue})
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case errors.Is(err, errBadEntry) || (err == nil && !e.live(now)):
			if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return fmt.Errorf("filesystem: prune cache directory: %w", rerr)
			}
			if err != nil {
				c.logger.Warn("fragcache: removed a corrupt or foreign file from the cache directory", "path", path, "reason", err)
			}
		case err != nil:
			return fmt.Errorf("filesystem: prune cache directory: %w", err)
		default:
			live = append(live, candidate{e.setAt, name})
		}
	}
	keep := max(c.threshold-1-c.threshold/10, 0)
	if len(live) > keep {
		slices.SortFunc(live, func(a, b candidate) int {
			if a.setAt != b.setAt {
				return compareInt64(a.setAt, b.setAt)
			}
			return strings.Compare(a.name, b.name)
		})
		for _, v := range live[:len(live)-keep] {
			if err := os.Remove(filepath.Join(c.dir, v.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("filesystem: prune cache directory: %w", err)
			}
		}
		live = live[len(live)-keep:]
	}
	c.count.Store(int64(len(live)))
	return nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// listEntries returns the names of the entry files in the directory. It
// also deletes temporary files old enough to be a crashed writer's.
func (c *Backend) listEntries() ([]string, error) {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("filesystem: list cache directory: %w", err)
	}
	names := make([]string, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if isEntryName(name) {
			names = append(names, name)
			continue
		}
		if !strings.HasPrefix(name, ".tmp-") {
			continue
		}
		if info, err := de.Info(); err == nil && time.Since(info.ModTime()) > fsTempMaxAge {
			os.Remove(filepath.Join(c.dir, name))
		}
	}
	return names, nil
}

// expiresAt turns a ttl into an absolute expiry, saturating rather than
// wrapping for TTLs beyond the year 2262.
func expiresAt(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	if int64(ttl) > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(ttl)
}
