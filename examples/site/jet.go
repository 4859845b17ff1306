package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/CloudyKit/jet/v6"

	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/jettag"
)

// jetEngine renders templates/jet/*.jet with Jet and the {{ cache }} block
// of package jettag.
type jetEngine struct {
	tags  *jettag.Tags
	pages map[string]*jet.Template
}

func newJetEngine(fc *fragment.Cache) (engine, error) {
	// NewSet wraps the loader so that every template it loads, extended
	// ones included, has its cache blocks rewritten into what Jet parses.
	tags := jettag.New(fc, jettag.Options{})
	set, err := tags.NewSet("shop", fsLoader{engineTemplates("jet")})
	if err != nil {
		return nil, fmt.Errorf("jet: %w", err)
	}
	e := &jetEngine{tags: tags, pages: make(map[string]*jet.Template)}
	for _, v := range views {
		t, err := set.GetTemplate(v + ".jet")
		if err != nil {
			return nil, fmt.Errorf("jet: %w", err)
		}
		e.pages[v] = t
	}
	return e, nil
}

func (e *jetEngine) Name() string { return "jet" }

func (e *jetEngine) Render(ctx context.Context, w io.Writer, view string, p *Page) error {
	t, ok := e.pages[view]
	if !ok {
		return fmt.Errorf("jet: no view %q", view)
	}
	// Tags.Execute passes ctx to the blocks and, on a networked backend,
	// looks every block of the page up in one round trip.
	return e.tags.Execute(ctx, t, w, jet.VarMap{}.Set("page", p), nil)
}

// fsLoader loads Jet templates from an fs.FS. Jet asks for absolute,
// slash-separated paths ("/home.jet"); fs.FS paths have no leading slash.
type fsLoader struct{ fsys fs.FS }

func (l fsLoader) Exists(path string) bool {
	_, err := fs.Stat(l.fsys, strings.TrimPrefix(path, "/"))
	return err == nil
}

func (l fsLoader) Open(path string) (io.ReadCloser, error) {
	return l.fsys.Open(strings.TrimPrefix(path, "/"))
}
