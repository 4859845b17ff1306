package pongo2tag

import (
	"errors"
	"fmt"
	"sync"

	"github.com/flosch/pongo2/v6"
)

// TagName and EndTagName are the names the block is registered under:
// {% cache … %}…{% endcache %}.
const (
	TagName    = "cache"
	EndTagName = "endcache"
)

// ErrTagExists is returned by Register when pongo2 already has a "cache" tag
// that this package did not register.
var ErrTagExists = errors.New(`pongo2tag: pongo2 already has a "cache" tag from elsewhere`)

// Options configure Register. There are none yet: template paths come
// from the Loader that loads each template (see NewLoader).
type Options struct{}

var (
	regMu      sync.Mutex
	registered bool                   // the cache tag
	pathTag    bool                   // the tag Loader appends
	names      = map[string]*Loader{} // loader names in use
)

// Register adds the cache tag to pongo2. pongo2 v6 keeps one global tag
// registry without locking, so call it at startup, before any template that
// uses the tag is parsed. It is idempotent.
// It returns an error wrapping ErrTagExists if pongo2 already has a "cache"
// tag from elsewhere.
func Register(Options) error {
	regMu.Lock()
	defer regMu.Unlock()
	if !registered {
		if err := pongo2.RegisterTag(TagName, parseCache); err != nil {
			return fmt.Errorf("%w: %w", ErrTagExists, err)
		}
		registered = true
	}
	return registerPathTag()
}

// registerPathTag adds the tag Loader appends to every template; regMu is
// held.
func registerPathTag() error {
	if pathTag {
		return nil
	}
	if err := pongo2.RegisterTag(pathTagName, parsePath); err != nil {
		return fmt.Errorf("pongo2tag: registering the %q tag: %w", pathTagName, err)
	}
	pathTag = true
	return nil
}

// claimLoaderName records l's name, refusing it if it already names a
// loader with another root.
func claimLoaderName(l *Loader) error {
	regMu.Lock()
	defer regMu.Unlock()
	if err := registerPathTag(); err != nil {
		return err
	}
	if old, ok := names[l.name]; ok && !old.sameRoot(l) {
		return fmt.Errorf("%w: %q already names the loader of %s; two roots under one name would give two files one path",
			ErrLoaderName, l.name, old.where())
	}
	names[l.name] = l
	return nil
}
