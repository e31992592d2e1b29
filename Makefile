# Loa — two commands on a fresh Debian machine: `make demo` and `make test`.
# Both install the system packages they need first (sudo only when not root).

SHELL   := /bin/bash
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin

# What building, the demo and the test suite need from Debian.
BUILD_PKGS := libopus-dev libopusfile-dev pkg-config gcc
DEMO_PKGS  := $(BUILD_PKGS) espeak-ng ffmpeg
TEST_PKGS  := $(DEMO_PKGS) mosquitto docker-compose chromium curl jq poppler-utils
# `loa bench fanout -cores` sets GStreamer's multiudpsink beside the engine
# (gst-launch-1.0; oggdemux is in -base, rtpopuspay and multiudpsink in -good).
BENCH_PKGS := $(DEMO_PKGS) gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test build deps-demo deps-test deps-bench vet bench clean

define install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or newer is needed (https://go.dev/doc/install)"; exit 1; }
endef

deps-demo:
	$(call install,$(DEMO_PKGS))

deps-test:
	$(call install,$(TEST_PKGS))

deps-bench:
	$(call install,$(BENCH_PKGS))

build: deps-demo
	$(GO) build -o bin/loa ./cmd/loa
	$(GO) build -o bin/firmware-sim ./cmd/firmware-sim

# The main job: controller + embedded broker + simulated receivers playing a
# programme. `make demo ARGS="-receivers 200 -for 30s"` passes flags on.
demo: deps-demo
	$(GO) run ./cmd/loa demo $(ARGS)

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The whole suite, as CI runs it (.ci/run).
test: deps-test vet
	$(GO) test -race -timeout 25m ./...

bench: deps-bench
	$(GO) run ./cmd/loa bench fanout

clean:
	rm -rf bin
