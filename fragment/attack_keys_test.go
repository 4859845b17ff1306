package fragment

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAttackUnnamedKeysOfPathsEndingInDigits: an unnamed block's name is
// its template's path and line run together (Flask's FragmentName), which
// is ambiguous when the path ends in a digit: line 23 of "wizard/step1" and
// line 3 of "wizard/step12" are both "wizard/step123", so the second page
// was served the first page's fragment. Keys keep Flask's bytes, so such
// unnamed blocks are refused, with an error at the block's position that
// says to name it (as two unnamed blocks on one line are); named blocks,
// and unnamed ones in paths ending otherwise, are unaffected.
func TestAttackUnnamedKeysOfPathsEndingInDigits(t *testing.T) {
	c, _ := newTestCache(Options{})
	for _, site := range []*Site{{Path: "wizard/step1", Line: 23, Col: 1}, {Path: "wizard/step12", Line: 3, Col: 1}} {
		body, runs := countingBody("a step")
		_, err := render(c, Call{Site: site, Timeout: 60}, body)
		require.ErrorIs(t, err, ErrAmbiguousName)
		var se *SiteError
		require.ErrorAs(t, err, &se)
		assert.Same(t, site, se.Site, "the error names the block's position")
		assert.Contains(t, err.Error(), site.String())
		assert.Contains(t, err.Error(), "name the block")
		assert.Zero(t, runs.Load(), "nothing rendered under an ambiguous key")

		out, err := render(c, Call{Site: site, Timeout: 60, Name: site.Path}, body)
		require.NoError(t, err, "a named block in the same template is fine")
		assert.Equal(t, "a step", out)
	}
	body, _ := countingBody("step one")
	out, err := render(c, Call{Site: &Site{Path: "wizard/step1.html", Line: 23, Col: 1}, Timeout: 60}, body)
	require.NoError(t, err)
	assert.Equal(t, "step one", out)
}
