package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/fragcache/fragcache/fragment"
)

// outcomes records what each cache block of one request found, in order,
// for the HIT/MISS badges. The fragment cache's Observer hook writes it;
// it travels in the request's context.
type outcomes struct {
	mu     sync.Mutex
	byName map[string][]fragment.Outcome
}

type outcomesKey struct{}

// withOutcomes returns ctx carrying a fresh record of block outcomes.
func withOutcomes(ctx context.Context) (context.Context, *outcomes) {
	o := &outcomes{byName: map[string][]fragment.Outcome{}}
	return context.WithValue(ctx, outcomesKey{}, o), o
}

// badgeObserver is the demo's fragment.Observer: it notes each block's
// outcome in the request's record, then hands every event to next (the
// metrics).
type badgeObserver struct{ next fragment.Observer }

func (b badgeObserver) ObserveLookup(ctx context.Context, blk fragment.Block, o fragment.Outcome, bytes int) {
	if rec, ok := ctx.Value(outcomesKey{}).(*outcomes); ok {
		rec.mu.Lock()
		rec.byName[blk.Name] = append(rec.byName[blk.Name], o)
		rec.mu.Unlock()
	}
	b.next.ObserveLookup(ctx, blk, o, bytes)
}

func (b badgeObserver) ObserveRender(ctx context.Context, blk fragment.Block, took time.Duration, bytes int, err error) {
	b.next.ObserveRender(ctx, blk, took, bytes, err)
}

// fragmentDiv is how every template opens a cached fragment's content:
// the badge goes right inside it.
var fragmentDiv = regexp.MustCompile(`<div class="fragment" data-fragment="([a-z0-9-]+)">`)

// badge marks each fragment of a rendered page with what its block found
// in the cache for this request. It runs on the whole page after the
// render, so the badge is never part of a stored fragment. The n-th
// fragment of a name on the page gets the n-th outcome recorded for it.
func (o *outcomes) badge(page []byte) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := map[string]int{}
	return fragmentDiv.ReplaceAllFunc(page, func(div []byte) []byte {
		name := string(fragmentDiv.FindSubmatch(div)[1])
		i := seen[name]
		seen[name]++
		state := "unknown" // inside another cached fragment: no block ran
		if i < len(o.byName[name]) {
			state = o.byName[name][i].String()
		}
		var b bytes.Buffer
		b.Write(div[:len(div)-1])
		b.WriteString(` data-cache="` + state + `"><span class="cache-badge">` + strings.ToUpper(strings.ReplaceAll(state, "_", " ")) + `</span>`)
		return b.Bytes()
	})
}
