# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build and test the restricted-DMA fork of QEMU.  Run ./configure first.
#
#   make            assemble the tree if the series changed, build
#                   qemu-system-x86_64, qemu-system-aarch64 and the fork's
#                   tools
#   make check      the fork's tests, the upstream qos-test guard and the
#                   boot matrix of real Linux guests
#   make check-boot the boot matrix alone
#   make soak       real guests on both window kinds under verified I/O,
#                   device resets and hot-plug, SOAK_TIME seconds (default
#                   600); not part of make check
#   make bench      the benchmarks (BUILD_DIR/bench/results.md)
#   make demo       boot the demonstration guest (DEMO_SCENES="x86_64
#                   aarch64" for both scenes; default x86_64)
#   make export     the whole fork as a git-am-able series in BUILD_DIR/export
#   make checkpatch export, then run QEMU's checkpatch.pl over the series
#   make fuzz       QEMU's generic fuzzer on the restricted devices, each
#                   target FUZZ_TIME seconds (default 600), in a clang
#                   build with libFuzzer, ASan and UBSan (FUZZ_DIR,
#                   default build-fuzz; configured on first use)
#   make check-sanitizers
#                   make check in that same ASan/UBSan build

BUILD_DIR ?= build
-include $(BUILD_DIR)/config.mk

# The first rule below must not decide what a plain "make" does: it builds.
.DEFAULT_GOAL := all

# One clang build serves make fuzz and make check-sanitizers: QEMU's
# fuzzer needs clang, and a second sanitized build would double the time.
FUZZ_DIR ?= build-fuzz
FUZZ_TIME ?= 600
FUZZ_CC := $(if $(shell command -v ccache),ccache )clang
FUZZ_CONFIGURE := --build-dir=$(abspath $(FUZZ_DIR)) \
	'--cc=$(FUZZ_CC)' '--cxx=$(FUZZ_CC)++' \
	--enable-fuzzing --enable-asan --enable-ubsan

$(FUZZ_DIR)/config.mk:
	./configure $(FUZZ_CONFIGURE)

fuzz: $(FUZZ_DIR)/config.mk
	$(MAKE) BUILD_DIR=$(FUZZ_DIR) fuzz-build
	tests/fuzz/run-fuzz --build-dir $(FUZZ_DIR) --time $(FUZZ_TIME) $(FUZZ_ARGS)

# LeakSanitizer is off: upstream's own qos-test leaks in the test program.
# The bench smoke test is left out: callgrind cannot run a sanitized QEMU.
# The libvirt test is left out: libvirt starts every QEMU with -daemonize,
# and an ASan QEMU that forks with its threads running deadlocks in ASan's
# allocator (2 runs in 5 of "-machine none -daemonize" hang).
# The fuzzers are built first: they are in this build's install plan, which
# the install test installs.
check-sanitizers: $(FUZZ_DIR)/config.mk
	$(MAKE) BUILD_DIR=$(FUZZ_DIR) fuzz-build
	ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=1:print_summary=1 \
	    $(MAKE) BUILD_DIR=$(FUZZ_DIR) check \
	    CHECK_ARGS="--no-suite bench --no-suite libvirt"

.PHONY: fuzz check-sanitizers

ifeq ($(QEMU_BUILD),)
not-configured all check check-boot soak bench demo export checkpatch fuzz-build:
	@echo "$(BUILD_DIR) is not configured: run ./configure first (see README.md)" >&2
	@exit 1
.PHONY: not-configured all check check-boot soak bench demo export checkpatch fuzz-build
else

NINJA ?= ninja
# ccache: share objects between build directories (the fork and a
# --base-only build) since QEMU's build uses paths relative to the build.
export CCACHE_BASEDIR := $(abspath $(BUILD_DIR))
export CCACHE_NOHASHDIR := 1
QEMU_TARGETS := qemu-system-x86_64 qemu-system-aarch64
# qtest binaries that "make check" runs
QTEST_TARGETS := tests/qtest/qos-test tests/qtest/virtio-restricted-dma-test \
	tests/qtest/virtio-restricted-dma-devices-test \
	tests/qtest/virtio-restricted-dma-pool-test \
	tests/qtest/virtio-restricted-dma-fault-test \
	tests/qtest/virtio-restricted-dma-vhost-user-test
# Debian's firmware, reached from the build tree through qemu-bundle
FIRMWARE_DIRS := /usr/share/seabios /usr/lib/ipxe/qemu /usr/share/qemu

all: build

assemble:
	@scripts/assemble $(BUILD_DIR)

build: assemble firmware
	$(NINJA) -C $(QEMU_BUILD) $(QEMU_TARGETS)
