# Tygress. `make demo` runs the data path on a built-in topology; `make test`
# runs every test (as root: privileged tests included). Both set up what they
# need first (apt packages, bpffs).

GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: a duration-based -fuzztime races the Go fuzzing
# coordinator's deadline on a loaded machine and fails with a bare
# "context deadline exceeded" (golang/go#51484), which is not a finding.
FUZZTIME    ?= 50000x
BIN         := bin/tyfwd
APT_PKGS    := clang llvm libbpf-dev bpftool ethtool iproute2 iputils-ping tcpdump python3-scapy nftables
export TYGRESS_REQUIRE_PRIVILEGED

.PHONY: all build deps generate lint test test-unit test-race fuzz-short fuzz bench demo clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tyfwd

# Install missing Debian packages (clang for `make generate`, ethtool and
# iproute2 for the test topology, tcpdump/scapy for golden packets) and
# mount bpffs. Idempotent and quiet when everything is there.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "not root: install$$missing yourself" >&2; fi; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! mountpoint -q /sys/fs/bpf; then mount -t bpf bpf /sys/fs/bpf; fi

# Rebuild the XDP program and its Go bindings (committed) with clang.
generate: deps
	$(GO) generate ./bpf

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	$(STATICCHECK) ./...
	cd bench && $(STATICCHECK) ./...

test-unit:
	$(GO) test -count=1 ./...
	cd bench && $(GO) test -count=1 ./...

test-race:
	$(GO) test -count=1 -race ./sched ./pipeline ./xsk ./link/... ./stack

# Each fuzz target runs briefly; `make fuzz FUZZTIME=10m` runs them longer.
fuzz-short:
	@set -e; for pkg in ./proto ./sched ./stack ./stack/reasm ./stack/neighbor; do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; \
			log=$$(mktemp); \
			if ! $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -parallel=1 $$pkg >$$log 2>&1; then \
				cat $$log; rm -f $$log; exit 1; \
			fi; \
			rm -f $$log; \
		done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=5m

test: deps lint test-unit test-race fuzz-short
	@echo "make test: all passed"

bench: deps build
	cd bench && $(GO) run ./cmd/benchrun
	cd bench && $(GO) run ./cmd/udpecho
	cd bench && $(GO) run ./cmd/lbbench

demo: deps build
	./$(BIN) demo

clean:
	rm -rf bin
