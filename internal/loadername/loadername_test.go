package loadername

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	errBad := errors.New("bad loader name")
	tests := []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"a.b_c-1", true}, {"...", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"a b", false}, {"é", false}, {"a:b", false},
	}
	for _, tt := range tests {
		err := Check(tt.name, errBad)
		if tt.ok {
			assert.NoError(t, err, tt.name)
			continue
		}
		require.ErrorIs(t, err, errBad, tt.name)
		assert.Contains(t, err.Error(), "ASCII letters", tt.name)
	}
}
