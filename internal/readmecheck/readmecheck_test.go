package readmecheck

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const exampleSrc = `package foo_test

import (
	"fmt"
)

// Doc.
func Example_quickstart() {
	x := 1
	fmt.Println(x) // one
	// Output:
	// 1
}

func Example_other() { fmt.Println(2) }
`

const program = "package main\n\nimport (\n\t\"fmt\"\n)\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x) // one\n}\n"

func TestProgram(t *testing.T) {
	got, err := Program([]byte(exampleSrc), "Example_quickstart")
	require.NoError(t, err)
	assert.Equal(t, program, got)

	got, err = Program([]byte(exampleSrc), "Example_other")
	require.NoError(t, err)
	assert.Contains(t, got, "func main() {\n\tfmt.Println(2)\n}\n")

	_, err = Program([]byte(exampleSrc), "Example_missing")
	assert.ErrorContains(t, err, "no func Example_missing")
}

func TestBlock(t *testing.T) {
	tests := []struct {
		name, md, want, err string
	}{
		{"found", "# x\n<!-- quickstart: foo -->\n\n```go\n" + program + "```\nmore\n", program, ""},
		{"gofmt-ed", "<!-- quickstart: foo -->\n```go\npackage main\nfunc main() {\n    x := 1\n}\n```\n",
			"package main\n\nfunc main() {\n\tx := 1\n}\n", ""},
		{"other name", "<!-- quickstart: bar -->\n```go\n" + program + "```\n", "", "no <!-- quickstart: foo -->"},
		{"no block after the marker", "<!-- quickstart: foo -->\ntext\n```go\n" + program + "```\n", "", "no ```go block"},
		{"not Go", "<!-- quickstart: foo -->\n```go\nfunc {\n```\n", "", "the block after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Block([]byte(tt.md), "foo")
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestFirstDiff(t *testing.T) {
	assert.Equal(t, "line 2:\n- b\n+ c", firstDiff("a\nb", "a\nc"))
	assert.Equal(t, "line 2:\n- \n+ b", firstDiff("a", "a\nb"))
	assert.Empty(t, firstDiff("a", "a"))
}
