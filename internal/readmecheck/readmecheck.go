// Package readmecheck keeps the README's quickstart programs equal to the
// Example functions that compile and run them, so that a program copied
// from the README into a fresh module builds and does what its Example's
// Output says.
//
// A quickstart in the README is a Go code block that follows a line
// <!-- quickstart: NAME -->; it must be the program that [Program] makes of
// the Example: package main, the Example file's imports, and the Example's
// body (up to its Output comment) as func main.
package readmecheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strings"
	"testing"
)

// Program returns the package main program made of the Example function
// named example in the Go file src: the file's imports and the Example's
// body before its "// Output:" comment, gofmt-ed.
func Program(src []byte, example string) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		return "", err
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Name.Name == example && d.Recv == nil {
			fn = d
		}
	}
	if fn == nil {
		return "", fmt.Errorf("no func %s", example)
	}
	var imports []byte
	for _, d := range f.Decls {
		if d, ok := d.(*ast.GenDecl); ok && d.Tok == token.IMPORT {
			imports = append(imports, src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset]...)
			imports = append(imports, '\n')
		}
	}
	body := src[fset.Position(fn.Body.Lbrace).Offset+1 : fset.Position(fn.Body.Rbrace).Offset]
	if i := bytes.Index(body, []byte("// Output:")); i >= 0 {
		body = body[:i]
	}
	prog := fmt.Sprintf("package main\n\n%s\nfunc main() {%s\n}\n", imports, bytes.TrimRight(body, " \t\n"))
	out, err := format.Source([]byte(prog))
	if err != nil {
		return "", fmt.Errorf("program from %s: %w", example, err)
	}
	return string(out), nil
}

var fence = regexp.MustCompile("(?s)^\\s*```go\n(.*?\n)```")

// Block returns the Go code block that follows the line
// "<!-- quickstart: name -->" in the Markdown text md, gofmt-ed.
func Block(md []byte, name string) (string, error) {
	marker := "<!-- quickstart: " + name + " -->"
	_, after, ok := bytes.Cut(md, []byte(marker))
	if !ok {
		return "", fmt.Errorf("no %s", marker)
	}
	m := fence.FindSubmatch(after)
	if m == nil {
		return "", fmt.Errorf("no ```go block right after %s", marker)
	}
	out, err := format.Source(m[1])
	if err != nil {
		return "", fmt.Errorf("the block after %s: %w", marker, err)
	}
	return string(out), nil
}

// Check fails t unless the quickstart name in the README at readme is the
// program made of the Example function example in the file exampleFile.
func Check(t testing.TB, readme, name, exampleFile, example string) {
	t.Helper()
	md, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Program(src, example)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Block(md, name)
	if err != nil {
		t.Fatalf("%s: %v; it should hold:\n%s", readme, err, want)
	}
	if got != want {
		t.Errorf("%s: the %s quickstart differs from %s in %s; it should be:\n%s\ndiff (README line, then Example line):\n%s",
			readme, name, example, exampleFile, want, firstDiff(got, want))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, gl, wl)
		}
	}
	return ""
}
