// Package loadername is the rule pongo2tag and jettag share for the names
// of their template loaders: the name starts the path that keys an unnamed
// cache block ("web" → "web/shop/a.html"), so it must be one path segment
// that cannot climb out of or collapse into another.
package loadername

import "fmt"

// Check returns nil for a usable loader name: one or more ASCII letters,
// digits, '.', '_' or '-', and not "." or "..". Otherwise it returns an
// error wrapping sentinel that names the rule.
func Check(name string, sentinel error) error {
	if valid(name) {
		return nil
	}
	return fmt.Errorf("%w: %q: use one or more ASCII letters, digits, '.', '_' or '-' (not \".\" or \"..\")", sentinel, name)
}

func valid(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
