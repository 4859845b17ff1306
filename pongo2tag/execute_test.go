package pongo2tag

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/flosch/pongo2/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/backends"
	"github.com/fragcache/fragcache/fragment"
	"github.com/fragcache/fragcache/internal/testkit"
)

// simpleFC is a fragment cache over an in-process SimpleCache.
func simpleFC() *fragment.Cache {
	return fragment.New(backends.New(backends.NewSimple(0), backends.CacheOptions{}), fragment.Options{})
}

// On an in-process backend, Execute costs what rendering straight into w
// costs: pongo2's ExecuteWriter, which it used to call, allocated a buffer
// of 1.3× the template's source per page (26 KB on the 10-block page of
// internal/enginebench). The source here is 64 KB of text around a block.
func TestExecuteInProcessAllocatesLikeUnbuffered(t *testing.T) {
	fc := simpleFC()
	set := newSet(t)
	Bind(set, fc)
	pad := strings.Repeat("<p>static text</p>\n", (64<<10)/19)
	tpl := fromString(t, set, pad+`{% cache 300, "f", user %}<b>{{ user }}</b>{% endcache %}`+pad)
	data := pongo2.Context{"user": "ann"}
	var b bytes.Buffer
	require.NoError(t, tpl.ExecuteWriterUnbuffered(With(context.Background(), fc, data), &b))
	want := b.String()

	// perPage is what one render allocates, the page's own bytes excluded:
	// render gets a writer that has room for the page.
	const runs = 50
	perPage := func(render func()) uint64 {
		render()
		return testkit.Allocated(func() {
			for range runs {
				render()
			}
		}) / runs
	}
	ref := bytes.NewBuffer(make([]byte, 0, len(want)))
	unbuffered := perPage(func() {
		ref.Reset()
		require.NoError(t, tpl.ExecuteWriterUnbuffered(With(context.Background(), fc, data), ref))
	})
	b.Reset()
	toBuffer := perPage(func() {
		b.Reset()
		require.NoError(t, Execute(context.Background(), fc, tpl, data, &b))
	})
	assert.Equal(t, want, b.String())
	var sb strings.Builder
	toBuilder := perPage(func() {
		sb.Reset()
		sb.Grow(len(want))
		require.NoError(t, Execute(context.Background(), fc, tpl, data, &sb))
	}) - uint64(len(want)) // the Builder's own page (Reset drops it)
	assert.Equal(t, want, sb.String())
	const slack = 2 << 10
	assert.LessOrEqual(t, toBuffer, unbuffered+slack, "into a bytes.Buffer: Execute %d B per page, ExecuteWriterUnbuffered %d B", toBuffer, unbuffered)
	assert.LessOrEqual(t, toBuilder, unbuffered+slack, "into a strings.Builder: Execute %d B per page, ExecuteWriterUnbuffered %d B", toBuilder, unbuffered)
}

// A render that fails leaves w as it was on an in-process backend too:
// a bytes.Buffer keeps what it held before, another writer gets nothing.
func TestExecuteInProcessError(t *testing.T) {
	fc := simpleFC()
	set := newSet(t)
	Bind(set, fc)
	tpl := fromString(t, set, `{% cache 300, "ok" %}ok{% endcache %}{% cache 300, "bad" %}{{ f() }}{% endcache %}`)
	data := pongo2.Context{"f": func() (string, error) { return "", assert.AnError }}

	b := bytes.NewBufferString("before|")
	require.Error(t, Execute(t.Context(), fc, tpl, data, b))
	assert.Equal(t, "before|", b.String())

	var sb strings.Builder
	sb.WriteString("before|")
	require.Error(t, Execute(t.Context(), fc, tpl, data, &sb))
	assert.Equal(t, "before|", sb.String())

	has, err := fc.Store().Has(t.Context(), fc.Key("bad"))
	require.NoError(t, err)
	assert.False(t, has, "a failed block stores nothing")

	// A page that renders after one that failed is whole.
	b.Reset()
	require.NoError(t, Execute(t.Context(), fc, tpl, pongo2.Context{"f": func() string { return "fine" }}, b))
	assert.Equal(t, "okfine", b.String())
}
