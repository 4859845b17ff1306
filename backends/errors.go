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
	// registered under: an unknown name, or one of Flask's whose package the
	// program does not import (the error names the import to add).
	ErrUnknownBackend = errors.New("backends: unknown cache type")
	// ErrConfig is wrapped by every configuration error: an unknown CACHE_*
	// key, a value of the wrong type, or a key the chosen backend needs.
	ErrConfig = errors.New("backends: invalid configuration")
	// ErrDecode is wrapped when a stored value cannot be decoded into the
	// destination (wrong type, corrupt bytes).
	ErrDecode = errors.New("backends: cannot decode value")
	// ErrClosed is returned by operations on a backend after Close.
	ErrClosed = errors.New("backends: cache is closed")
	// ErrUnavailable is wrapped by a backend's errors that say the backend
	// cannot serve at all, beyond what net.Error, context.DeadlineExceeded
	// and io.EOF already say: a reply that does not follow the protocol, a
	// server reporting it cannot serve. A circuit breaker ([Breaker])
	// counts these as failures; other errors (a miss, a refused value, a
	// wrong password) are answers, and count as successes.
	ErrUnavailable = errors.New("backends: backend unavailable")
	// ErrPoolTimeout is wrapped by the error of an operation that waited
	// for a free connection, every one of the backend's capped connections
	// being busy, longer than its context or the backend's pool timeout
	// allowed. It wraps ErrUnavailable.
	ErrPoolTimeout = fmt.Errorf("%w: timed out waiting for a free connection", ErrUnavailable)
	// ErrValueTooLarge is wrapped by the error of a write whose value is
	// larger than the backend's max_value_size (or the server's own item
	// size): the value is refused, never stored in part.
	ErrValueTooLarge = errors.New("backends: value too large")
	// ErrAuth is wrapped by the errors of a networked backend whose server
	// refused its credentials, or wanted some it was not given.
	ErrAuth = errors.New("backends: authentication failed")
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
