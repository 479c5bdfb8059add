# nestvm build. `make demo` and `make test` are the two commands a fresh
# machine needs; both install missing Debian packages when run as root.

GO      ?= go
BUILD   := $(abspath build)
NESTVM  := $(BUILD)/nestvm
GOFLAGS ?=
# Fuzzing time per target for `make fuzz`.
FUZZTIME ?= 60s
# Time (or NUMx iterations) per benchmark for `make bench`.
BENCHTIME ?= 1s

.PHONY: all build nestvm nestvm-oci guests deps linux-corpus demo test test-short bench lint generate check-generate fuzz kvm-bundle clean

all: build

build: nestvm nestvm-oci guests

deps:
	@scripts/ensure-deps

nestvm: deps
	$(GO) build $(GOFLAGS) -o $(NESTVM) ./cmd/nestvm

# The OCI runtime, with the pure-Go nestvm (KVM only) it bind-mounts into
# containers beside the cgo one (which also has the emu backend).
nestvm-oci: deps
	$(GO) build $(GOFLAGS) -o $(BUILD)/nestvm-oci ./cmd/nestvm-oci
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o $(BUILD)/nestvm-static ./cmd/nestvm

guests: deps
	$(MAKE) -s -C examples BUILD=$(BUILD)

# The Linux programs personality/linux's corpus test runs natively and
# under nestvm: busybox from Debian, C and Go programs from its testdata.
# Built, never committed; what cannot be built is skipped by the test.
linux-corpus: deps
	@scripts/linux-corpus $(BUILD)/linux

demo: build linux-corpus
	@scripts/demo $(BUILD)

# The whole suite: generated files current, vet, a pure-Go build, and every
# test with the race detector (fuzz targets run their seed corpus).
test: build linux-corpus check-generate lint
	CGO_ENABLED=0 $(GO) build -o /dev/null ./...
	$(GO) test -race -count=1 -timeout 30m ./...

# Without the race detector, for a quick loop while editing.
test-short: build
	$(GO) test -count=1 ./...

# The benchmarks of benchmarks/ on every backend this host offers, BENCHTIME
# each (BENCHTIME=20x for a quick table). Numbers, never pass/fail.
bench: build
	$(GO) test -run='^$$' -bench=. -benchtime=$(BENCHTIME) ./benchmarks

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-clean:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...

generate:
	$(GO) generate ./...

# Fails when `go generate` or `go mod tidy` would change the tree.
check-generate:
	@scripts/check-generate

# Long fuzzing, separate from `make test`: every Fuzz target for FUZZTIME.
fuzz: build
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzzing $$pkg $$f for $(FUZZTIME)"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Static test binaries and guests for a host with /dev/kvm and no Go (the
# device machine): run there as .dev/run-kvm-tests. .dev/ is git-ignored.
kvm-bundle: build
	rm -rf .dev && mkdir -p .dev
	for p in vmm kvm benchmarks; do CGO_ENABLED=0 $(GO) test -c -o .dev/$$p.test ./$$p || exit 1; done
	CGO_ENABLED=0 $(GO) build -o .dev/nestvm ./cmd/nestvm
	cp -r $(BUILD)/guests $(BUILD)/native .dev/
	cp scripts/run-kvm-tests .dev/

clean:
	rm -rf $(BUILD)
	$(MAKE) -s -C examples BUILD=$(BUILD) clean
