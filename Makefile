# Targets: test (installs missing server packages when root, then runs every
# test with the race detector against real servers), bench, lint.

GO        ?= go
PKGS      ?= ./...
BENCH     ?= .
BENCHTIME ?=

.PHONY: help test test-deps bench lint

help:
	@echo "make test       install missing test servers (as root), then go test -race against them"
	@echo "make bench      run benchmarks (BENCH=regex, BENCHTIME=1s|100x)"
	@echo "make lint       gofmt, go vet, staticcheck"

test: test-deps
	FRAGCACHE_REQUIRE_SERVERS=1 $(GO) test -race -count=1 $(PKGS)

test-deps:
	.ci/install-test-deps.sh

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(if $(BENCHTIME),-benchtime '$(BENCHTIME)') $(PKGS)

lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
