package backends

import (
	"context"
	"time"
)

// Null is Flask's NullCache: it stores nothing, so every Get misses. Its
// return values follow Flask-Caching's (Add and Delete report success, Inc
// returns delta). Use it to switch caching off without changing code.
type Null struct{}

// NewNull returns a Null backend.
func NewNull() Null { return Null{} }

// Get always misses.
func (Null) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }

// GetMany misses every key.
func (Null) GetMany(_ context.Context, keys []string) ([][]byte, error) {
	return make([][]byte, len(keys)), nil
}

// Set discards the value.
func (Null) Set(context.Context, string, []byte, time.Duration) error { return nil }

// SetMany discards the values.
func (Null) SetMany(context.Context, map[string][]byte, time.Duration) error { return nil }

// Add discards the value and reports true, as Flask's NullCache does.
func (Null) Add(context.Context, string, []byte, time.Duration) (bool, error) { return true, nil }

// Delete reports true, as Flask's NullCache does.
func (Null) Delete(context.Context, string) (bool, error) { return true, nil }

// DeleteMany reports every key deleted, as Flask's NullCache does.
func (Null) DeleteMany(_ context.Context, keys []string) (int, error) { return len(keys), nil }

// Has always reports false.
func (Null) Has(context.Context, string) (bool, error) { return false, nil }

// Inc returns delta, as if the missing key started from 0.
func (Null) Inc(_ context.Context, _ string, delta int64, _ time.Duration) (int64, error) {
	return delta, nil
}

// Clear does nothing.
func (Null) Clear(context.Context, string) error { return nil }

// Close does nothing.
func (Null) Close() error { return nil }
