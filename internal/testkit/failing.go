package testkit

import (
	"context"
	"errors"
	"time"

	"github.com/fragcache/fragcache/backends"
)

// ErrDown is what every method of Failing returns.
var ErrDown = errors.New("backend down")

// Failing is a backends.Backend that cannot be reached: every call fails
// with ErrDown.
type Failing struct{}

var _ backends.Backend = Failing{}

// Get fails.
func (Failing) Get(context.Context, string) ([]byte, bool, error) { return nil, false, ErrDown }

// GetMany fails.
func (Failing) GetMany(context.Context, []string) ([][]byte, error) { return nil, ErrDown }

// Set fails.
func (Failing) Set(context.Context, string, []byte, time.Duration) error { return ErrDown }

// SetMany fails.
func (Failing) SetMany(context.Context, map[string][]byte, time.Duration) error { return ErrDown }

// Add fails.
func (Failing) Add(context.Context, string, []byte, time.Duration) (bool, error) {
	return false, ErrDown
}

// Delete fails.
func (Failing) Delete(context.Context, string) (bool, error) { return false, ErrDown }

// DeleteMany fails.
func (Failing) DeleteMany(context.Context, []string) (int, error) { return 0, ErrDown }

// Has fails.
func (Failing) Has(context.Context, string) (bool, error) { return false, ErrDown }

// Inc fails.
func (Failing) Inc(context.Context, string, int64, time.Duration) (int64, error) {
	return 0, ErrDown
}

// Clear fails.
func (Failing) Clear(context.Context, string) error { return ErrDown }

// Close fails.
func (Failing) Close() error { return ErrDown }
