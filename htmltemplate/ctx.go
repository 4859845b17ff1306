package htmltemplate

import (
	"context"
	"io"
	"sync"
	"unsafe"

	"github.com/petermattis/goid"
)

// html/template gives template functions no per-execution state: not the
// writer, not the data's origin, not a context.Context. What a block's
// function does share with the Execute call that runs it is its
// goroutine, since text/template executes synchronously (as package
// internal/flight relies on too). So each execution records its ctx and
// its data under its goroutine's id, in the template set, for the
// duration of the call, and a block looks them up there: the ctx for its
// backend calls, the data for the blocks that take no arguments at all
// (see set.finalize). The record is scoped to one call on one goroutine:
// nothing global, nothing left behind.

// binding is what an execution records for its blocks.
type binding struct {
	ctx  context.Context
	data any // as given to Execute, or to the body's Execute for a body
	root any // $ at the block, for a body that uses it
	ok   bool
}

// executions maps goroutine ids to the binding of the execution running
// on that goroutine, in shards so that blocks running on different cores
// do not all read one lock's cache line.
type executions struct {
	shards [executionShards]executionShard
}

const executionShards = 16

type executionShard struct {
	mu sync.RWMutex
	m  map[int64]binding
	_  [64 - unsafe.Sizeof(sync.RWMutex{}) - unsafe.Sizeof(map[int64]binding(nil))]byte // a cache line each
}

func (e *executions) shard(id int64) *executionShard {
	return &e.shards[uint64(id)%executionShards]
}

// bind records ctx and data for the calling goroutine and returns what
// unbind needs to restore the previous record (an execution nested in a
// template function, or a block's body).
func (e *executions) bind(ctx context.Context, data, root any) (id int64, prev binding) {
	id = goid.Get()
	sh := e.shard(id)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[int64]binding)
	}
	prev = sh.m[id]
	sh.m[id] = binding{ctx: ctx, data: data, root: root, ok: true}
	sh.mu.Unlock()
	return id, prev
}

func (e *executions) unbind(id int64, prev binding) {
	sh := e.shard(id)
	sh.mu.Lock()
	if prev.ok {
		sh.m[id] = prev
	} else {
		delete(sh.m, id)
	}
	sh.mu.Unlock()
}

// current returns the binding of the execution running on the calling
// goroutine; its ctx is context.Background() when there is none.
func (e *executions) current() binding {
	id := goid.Get()
	sh := e.shard(id)
	sh.mu.RLock()
	b := sh.m[id]
	sh.mu.RUnlock()
	if !b.ok {
		b.ctx = context.Background()
	}
	return b
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
	return t.page(ctx, w, t.Name(), func(ctx context.Context, w io.Writer) error { return t.execute(ctx, w, data) })
}

// ExecuteTemplateContext is ExecuteTemplate with a context.Context, as
// ExecuteContext is Execute with one.
func (t *Template) ExecuteTemplateContext(ctx context.Context, w io.Writer, name string, data any) error {
	if ctx == nil {
		ctx = context.Background()
	}
	return t.page(ctx, w, name, func(ctx context.Context, w io.Writer) error { return t.executeTemplate(ctx, w, name, data) })
}
