package main

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"

	"github.com/fragcache/fragcache/fragment"
)

// templateFS holds every engine's templates, under templates/<engine>/.
//
//go:embed templates
var templateFS embed.FS

// engine renders the shop's pages with one template engine. Every engine
// renders the same pages from the same Page, with its own templates, and
// names its fragments "<name>-…" so that the three never share a stored
// fragment.
type engine interface {
	// Name is the engine's URL segment and fragment name prefix.
	Name() string
	// Render renders the page template named view ("home" or "product")
	// into w; ctx is the request's, for the cache backend calls.
	Render(ctx context.Context, w io.Writer, view string, p *Page) error
}

// Views every engine must provide, as templates/<engine>/<view><ext>.
const (
	viewHome    = "home"
	viewProduct = "product"
)

var views = []string{viewHome, viewProduct}

// newEngine builds one engine over fc.
type newEngine func(fc *fragment.Cache) (engine, error)

// engineFactories are the engines the site serves, in navigation order.
var engineFactories = []newEngine{newPongo2Engine, newJetEngine, newHTMLEngine}

// engineTemplates returns the templates of one engine, rooted at its
// directory.
func engineTemplates(dir string) fs.FS {
	sub, err := fs.Sub(templateFS, "templates/"+dir)
	if err != nil { // only for a malformed literal dir, a programming error
		panic(fmt.Sprintf("templates/%s: %v", dir, err))
	}
	return sub
}
