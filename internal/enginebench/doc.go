// Package enginebench measures the three template engines' cache blocks
// against each engine alone, in one process and one run, as issue 17 asks:
// the 10-fragment page (all hits, all misses, without cache blocks, and
// with each block replaced by the engine's cheapest constant; for Jet and
// html/template also with each block rendered and kept by a bare function,
// the least a miss can cost), and one
// fragment hit next to one constant of 100 B, 10 KB and 1 MB.
//
// It holds only tests and benchmarks; it is a package of its own so that
// the three engines' bindings are measured by one harness, and so that no
// library package's tests import all three.
//
//	go test -run '^$' -bench . -benchmem ./internal/enginebench/    # each cell, for profiling
//	go test -v -run TestReport ./internal/enginebench/ -args -report -rounds 7  # interleaved rounds, as markdown
//
// BENCHMARKS.md records the figures and the command lines.
package enginebench
