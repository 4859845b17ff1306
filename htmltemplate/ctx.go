package htmltemplate

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/petermattis/goid"
)

// html/template gives template functions no per-execution state: not the
// writer, not the data's origin, not a context.Context. What a block's
// function does share with the ExecuteContext call that runs it is its
// goroutine, since text/template executes synchronously (as package
// internal/flight relies on too). So ExecuteContext records its ctx under
// its goroutine's id, in the template set, for the duration of the call,
// and a block looks it up there. The record is scoped to one call on one
// goroutine: nothing global, nothing left behind.

// execContexts maps goroutine ids to the ctx of the ExecuteContext call
// running on that goroutine.
type execContexts struct {
	n  atomic.Int32 // entries in m: lets blocks skip the lookup when no ExecuteContext runs
	mu sync.RWMutex
	m  map[int64]context.Context
}

// bind records ctx for the calling goroutine and returns what unbind
// needs to restore the previous record (an ExecuteContext nested in a
// template function of another).
func (e *execContexts) bind(ctx context.Context) (id int64, prev context.Context) {
	id = goid.Get()
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[int64]context.Context)
	}
	prev = e.m[id]
	e.m[id] = ctx
	if prev == nil {
		e.n.Add(1)
	}
	e.mu.Unlock()
	return id, prev
}

func (e *execContexts) unbind(id int64, prev context.Context) {
	e.mu.Lock()
	if prev != nil {
		e.m[id] = prev
	} else {
		delete(e.m, id)
		e.n.Add(-1)
	}
	e.mu.Unlock()
}

// current returns the ctx of the ExecuteContext call running on the
// calling goroutine, or context.Background() under Execute.
func (e *execContexts) current() context.Context {
	if e.n.Load() == 0 {
		return context.Background()
	}
	id := goid.Get()
	e.mu.RLock()
	ctx := e.m[id]
	e.mu.RUnlock()
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// ExecuteContext is Execute with a context.Context for the cache blocks'
// backend calls and for waiting on another execution's render of the same
// fragment: typically the request's, so its deadline bounds the cache's
// part of the page and its cancellation stops the waiting. html/template
// itself does not see ctx; template functions that need it must get it from
// the data as before.
func (t *Template) ExecuteContext(ctx context.Context, w io.Writer, data any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	return t.page(ctx, w, t.Name(), func(w io.Writer) error { return t.execute(w, data) })
}

// ExecuteTemplateContext is ExecuteTemplate with a context.Context, as
// ExecuteContext is Execute with one.
func (t *Template) ExecuteTemplateContext(ctx context.Context, w io.Writer, name string, data any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	return t.page(ctx, w, name, func(w io.Writer) error { return t.executeTemplate(w, name, data) })
}
