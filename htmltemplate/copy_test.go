package htmltemplate

import (
	"bytes"
	"html/template"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fragcache/fragcache/fragment"
)

// TestHitDoesNotCopyTheFragment checks that a hit hands html/template the
// stored bytes rather than a copy: a page whose one block hits a 32 KB
// fragment allocates, per execution, less than half the fragment more than
// the same page printing the fragment as a constant template.HTML (the
// old conversion to a string allocated the whole fragment again).
func TestHitDoesNotCopyTheFragment(t *testing.T) {
	const size = 32 << 10
	big := strings.Repeat("x", size)
	fc, _ := newCache(fragment.Options{})
	hit := parseT(t, fc, "page.html", `{{ cache 300 "big" }}{{ . }}{{ endcache }}`, nil)
	floor := parseT(t, nil, "floor.html", `{{ big }}`, template.FuncMap{"big": func() template.HTML { return template.HTML(big) }})
	perRun := func(tpl *Template) uint64 {
		var out bytes.Buffer
		for range 3 { // the first render of hit misses; the others warm the buffers
			out.Reset()
			require.NoError(t, tpl.Execute(&out, big))
			require.Equal(t, big, out.String())
		}
		const runs = 100
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			out.Reset()
			if err := tpl.Execute(&out, big); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / runs
	}
	h, f := perRun(hit), perRun(floor)
	require.Less(t, h, f+size/2, "a hit allocated %d bytes for a %d-byte fragment where the constant allocates %d: it copies the fragment", h, size, f)
	require.Equal(t, 102, int(fc.Stats().Hits))
}
