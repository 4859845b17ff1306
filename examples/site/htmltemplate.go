package main

import (
	"context"
	"fmt"
	"io"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/htmltemplate"
)

// htmlEngine renders templates/html/*.html with html/template and the
// {{ cache }} block of package htmltemplate.
type htmlEngine struct {
	pages map[string]*htmltemplate.Template
}

func newHTMLEngine(fc *fragment.Cache) (engine, error) {
	fsys := engineTemplates("html")
	e := &htmlEngine{pages: make(map[string]*htmltemplate.Template)}
	for _, v := range views {
		// One namespace per page: each page defines "main" for the
		// layout to call. Templates are named by their path in fsys,
		// which is what unnamed fragments would be keyed by.
		t, err := htmltemplate.ParseFSPaths(fc, fsys, v+".html", "layout.html")
		if err != nil {
			return nil, fmt.Errorf("html: %w", err)
		}
		// Find a block outside HTML element content now, not on the
		// first request.
		if err := t.Check(); err != nil {
			return nil, fmt.Errorf("html: %w", err)
		}
		e.pages[v] = t
	}
	return e, nil
}

func (e *htmlEngine) Name() string { return "html" }

// Render executes the page's template with the request's context, which
// the cache blocks use for their backend calls.
func (e *htmlEngine) Render(ctx context.Context, w io.Writer, view string, p *Page) error {
	t, ok := e.pages[view]
	if !ok {
		return fmt.Errorf("html: no view %q", view)
	}
	return t.ExecuteContext(ctx, w, p)
}
