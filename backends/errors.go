package backends

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrInvalidTimeout is returned for a negative timeout, or for more than
	// one timeout passed to a single call.
	ErrInvalidTimeout = errors.New("backends: invalid timeout")
	// ErrNotInteger is returned by Inc and Dec when the stored value is not a
	// decimal integer, or when the result would overflow int64.
	ErrNotInteger = errors.New("backends: value is not an integer or out of range")
	// ErrUnknownBackend is returned by Open for a CACHE_TYPE that no factory is
	// registered under.
	ErrUnknownBackend = errors.New("backends: unknown cache type")
	// ErrNotImplemented is returned by Open for a built-in backend name whose
	// implementation has not landed in this version of fragcache.
	ErrNotImplemented = errors.New("backends: backend not implemented yet")
	// ErrConfig is wrapped by every configuration error: an unknown CACHE_*
	// key, a value of the wrong type, or a key the chosen backend needs.
	ErrConfig = errors.New("backends: invalid configuration")
	// ErrDecode is wrapped when a stored value cannot be decoded into the
	// destination (wrong type, corrupt bytes).
	ErrDecode = errors.New("backends: cannot decode value")
	// ErrClosed is returned by operations on a backend after Close.
	ErrClosed = errors.New("backends: cache is closed")
)

// KeyError reports the failure of one key in a many-key operation, so that
// one key's trouble never hides what happened to the others. SetMany and
// DeleteMany return an errors.Join of KeyErrors.
type KeyError struct {
	Key string // the key as the caller gave it, without the cache's prefix
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %v", e.Key, e.Err) }

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }
