package main

import (
	"context"
	"fmt"
	"io"

	"github.com/flosch/pongo2/v6"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/pongo2tag"
)

// pongo2Engine renders templates/pongo2/*.html with pongo2 and the
// {% cache %} tag of package pongo2tag.
type pongo2Engine struct {
	fc    *fragment.Cache
	pages map[string]*pongo2.Template
}

func newPongo2Engine(fc *fragment.Cache) (engine, error) {
	// The tag is global in pongo2 v6; Register is idempotent. The
	// pongo2tag.Loader gives every template the path unnamed blocks are
	// keyed by: "shop/" and its path in the fs.FS.
	if err := pongo2tag.Register(pongo2tag.Options{}); err != nil {
		return nil, fmt.Errorf("pongo2: %w", err)
	}
	loader, err := pongo2tag.NewLoader("shop", pongo2.NewFSLoader(engineTemplates("pongo2")))
	if err != nil {
		return nil, fmt.Errorf("pongo2: %w", err)
	}
	set := pongo2.NewSet("shop", loader)
	e := &pongo2Engine{fc: fc, pages: make(map[string]*pongo2.Template)}
	for _, v := range views {
		t, err := set.FromCache(v + ".html")
		if err != nil {
			return nil, fmt.Errorf("pongo2: %w", err)
		}
		e.pages[v] = t
	}
	return e, nil
}

func (e *pongo2Engine) Name() string { return "pongo2" }

func (e *pongo2Engine) Render(ctx context.Context, w io.Writer, view string, p *Page) error {
	t, ok := e.pages[view]
	if !ok {
		return fmt.Errorf("pongo2: no view %q", view)
	}
	// Execute binds the cache and the request's context for this render
	// (one context key) and, on a networked backend, looks every block of
	// the page up in one round trip.
	return pongo2tag.Execute(ctx, e.fc, t, pongo2.Context{"page": p}, w)
}
