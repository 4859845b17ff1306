// Package uwsgi is Flask-Caching's UWSGICache for fragcache: a
// [backends.Backend] that talks to a uWSGI server's cache over the uwsgi
// protocol from any process, not only from inside uWSGI as Flask's does
// (see [Backend]).
//
// Importing it registers the CACHE_TYPE "UWSGICache" (and Flask's old
// "uwsgi") with [backends.Open], which reads CACHE_UWSGI_NAME ("cache" or
// "cache@host:port") and CACHE_OPTIONS (snake_case, unknown keys
// rejected). [New] builds one directly:
//
//	u, err := uwsgi.New(uwsgi.Options{Addr: "127.0.0.1:3031", Cache: "fragments"})
//	cache := backends.New(u, backends.CacheOptions{KeyPrefix: "myapp_"})
//
// max_value_size (64 KiB by default, uWSGI's default item size) means what
// it means for every fragcache backend: the largest value stored, refused on
// write with an error wrapping backends.ErrValueTooLarge, and the bound on
// what a read allocates.
//
// It imports backends, fragcache's internal uwsgi protocol, namespace and
// option packages, golang.org/x/sync, and the standard library.
package uwsgi

import "github.com/fragcache/fragcache/backends"

// Every networked backend answers readiness probes.
var _ backends.Pinger = (*Backend)(nil)
