// Package benchreport holds what the repository's two benchmark reports
// share: the median-and-range formatting of their tables and the CPU clock
// they can measure with. The reports are internal/enginebench (the template
// engines) and the bench module (SimpleCache against its peers).
//
// It is internal because it is not part of fragcache's API. The bench module
// is a module of its own, but its import path lies under
// github.com/fragcache/fragcache, so Go's internal rule lets it import this
// package.
package benchreport

import (
	"fmt"
	"slices"
)

// Summary formats the median of xs followed by its range in brackets, each
// number with the fmt verb f (for example "%.2f" gives "1.50 [1.00–2.00]").
// One value is printed alone, without a range, and no values give "–".
// The median of an even count is the mean of the two middle values.
func Summary(xs []float64, f string) string {
	if len(xs) == 0 {
		return "–"
	}
	s := slices.Sorted(slices.Values(xs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if len(s) == 1 {
		return fmt.Sprintf(f, med)
	}
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", med, s[0], s[len(s)-1])
}
