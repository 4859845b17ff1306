package benchreport

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		f    string
		want string
	}{
		{"empty", nil, "%.2f", "–"},
		{"one", []float64{1.5}, "%.2f", "1.50"},
		{"odd, unsorted", []float64{3, 1, 2}, "%.1f", "2.0 [1.0–3.0]"},
		{"even, mean of the middle two", []float64{4, 1, 2, 10}, "%.2f", "3.00 [1.00–10.00]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			assert.Equal(t, tt.want, Summary(tt.xs, tt.f))
			assert.Equal(t, in, tt.xs, "Summary must not reorder its argument")
		})
	}
}
