# SPDX-License-Identifier: GPL-2.0
#
# ipmb: out-of-tree Rust kernel module. Common targets:
#
#   make                  build ipmb.ko (against the project's cached kernel, built on demand)
#   make KDIR=/path/to/kernel/build    build against your own Rust-enabled kernel tree
#   make ARCH=arm         build build/arm/ipmb.ko for the AST2600 BMC (cached ARM kernel)
#   make check            all tests: host, module build (clippy, rustfmt), QEMU (KUnit + e2e)
#   make demo             boot QEMU and show two IPMB nodes talking
#   make samples          samples/ipmb-raw and samples/ipmb-responder
#   make samples-arm      the same, static armhf, in build/arm/samples/ (for the ARM guest)
#   make bench            ipmb.ko against the C driver on the bench kernel, same boot, on x86 and
#                         the AST2600 (BENCH_MACHINES): table side by side and plot in build/bench/
#   make fuzz             libFuzzer on rust/proto/ (frame, assembler, ring, seqtab), each against
#                         a reference model: FUZZ_RUNS executions per target (default 10 million)
#   make soak             SOAK_S seconds (default 600) of traffic, bus faults and unbind/rmmod
#                         cycles on the x86 debug kernel with exact per-instance accounts, then
#                         a million fuzzed ioctl/file calls (make check runs 60 s of it)
#   make clippy           build ipmb.ko and the test bus with clippy for x86 and ARM (or only
#                         $(ARCH) with KDIR), warnings are errors; IPMB_KERNEL=bench: against
#                         the bench kernels (no KUnit, the module's non-test configuration)
#   make vbus             build the virtual I2C bus module the tests use
#   make ipmi-ipmb        the kernel's ipmi_ipmb.ko with its use-after-free fix, for the tests
#   make rustfmtcheck     check formatting (rustfmt with the kernel's settings)
#   make modules_install  install into /lib/modules (INSTALL_MOD_PATH honoured)
#   make setup            install packages and build the cached kernel only
#   make clean
#
# The cache lives in $(IPMB_CACHE) (default ~/.cache/ipmb).

SHELL := /bin/bash
export KDIR
# x86 (default) or arm; ARM objects go to build/arm/ (see scripts/kmake.sh).
export ARCH
HOME ?= $(shell getent passwd "$$(id -u)" | cut -d: -f6)
export IPMB_CACHE ?= $(HOME)/.cache/ipmb

KMAKE := scripts/kmake.sh
RUST_SOURCES = $(shell find rust tests -name '*.rs' -not -path '*/target/*')

VBUS := M=$(CURDIR)/tests/vbus $(KMAKE)

UAPI_PROBES := build/uapi/ioctl_probe build/uapi/ioctl_probe32 build/uapi/ioctl_fuzz \
	build/uapi/ioctl_fuzz32
UAPI_CFLAGS := -Wall -Wextra -Werror -Iinclude/uapi

.PHONY: all modules vbus ipmi-ipmb uapi-probes samples samples-arm clean modules_install clippy rustfmt rustfmtcheck \
	setup host-test check demo bench fuzz soak

all: modules

modules:
	@$(KMAKE) modules

# The virtual I2C bus used by the tests and the demo (tests/vbus/i2c_vbus.ko).
vbus:
	@$(VBUS) modules

# The kernel's ipmi_ipmb.ko with tests/kernel/ipmi_ipmb-use-after-free.patch, for the tests of
# the in-tree IPMI stack (build/ipmi-ipmb/ipmi_ipmb.ko; scripts/ipmi-ipmb.sh).
ipmi-ipmb:
	@scripts/ipmi-ipmb.sh

# Userspace programs the e2e tests run in the guest: the uapi header used from C, 64-bit and
# 32-bit (compat ioctls).
uapi-probes: $(UAPI_PROBES)

# One program per tests/uapi/*.c: native, and -m32 (suffix 32).
build/uapi/%32: tests/uapi/%.c include/uapi/linux/ipmb.h
	@mkdir -p build/uapi
	$(CC) $(UAPI_CFLAGS) -m32 -O2 -o $@ $<

build/uapi/%: tests/uapi/%.c include/uapi/linux/ipmb.h
	@mkdir -p build/uapi
	$(CC) $(UAPI_CFLAGS) -O2 -o $@ $<

clean:
	@$(KMAKE) clean
	@$(VBUS) clean
	@$(MAKE) --no-print-directory -C samples clean
	rm -rf build tests/host/target fuzz/target

modules_install:
	@$(KMAKE) modules_install

# Rebuilds every object with clippy-driver; any warning (rustc, clippy, objtool, modpost)
# fails the target.
CLIPPY_ARCHS := $(if $(KDIR),$(or $(ARCH),native),x86 arm)

clippy:
	@mkdir -p build
	@: >build/clippy.log
	@set -e; for a in $(CLIPPY_ARCHS); do \
		[ "$$a" = native ] && a=; \
		echo "== clippy: $${a:-$$(uname -m)}" | tee -a build/clippy.log; \
		ARCH=$$a $(KMAKE) CLIPPY=1 -B modules 2>&1 | tee -a build/clippy.log; \
		test $${PIPESTATUS[0]} -eq 0; \
		ARCH=$$a $(VBUS) CLIPPY=1 -B modules 2>&1 | tee -a build/clippy.log; \
		test $${PIPESTATUS[0]} -eq 0; \
	done
	@if grep -q 'warning' build/clippy.log; then echo "clippy: warnings (see above)"; exit 1; fi

