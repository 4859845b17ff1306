// Package filesystem is Flask-Caching's FileSystemCache for fragcache: a
// [backends.Backend] that keeps one file per entry in a directory, shared
// safely by every goroutine and every process that opens it (see
// [Backend]).
//
// Importing it registers the CACHE_TYPE "FileSystemCache" (and Flask's old
// "filesystem") with [backends.Open], which reads CACHE_DIR,
// CACHE_THRESHOLD and these CACHE_OPTIONS: "mode" (the entry files'
// permissions, 0o600 by default), "max_value_size" (see below) and
// "threshold" (checked, but CACHE_THRESHOLD wins, as in Flask). [New]
// builds one directly:
//
//	fsc, err := filesystem.New("/var/cache/myapp", filesystem.Options{Threshold: 1000})
//	cache := backends.New(fsc, backends.CacheOptions{KeyPrefix: "myapp_"})
//
// max_value_size (Options.MaxValueSize, 64 MiB by default) means what it
// means for every fragcache backend: the largest value stored, refused on
// write with an error wrapping backends.ErrValueTooLarge, and the bound on
// what a read allocates, whatever file is put under an entry's name.
//
// It imports backends, fragcache's internal option reader, and the
// standard library; never a network client.
package filesystem
