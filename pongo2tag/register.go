package pongo2tag

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

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

// Options configure how the tag names templates in keys. They apply to
// templates parsed after Register returns.
type Options struct {
	// BaseDirs are the directories templates are loaded from. pongo2 names
	// a template loaded by FromCache, {% include %}, {% extends %} or
	// {% import %} by its loader-resolved absolute path, while FromFile
	// keeps the name it was given; the tag strips the longest matching base
	// directory so that both give the same slash-separated relative path,
	// and fragment keys agree across load methods and hosts. Relative
	// entries are made absolute against the working directory, as pongo2's
	// LocalFilesystemLoader does.
	BaseDirs []string
	// Loaders adds the base directory of each loader to BaseDirs: the
	// directory the loader resolves a bare name against (for a
	// LocalFilesystemLoader, its base directory, or the working directory
	// when it has none). Loaders that resolve to relative names, such as
	// pongo2's FSLoader and HttpFilesystemLoader, need no entry.
	Loaders []pongo2.TemplateLoader
}

// config is Options resolved for the parser: absolute, cleaned base
// directories.
type config struct {
	baseDirs []string
}

var (
	regMu      sync.Mutex
	registered bool
	current    atomic.Pointer[config] // read by every parse of a cache tag
)

// Register adds the cache tag to pongo2. pongo2 v6 keeps one global tag
// registry without locking, so call it at startup, before any template that
// uses the tag is parsed. It is idempotent: calling it again does not
// register twice, and the directories in its Options are added to those
// already known (for templates parsed afterwards).
// It returns an error wrapping ErrTagExists if pongo2 already has a "cache"
// tag from elsewhere, and an error for an unusable option.
func Register(opts Options) error {
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	regMu.Lock()
	defer regMu.Unlock()
	if !registered {
		if err := pongo2.RegisterTag(TagName, parseCache); err != nil {
			return fmt.Errorf("%w: %w", ErrTagExists, err)
		}
		registered = true
	}
	if old := current.Load(); old != nil {
		cfg.baseDirs = append(cfg.baseDirs, old.baseDirs...)
	}
	current.Store(cfg)
	return nil
}

// loaderProbe is a template name no loader is asked to open: only resolved.
const loaderProbe = "fragcache-base-dir-probe"

func newConfig(opts Options) (*config, error) {
	dirs := make([]string, 0, len(opts.BaseDirs)+len(opts.Loaders))
	for i, d := range opts.BaseDirs {
		if d == "" {
			return nil, fmt.Errorf("pongo2tag: Options.BaseDirs[%d] is empty", i)
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("pongo2tag: Options.BaseDirs[%d] %q: %w", i, d, err)
		}
		dirs = append(dirs, abs)
	}
	for i, l := range opts.Loaders {
		if l == nil {
			return nil, fmt.Errorf("pongo2tag: Options.Loaders[%d] is nil", i)
		}
		if abs := l.Abs("", loaderProbe); filepath.IsAbs(abs) {
			dirs = append(dirs, filepath.Dir(abs))
		}
	}
	return &config{baseDirs: dirs}, nil
}

// stringTemplate is the name pongo2 gives every FromString/FromBytes template.
const stringTemplate = "<string>"

// sitePath turns a token's Filename into the loader-relative,
// slash-separated path keys use. Absolute paths must lie under a base
// directory: a key holding an install directory would differ per host.
func (c *config) sitePath(filename string) (string, error) {
	if filename == stringTemplate {
		return filename, nil
	}
	if !filepath.IsAbs(filename) {
		return path.Clean(filepath.ToSlash(filename)), nil
	}
	best, bestDir := "", ""
	for _, d := range c.baseDirs {
		rel, err := filepath.Rel(d, filename)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if len(d) > len(bestDir) { // the most specific directory wins
			best, bestDir = rel, d
		}
	}
	if bestDir == "" {
		return "", fmt.Errorf("template path %q is under none of the base directories %q; "+
			"pass the loader's directory in pongo2tag.Options.BaseDirs or Options.Loaders", filename, c.baseDirs)
	}
	return filepath.ToSlash(best), nil
}