setup:
	@scripts/setup.sh all

rustfmt:
	@scripts/rustfmt.sh

rustfmtcheck:
	@scripts/rustfmt.sh --check

host-test:
	cargo test --manifest-path tests/host/Cargo.toml

check:
	@scripts/check.sh

# Coverage-guided fuzzing of the core-only protocol code (scripts/fuzz.sh; FUZZ_RUNS=N).
fuzz:
	@scripts/fuzz.sh

demo:
	@scripts/demo.sh

# The userspace programs on the uapi header (samples/ipmb-raw, samples/ipmb-responder).
samples:
	@$(MAKE) --no-print-directory -C samples

samples-arm:
	@$(MAKE) --no-print-directory -C samples arm

# The soak and the guest ioctl fuzzer (tests/e2e/test_soak.py) on the x86 debug kernel, or
# with SOAK_MACHINE=ast2600-evb on the ARM kernel (the ARM builds travel in its initramfs).
SOAK_S ?= 600
# The soak runs on past SOAK_S until it has done its cycles, at most SOAK_LIMIT_S seconds
# (0: 8 times SOAK_S).
SOAK_LIMIT_S ?= 0
SOAK_MACHINE ?= x86
ARM_CC ?= clang-19 --target=arm-linux-gnueabihf -march=armv7-a -mfpu=vfpv3-d16 \
	-mfloat-abi=hard -fuse-ld=lld

build/arm/uapi/ioctl_fuzz: tests/uapi/ioctl_fuzz.c include/uapi/linux/ipmb.h
	@mkdir -p build/arm/uapi
	$(ARM_CC) $(UAPI_CFLAGS) -O2 -static -o $@ $<

ifeq ($(SOAK_MACHINE),x86)
soak: modules vbus uapi-probes
	@python3 tests/qemu/run.py --mode check --soak-seconds $(SOAK_S) \
		--soak-limit $(SOAK_LIMIT_S) --timeout $$(( $(SOAK_S) * 10 + 1800 )) \
		--e2e-args "--filter soak"
else
soak: build/arm/uapi/ioctl_fuzz
	@ARCH=arm $(KMAKE) modules && ARCH=arm $(VBUS) modules && $(MAKE) --no-print-directory samples-arm
	@python3 tests/qemu/run.py --mode check --machine $(SOAK_MACHINE) --soak-seconds $(SOAK_S) \
		--soak-limit $(SOAK_LIMIT_S) --timeout $$(( $(SOAK_S) * 10 + 1800 )) \
		--e2e-args "--dir tests/e2e --machine $(SOAK_MACHINE) --filter soak"
endif

# ipmb.ko against ipmb_dev_int.ko in the same boot of the bench kernel (built on demand,
# without the test kernel's debugging), one boot per machine of BENCH_MACHINES (x86 and the
# AST2600 by default): the table of both side by side and the plot go to build/bench/.
# Asserts nothing.
BENCH_MACHINES ?= x86 ast2600-evb
# Arguments of tests/bench.py, e.g. BENCH_ARGS="--only rtt --rounds 3" for work on (d).
BENCH_ARGS ?=
BENCH_CFLAGS := -Wall -Wextra -Werror -O2 -Iinclude/uapi
# Debian's python3 has Debian's python3-matplotlib (scripts/setup.sh kernel-bench).
BENCH_PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)

build/bench/ipmb-bench: tests/bench/ipmb-bench.c include/uapi/linux/ipmb.h
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) -pthread -o $@ $<

build/arm/bench/ipmb-bench: tests/bench/ipmb-bench.c include/uapi/linux/ipmb.h
	@mkdir -p build/arm/bench
	$(ARM_CC) $(BENCH_CFLAGS) -static -pthread -o $@ $<

# What the guest runs besides the modules: ipmb-responder and ipmb-bench, x86 or static armhf.
bench: $(if $(filter x86,$(BENCH_MACHINES)),samples build/bench/ipmb-bench) \
	$(if $(filter-out x86,$(BENCH_MACHINES)),samples-arm build/arm/bench/ipmb-bench)
	@set -e; for m in $(BENCH_MACHINES); do \
		a=; [ "$$m" = x86 ] || a=arm; \
		ARCH=$$a IPMB_KERNEL=bench KDIR= $(KMAKE) modules; \
		ARCH=$$a IPMB_KERNEL=bench KDIR= $(VBUS) modules; \
		ARCH=$$a IPMB_KERNEL=bench KDIR= scripts/ipmi-ipmb.sh; \
	done
	@set -e; for m in $(BENCH_MACHINES); do \
		python3 tests/qemu/run.py --mode bench --machine $$m --timeout 3600 \
			$(if $(BENCH_ARGS),--e2e-args "$(BENCH_ARGS)"); \
	done
	@$(BENCH_PYTHON) tests/bench_report.py \
		$(foreach m,$(BENCH_MACHINES),build/qemu/$(if $(filter x86,$(m)),,$(m)-)bench-console.log) \
		build/bench
