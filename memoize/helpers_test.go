package memoize

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/internal/testkit"
)

var errBroken = errors.New("backend is down")

// broken fails every operation.
type broken struct{ backends.Backend }

func (broken) Get(context.Context, string) ([]byte, bool, error)   { return nil, false, errBroken }
func (broken) GetMany(context.Context, []string) ([][]byte, error) { return nil, errBroken }
func (broken) Set(context.Context, string, []byte, time.Duration) error {
	return errBroken
}
func (broken) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, errBroken
}
func (broken) Delete(context.Context, string) (bool, error) { return false, errBroken }

// failSets fails writes of entries (not of version keys) only.
type failSets struct{ backends.Backend }

func (failSets) Set(context.Context, string, []byte, time.Duration) error { return errBroken }

// counted returns a function of one int that counts its runs and returns
// "r<arg>".
func counted() (func(context.Context, int) (string, error), *atomic.Int64) {
	var n atomic.Int64
	return func(_ context.Context, a int) (string, error) {
		n.Add(1)
		return fmt.Sprintf("r%d", a), nil
	}, &n
}

type newCache = testkit.NewCache

func forEachCache(t *testing.T, test func(t *testing.T, open newCache)) {
	testkit.ForEachCache(t, "memoize", test)
}

var record = testkit.Record

// pollUntil polls cond every millisecond for up to testkit.Deadline; it is
// for goroutines other than the test's, which must not call t.Fatal.
func pollUntil(cond func() bool) bool {
	stop := time.Now().Add(testkit.Deadline)
	for !cond() {
		if time.Now().After(stop) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
