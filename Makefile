# Targets: test (installs missing server packages when root, then runs every
# test with the race detector against real servers; fuzz seeds under
# testdata/fuzz run as ordinary tests), fuzz, bench, lint.

GO        ?= go
PKGS      ?= ./...
BENCH     ?= .
BENCHTIME ?=
FUZZTIME  ?= 30s

.PHONY: help test test-deps fuzz bench bench-peers bench-report lint size

help:
	@echo "make test       install missing test servers and Chromium (as root), then go test -race against them"
	@echo "make fuzz       run every fuzz target for FUZZTIME each (default 30s)"
	@echo "make bench      run benchmarks (BENCH=regex, BENCHTIME=1s|100x), bench-peers included"
	@echo "make bench-peers  SimpleCache against otter, go-cache, golang-lru, ristretto (module bench/)"
	@echo "make bench-report the issue-17 tables: engines (internal/enginebench) and peers, interleaved, CPU time"
	@echo "make lint       gofmt, go vet, staticcheck"
	@echo "make size       binary size of a program that uses only backends.NewSimple (and what it links)"

test: test-deps
	FRAGCACHE_REQUIRE_SERVERS=1 $(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run '$(NORACE_TESTS)' $(NORACE_PKGS)

# NORACE_PKGS hold test files built only without the race detector (//go:build
# !race: it makes sync.Pool drop items at random and multiplies allocation
# costs), whose allocation and memory tests NORACE_TESTS names; make test runs
# them in a pass without it.
NORACE_PKGS = ./htmltemplate ./httpcache ./jettag
NORACE_TESTS = TestAllHitPageAllocatesAsTheFloor|TestBoxString|TestMemoryOfConcurrentColdResponses|TestHitAllocatesNothingBeyondJet

# test-deps installs the servers and the headless Chromium the tests use
# (see .ci/install-test-deps.sh), only what is missing.
test-deps:
	.ci/install-test-deps.sh

# fuzz runs each Fuzz function of every package on its own (go test -fuzz
# takes one target at a time); a crasher is written under that package's
# testdata/fuzz and then replays in make test.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for fn in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | cut -c6-); do \
			echo "== $$pkg $$fn ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

bench: bench-peers
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(if $(BENCHTIME),-benchtime '$(BENCHTIME)') $(PKGS)

# bench/ is a module of its own, so that the caches it compares with never
# become dependencies of fragcache; ./... does not reach into it.
bench-peers:
	cd bench && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(if $(BENCHTIME),-benchtime '$(BENCHTIME)') ./...

# The tables of BENCHMARKS.md "In-process speed": interleaved rounds, on
# process CPU time so that a shared machine's waits do not blur them.
bench-report:
	$(GO) test -v -run TestReport -count=1 ./internal/enginebench/ -args -report -rounds 5
	cd bench && $(GO) test -v -run TestReport -count=1 -timeout 60m . -args -report -rounds 3 -clock cpu

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	cd bench && $(GO) vet ./... && $$($(GO) -C .. tool -n staticcheck) ./...

# size builds backends/testdata/simpleonly, a program that imports only the
# core backends package, and prints its size and how many packages it links
# (TestCoreLinksNoNetworkClient checks that none is a network client).
size:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(GO) build -o $$tmp/simpleonly ./backends/testdata/simpleonly && \
	$(GO) build -ldflags='-s -w' -o $$tmp/simpleonly-stripped ./backends/testdata/simpleonly && \
	echo "simpleonly: $$(wc -c < $$tmp/simpleonly) bytes, $$(wc -c < $$tmp/simpleonly-stripped) stripped, $$($(GO) list -deps ./backends/testdata/simpleonly | wc -l) packages linked"
