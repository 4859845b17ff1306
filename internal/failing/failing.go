// Package failing is a cache backend that cannot be reached: every call
// fails with ErrDown. Tests of fail-open and strict error handling in the
// fragment core and the engine packages share it.
package failing

import (
	"context"
	"errors"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// ErrDown is what every method of Backend returns.
var ErrDown = errors.New("backend down")

// Backend is a backends.Backend whose every call fails with ErrDown.
type Backend struct{}

var _ backends.Backend = Backend{}

// Get fails.
func (Backend) Get(context.Context, string) ([]byte, bool, error) { return nil, false, ErrDown }

// GetMany fails.
func (Backend) GetMany(context.Context, []string) ([][]byte, error) { return nil, ErrDown }

// Set fails.
func (Backend) Set(context.Context, string, []byte, time.Duration) error { return ErrDown }

// SetMany fails.
func (Backend) SetMany(context.Context, map[string][]byte, time.Duration) error { return ErrDown }

// Add fails.
func (Backend) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, ErrDown
}

// Delete fails.
func (Backend) Delete(context.Context, string) (bool, error) { return false, ErrDown }

// DeleteMany fails.
func (Backend) DeleteMany(context.Context, []string) (int, error) { return 0, ErrDown }

// Has fails.
func (Backend) Has(context.Context, string) (bool, error) { return false, ErrDown }

// Inc fails.
func (Backend) Inc(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, ErrDown
}

// Clear fails.
func (Backend) Clear(context.Context, string) error { return ErrDown }

// Close fails.
func (Backend) Close() error { return ErrDown }
