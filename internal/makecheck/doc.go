// Package makecheck holds only tests: they check the Makefile's hand-kept
// lists against the tree they describe.
package makecheck
