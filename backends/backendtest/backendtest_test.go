package backendtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/backends/backendtest"
)

// A mutant is Simple with one rule of the contract broken. Each must fail
// the subtest named for that rule, which shows the suite can fail.
var mutants = map[string]struct {
	wrap func(backends.Backend) backends.Backend
	// failing is the subtest that must fail, as "Group/rule name".
	failing string
}{
	"DeleteManyStops": {
		func(b backends.Backend) backends.Backend { return deleteManyStops{b} },
		"DeleteMany/DeleteMany continues past missing keys and counts the entries it removed",
	},
	"IncResetsTTL": {
		func(b backends.Backend) backends.Backend { return readWriteInc{b} },
		"Timeouts/Inc keeps the entry's TTL",
	},
	"ClearIgnoresPrefix": {
		func(b backends.Backend) backends.Backend { return clearIgnoresPrefix{b} },
		"KeyPrefix/Clear under one prefix leaves the other prefix's and unprefixed keys",
	},
	"AddOverwrites": {
		func(b backends.Backend) backends.Backend { return addOverwrites{b} },
		"Add/Add does not overwrite a live entry and reports false",
	},
	"EmptyIsMiss": {
		func(b backends.Backend) backends.Backend { return emptyIsMiss{b} },
		"Backend/stored bytes come back verbatim: empty",
	},
	"TruncatesKeys": {
		func(b backends.Backend) backends.Backend { return truncatesKeys{b} },
		`Keys/key prefix ""/a 1500-byte key ending in a keeps its own value through every operation`,
	},
	"IgnoresTTL": {
		func(b backends.Backend) backends.Backend { return ignoresTTL{b} },
		"Timeouts/Set with a timeout expires after it",
	},
	"RacyInc": {
		func(b backends.Backend) backends.Backend { return readWriteInc{b} },
		"Concurrency/concurrent Incs of one key lose no update",
	},
}

const mutantEnv = "BACKENDTEST_MUTANT"

// TestMutant runs the suite against the mutant named in $BACKENDTEST_MUTANT;
// TestSuiteCatchesBrokenBackends starts it in a child process, since a
// failing suite must not fail this test binary.
func TestMutant(t *testing.T) {
	m, ok := mutants[os.Getenv(mutantEnv)]
	if !ok {
		t.Skip("run by TestSuiteCatchesBrokenBackends")
	}
	backendtest.Run(t, func(*testing.T) backends.Backend {
		return m.wrap(backends.NewSimple(0))
	}, backendtest.Options{AtomicInc: true, AtomicAdd: true})
}

func TestSuiteCatchesBrokenBackends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child test process per mutant")
	}
	for name, m := range mutants {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			group, _, _ := strings.Cut(m.failing, "/")
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMutant$/^"+group+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), mutantEnv+"="+name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "the suite passed a backend whose %s (err %v); output:\n%s", name, err, out)
			want := "--- FAIL: TestMutant/" + strings.ReplaceAll(m.failing, " ", "_") + " "
			assert.Contains(t, string(out), want, "the expected subtest did not fail")
		})
	}
}

func TestRunRejectsNegativeTTLResolution(t *testing.T) {
	if os.Getenv(mutantEnv) == "negative resolution" {
		backendtest.Run(t, func(*testing.T) backends.Backend { return backends.NewSimple(0) },
			backendtest.Options{TTLResolution: -time.Second})
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRunRejectsNegativeTTLResolution$", "-test.count=1")
	cmd.Env = append(os.Environ(), mutantEnv+"=negative resolution")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "Run accepted a negative TTLResolution; output:\n%s", out)
	assert.Contains(t, string(out), "TTLResolution -1s is negative")
}

type deleteManyStops struct{ backends.Backend }

// DeleteMany stops at the first missing key, as Flask-Caching 2.0.2 does.
func (b deleteManyStops) DeleteMany(ctx context.Context, keys []string) (int, error) {
	n := 0
	for _, k := range keys {
		deleted, err := b.Delete(ctx, k)
		if err != nil || !deleted {
			return n, err
		}
		n++
	}
	return n, nil
}

// readWriteInc does Inc as a read then a write with the given ttl, as
// Flask's generic inc does: it resets the TTL and, without a lock, loses
// updates.
type readWriteInc struct{ backends.Backend }

func (b readWriteInc) Inc(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	v, found, err := b.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	var n int64
	if found {
		if n, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return 0, fmt.Errorf("%w: %w", backends.ErrNotInteger, err)
		}
	}
	time.Sleep(time.Microsecond) // widen the race window
	n += delta
	return n, b.Set(ctx, key, strconv.AppendInt(nil, n, 10), ttl)
}

type clearIgnoresPrefix struct{ backends.Backend }

func (b clearIgnoresPrefix) Clear(ctx context.Context, _ string) error {
	return b.Backend.Clear(ctx, "")
}

type addOverwrites struct{ backends.Backend }

func (b addOverwrites) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return true, b.Set(ctx, key, value, ttl)
}

// emptyIsMiss treats an empty value as a miss, as a backend that signals
// misses with empty slices would.
type emptyIsMiss struct{ backends.Backend }

func (b emptyIsMiss) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, found, err := b.Backend.Get(ctx, key)
	return v, found && len(v) > 0, err
}

// truncatesKeys cuts keys to memcached's 250 bytes.
type truncatesKeys struct{ backends.Backend }

func cut(k string) string { return k[:min(len(k), 250)] }

func (b truncatesKeys) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return b.Backend.Get(ctx, cut(key))
}

func (b truncatesKeys) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return b.Backend.Set(ctx, cut(key), value, ttl)
}

type ignoresTTL struct{ backends.Backend }

func (b ignoresTTL) Set(ctx context.Context, key string, value []byte, _ time.Duration) error {
	return b.Backend.Set(ctx, key, value, backends.NoExpiry)
}
