// Package namespace is what the memcached and uWSGI backends share to clear
// a key prefix on a server that cannot list keys: a set of declared
// namespaces (key prefixes), each with a generation kept in the server
// itself, and a local copy of each generation that is trusted for a refresh
// interval.
//
// How a generation is kept and applied is the backend's: memcached keeps a
// counter and puts it into every key under the namespace, so Clear makes
// the old keys unreachable; uWSGI keeps a random token and stamps it into
// every value, so Clear makes the old values dead. What is common, and
// lives here once, is which namespaces a key is in, which namespaces a
// Clear reaches, how long a generation read from the server is trusted
// (another process's Clear is seen within that time), and the error for a
// Clear of a prefix that was never declared.
//
// It imports internal/cacheopt and the standard library.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fragcache/fragcache/internal/cacheopt"
)

// DefaultRefresh is how long a generation read from the server is trusted
// when the backend's NamespaceRefresh is 0.
const DefaultRefresh = time.Second

// Namespace is one declared key prefix and the local copy of its
// generation.
type Namespace struct {
	// Prefix is the declared key prefix.
	Prefix string
	cur    atomic.Pointer[generation]
}

type generation struct {
	value string
	read  time.Time
}

// Set is a backend's declared namespaces. It is safe for concurrent use;
// its namespaces cannot change after New.
type Set struct {
	list    []*Namespace // shortest first, so nested ones come in order
	refresh time.Duration
	now     func() time.Time
}

// New returns the namespaces prefixes declares, duplicates dropped.
// refresh is how long a generation read from the server is trusted: 0
// means DefaultRefresh, a negative value reads it on every use. check, if
// not nil, vets each prefix first, and its error is returned as it is;
// the empty prefix is refused in any case, since Clear("") empties the
// whole store.
func New(prefixes []string, refresh time.Duration, check func(prefix string) error) (*Set, error) {
	if refresh == 0 {
		refresh = DefaultRefresh
	}
	s := &Set{refresh: refresh, now: time.Now}
	for _, p := range prefixes {
		if check != nil {
			if err := check(p); err != nil {
				return nil, err
			}
		}
		if p == "" {
			return nil, errors.New("empty namespace: Clear(\"\") empties the whole store without one")
		}
		if s.Lookup(p) == nil {
			s.list = append(s.list, &Namespace{Prefix: p})
		}
	}
	slices.SortStableFunc(s.list, func(a, b *Namespace) int { return len(a.Prefix) - len(b.Prefix) })
	return s, nil
}

// SetClock replaces the clock that dates generations; tests move time
// with it.
func (s *Set) SetClock(now func() time.Time) { s.now = now }

// Prefixes returns the declared prefixes, shortest first.
func (s *Set) Prefixes() []string {
	out := make([]string, len(s.list))
	for i, ns := range s.list {
		out[i] = ns.Prefix
	}
	return out
}

// Len returns how many namespaces are declared.
func (s *Set) Len() int { return len(s.list) }

// Containing calls fn for every namespace key is in, shortest first, and
// stops at fn's first error.
func (s *Set) Containing(key string, fn func(ns *Namespace) error) error {
	for _, ns := range s.list {
		if strings.HasPrefix(key, ns.Prefix) {
			if err := fn(ns); err != nil {
				return err
			}
		}
	}
	return nil
}

// Longest returns the longest namespace key is in, or nil.
func (s *Set) Longest(key string) *Namespace {
	for i := len(s.list) - 1; i >= 0; i-- {
		if strings.HasPrefix(key, s.list[i].Prefix) {
			return s.list[i]
		}
	}
	return nil
}

// Lookup returns the namespace declared as exactly prefix, or nil.
func (s *Set) Lookup(prefix string) *Namespace {
	for _, ns := range s.list {
		if ns.Prefix == prefix {
			return ns
		}
	}
	return nil
}

// Within returns the namespaces whose prefix starts with prefix: the ones
// a Clear of prefix must reach, prefix's own included.
func (s *Set) Within(prefix string) []*Namespace {
	var out []*Namespace
	for _, ns := range s.list {
		if strings.HasPrefix(ns.Prefix, prefix) {
			out = append(out, ns)
		}
	}
	return out
}

// Generation returns ns's generation: the local copy while it is fresh,
// otherwise what read returns, which is remembered.
func (s *Set) Generation(ctx context.Context, ns *Namespace, read func(context.Context) (string, error)) (string, error) {
	if s.refresh > 0 {
		if g := ns.cur.Load(); g != nil && s.now().Sub(g.read) < s.refresh {
			return g.value, nil
		}
	}
	v, err := read(ctx)
	if err != nil {
		return "", err
	}
	s.Remember(ns, v)
	return v, nil
}

// Remember records value as ns's generation, read now.
func (s *Set) Remember(ns *Namespace, value string) {
	ns.cur.Store(&generation{value: value, read: s.now()})
}

// ForgetAll drops every local copy, after the server was emptied.
func (s *Set) ForgetAll() {
	for _, ns := range s.list {
		ns.cur.Store(nil)
	}
}

// Undeclared is the error of a Clear of a prefix that is not a declared
// namespace: it wraps errors.ErrUnsupported and says how to declare one.
// server names the store ("memcached 127.0.0.1:11211"), what the store
// that cannot list keys ("memcached"), and options where namespaces are
// declared in the Go API ("memcached.Options.Namespaces").
func (s *Set) Undeclared(server, what, options, prefix string) error {
	return fmt.Errorf("%w: %s: %s cannot list keys, so Clear(%q) needs %q declared as a namespace (%s, CACHE_OPTIONS namespaces, or CACHE_KEY_PREFIX); declared: %q",
		errors.ErrUnsupported, server, what, prefix, prefix, options, s.Prefixes())
}

// ParseRefresh reads CACHE_OPTIONS namespace_refresh, a duration as
// cacheopt reads durations, into a Set's refresh: there, 0 reads the
// generation on every use (a negative refresh), since the option's 0 means
// "trust it for no time at all", not "the default".
func ParseRefresh(v any) (time.Duration, error) {
	d, err := cacheopt.ParseDuration(v)
	if err == nil && d == 0 {
		d = -1
	}
	return d, err
}