ifeq ($(BASE_ONLY),no)
	$(NINJA) -C $(FORK_BUILD)
endif

fuzz-build: build
	$(NINJA) -C $(QEMU_BUILD) qemu-fuzz-x86_64 qemu-fuzz-aarch64

check-build: build
	$(NINJA) -C $(QEMU_BUILD) $(QTEST_TARGETS) \
	    tests/qtest/virtio-restricted-dma-bench

# The guest kernels the boot matrix, the install tests and the demo boot:
# fetched or built once (the fork's own kernels take minutes each, cold)
# and cached in QEMU_RDMA_CACHE, before the tests and their timeouts start.
guests:
	tests/boot/guest.py kernels

check: check-build guests
ifeq ($(BASE_ONLY),yes)
	@echo "$(BUILD_DIR) is a --base-only build: the fork's tests do not apply" >&2; exit 1
endif
	$(MESON) test -C $(FORK_BUILD) --print-errorlogs $(CHECK_ARGS)

check-boot: build
	tests/boot/run-matrix --build-dir $(BUILD_DIR)

SOAK_TIME ?= 600
soak: build
	tests/boot/soak --build-dir $(BUILD_DIR) --time $(SOAK_TIME) $(SOAK_ARGS)

bench: build
	$(NINJA) -C $(QEMU_BUILD) tests/qtest/virtio-restricted-dma-bench
	tests/bench/run-bench --build-dir $(BUILD_DIR) $(BENCH_ARGS)

# Only what the demo boots: the QEMU targets of its scenes (scripts/demo
# --qemu-targets; qemu-system-x86_64 alone for the default scene) and one
# guest kernel per scene, in numbered stages with their expected durations.
# DEMO_SCENES: the scenes, of x86_64 and aarch64 (empty: scripts/demo's
# default, x86_64).
DEMO_SCENES ?=
demo: assemble firmware
	@scripts/demo --build-dir $(BUILD_DIR) --ninja "$(NINJA) -C $(QEMU_BUILD)" \
	    $(if $(strip $(DEMO_SCENES)),--scenes "$(DEMO_SCENES)")

# q35's SeaBIOS (and its option ROMs) for binaries run from the build tree
firmware:
	@for d in $(FIRMWARE_DIRS); do \
	    mkdir -p $(QEMU_BUILD)/qemu-bundle$$(dirname $$d); \
	    ln -sfn $$d $(QEMU_BUILD)/qemu-bundle$$d; \
	done

export: assemble
	scripts/export-series --build-dir $(BUILD_DIR) $(BUILD_DIR)/export

checkpatch: assemble
	scripts/export-series --build-dir $(BUILD_DIR) --checkpatch $(BUILD_DIR)/export

.PHONY: all assemble firmware build fuzz-build check-build guests check \
	check-boot soak bench demo export checkpatch
endif

# make install, make uninstall (scripts/install): QEMU's own meson install,
# with PREFIX (default: the prefix QEMU was configured with, /usr/local)
# and DESTDIR as QEMU's; the fork's docs and guest tools beside it, and a
# manifest that make uninstall removes exactly.  make install first builds
# what QEMU installs beyond the two binaries (the manual and man pages,
# trace-events-all), as QEMU's own make install does; INSTALL_TAGS=runtime
# installs the binaries without building the docs.  make check-install
# runs the install and libvirt tests (tests/install) on a whole install.
PREFIX ?=
DESTDIR ?=
INSTALL_TAGS ?=
INSTALL_ARGS = --build-dir $(BUILD_DIR) $(if $(PREFIX),--prefix $(PREFIX)) \
	$(if $(DESTDIR),--destdir $(DESTDIR)) \
	$(if $(INSTALL_TAGS),--tags $(INSTALL_TAGS))

uninstall:
	scripts/install --uninstall $(INSTALL_ARGS)

ifeq ($(QEMU_BUILD),)
install install-build check-install:
	@echo "$(BUILD_DIR) is not configured: run ./configure first (see README.md)" >&2
	@exit 1
else
install-build: build
	@missing="$$(scripts/install --missing $(INSTALL_ARGS))" || exit 1; \
	if [ -n "$$missing" ]; then \
	    echo "make install: building what QEMU installs besides the binaries:" $$missing; \
	    $(NINJA) -C $(QEMU_BUILD) $$missing; \
	fi

install: install-build
	scripts/install $(INSTALL_ARGS)

check-install: install-build
	$(MESON) test -C $(FORK_BUILD) --print-errorlogs --suite install \
	    --suite libvirt
endif
.PHONY: install install-build uninstall check-install
