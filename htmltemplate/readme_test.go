package htmltemplate_test

import (
	"testing"

	"github.com/fragcache/fragcache/internal/readmecheck"
)

// The README's quickstart for this engine is Example_quickstart as a
// program, so what a new user copies builds and does what the Example's
// Output says.
func TestREADMEQuickstart(t *testing.T) {
	readmecheck.Check(t, "../README.md", "htmltemplate", "quickstart_example_test.go", "Example_quickstart")
}
