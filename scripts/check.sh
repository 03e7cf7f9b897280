#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: every test the project has, in order:
#   setup      packages, bindgen, the cached kernels, the armhf userland and QEMU for the
#              Aspeed machines (no-ops when present)
#   host       cargo test on the core-only protocol files
#   fuzz       a short libFuzzer run of each target on the same files (scripts/fuzz.sh --check)
#   rustfmt    formatting of every Rust file
#   dt         the ipmb-dev binding checked with dtschema, and the test DTs against it
#   clippy     the module built with clippy-driver, warnings as errors (this is the module build)
#   dkms       dkms.conf: `dkms add` + `dkms build` against the cached kernel, in a private tree
#   samples    the userspace programs under samples/, when present (x86 and static armhf)
#   qemu       the test kernel booted under QEMU: KUnit suites, e2e tests, kernel-log checks;
#              meanwhile, in the background, the ARM kernel on the AST2600 machines
#              (ast2600-evb, then bletchley-bmc), whose output follows the x86 run
# The last line is "N passed, N failed"; the exit status is non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p build
passed=0
failed=0
t0=$SECONDS

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
static_check() { # name, command...
	local name=$1 start=$SECONDS
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok: $name ($((SECONDS - start)) s)"
	else
		failed=$((failed + 1))
		echo "FAILED: $name"
	fi
}

step "setup"
if ! scripts/setup.sh all; then
	echo "FAILED: setup"
	echo "0 passed, 1 failed"
	exit 1
fi

step "host tests (cargo test)"
host_log=build/host-test.log
cargo test --manifest-path tests/host/Cargo.toml 2>&1 | tee "$host_log"
hp=$(awk '/^test result:/{s += $4} END{print s + 0}' "$host_log")
hf=$(awk '/^test result:/{s += $6} END{print s + 0}' "$host_log")
if ! grep -q '^test result:' "$host_log"; then hf=$((hf + 1)); fi
passed=$((passed + hp))
failed=$((failed + hf))
echo "host: $hp passed, $hf failed"

step "fuzz: libFuzzer on rust/proto/, short run (scripts/fuzz.sh --check)"
fuzz_log=build/fuzz-check.log
scripts/fuzz.sh --check 2>&1 | tee "$fuzz_log"
fline=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$fuzz_log" | tail -n1)
if [ -n "$fline" ]; then
	passed=$((passed + $(echo "$fline" | awk '{print $2}')))
	failed=$((failed + $(echo "$fline" | awk '{print $4}')))
else
	failed=$((failed + 1))
fi

step "harness self-tests (KTAP parser)"
ktap_log=build/ktap-test.log
python3 -m unittest tests/qemu/test_ktap.py 2>&1 | tee "$ktap_log"
kn=$(awk '/^Ran [0-9]+ test/{print $2}' "$ktap_log")
kf=$(grep -oE 'failures=[0-9]+|errors=[0-9]+' "$ktap_log" | awk -F= '{s += $2} END{print s + 0}')
[ -n "$kn" ] || { kn=1; kf=1; }
passed=$((passed + kn - kf))
failed=$((failed + kf))

step "rustfmt"
static_check rustfmtcheck scripts/rustfmt.sh --check

step "device tree binding (dtschema): the schema, its example, the test machines' nodes"
static_check "dt binding" scripts/dt-check.sh

step "module builds: ipmb.ko and the test bus (clippy, warnings are errors)"
static_check "clippy build" make --no-print-directory clippy
static_check "ipmi_ipmb.ko with tests/kernel/ipmi_ipmb-use-after-free.patch" \
	make --no-print-directory ipmi-ipmb

step "dkms: dkms.conf built by Debian's dkms against the cached kernel (private DKMS tree)"
static_check "dkms build" scripts/dkms-check.sh

step "uapi: C programs on include/uapi/linux/ipmb.h (64-bit and -m32)"
static_check "uapi probes build" make --no-print-directory uapi-probes

if [ -f samples/Makefile ]; then
	step "samples"
	static_check "samples build" make --no-print-directory -C samples
	static_check "samples build (armhf)" make --no-print-directory -C samples arm
fi

# qemu_count LOG: adds the counts of a boot's closing line (a boot without one failed).
qemu_count() {
	local line qp=0 qf=1
	line=$(grep -E '^qemu: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n1)
	if [ -n "$line" ]; then
		qp=$(echo "$line" | awk '{print $2}')
		qf=$(echo "$line" | awk '{print $4}' | tr -d ,)
	fi
	passed=$((passed + qp))
	failed=$((failed + qf))
}

# The Aspeed machines boot one after the other in the background while the x86 guest runs:
# TCG guests spend much of their time waiting (timers, bus pacing, sleeps in the tests), so
# the two runs share the two cores well. Their output is shown when the x86 run is done.
ARM_MACHINES=(ast2600-evb bletchley-bmc)
arm_runs() {
	local machine
	for machine in "${ARM_MACHINES[@]}"; do
		python3 tests/qemu/run.py --mode check --machine "$machine" >"build/qemu-$machine.log" 2>&1
	done
}
arm_pid=
if [ -f build/arm/ipmb.ko ] && [ -f build/arm/samples/ipmb-raw ]; then
	arm_runs &
	arm_pid=$!
fi

step "QEMU x86_64: KUnit + e2e"
if [ -f ipmb.ko ] && [ -f tests/vbus/i2c_vbus.ko ]; then
	python3 tests/qemu/run.py --mode check 2>&1 | tee build/qemu-check.log
	qemu_count build/qemu-check.log
else
	echo "FAILED: ipmb.ko or tests/vbus/i2c_vbus.ko not built"
	failed=$((failed + 1))
fi

if [ -n "$arm_pid" ]; then
	wait "$arm_pid"
	for machine in "${ARM_MACHINES[@]}"; do
		step "QEMU $machine (ARM): KUnit + e2e"
		cat "build/qemu-$machine.log"
		qemu_count "build/qemu-$machine.log"
	done
else
	echo "FAILED: build/arm/ipmb.ko or build/arm/samples not built"
	failed=$((failed + 1))
fi

echo
echo "make check took $((SECONDS - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
