#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Coverage-guided fuzzing of the core-only protocol code (rust/proto/) on the host, with
# libFuzzer through cargo-fuzz (fuzz/, targets in fuzz/src/):
#
#   scripts/fuzz.sh [TARGET...]          FUZZ_RUNS executions per target (default 10 million)
#   scripts/fuzz.sh --check [TARGET...]  FUZZ_CHECK_S seconds per target (default 6), for
#                                        `make check`
#
# Built on the stable compiler: `cargo fuzz build --sanitizer none` uses only stable codegen
# flags (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*); rust/proto/ has no
# unsafe code, so AddressSanitizer (a nightly -Z flag) would find nothing that the bounds
# and overflow checks (-O -a: optimized, debug assertions and overflow checks on) do not.
# Each target starts from the seeds in fuzz/corpus/TARGET and keeps what it finds in
# build/fuzz/corpus/TARGET; a failing input is saved in fuzz/artifacts/TARGET/ and printed.
# The last line is "fuzz: N passed, N failed" (one per target); the exit status is non-zero
# on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
export PATH=$CACHE/tools/bin:$PATH

TARGETS=(frame assembler ring seqtab)
# Longest input per target: a frame is at most 255 bytes; event streams need a few frames.
declare -A MAX_LEN=([frame]=300 [assembler]=1024 [ring]=1024 [seqtab]=512)

check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
[ $# -eq 0 ] || TARGETS=("$@")
RUNS=${FUZZ_RUNS:-10000000}
CHECK_S=${FUZZ_CHECK_S:-6}

if ! command -v cargo-fuzz >/dev/null; then
	scripts/setup.sh cargo-fuzz || exit 1
fi
FLAGS=(--fuzz-dir fuzz --sanitizer none -O -a)
echo "== building the fuzz targets (cargo fuzz build ${FLAGS[*]})"
if ! cargo fuzz build "${FLAGS[@]}"; then
	echo "FAILED: cargo fuzz build"
	echo "fuzz: 0 passed, ${#TARGETS[@]} failed"
	exit 1
fi

passed=0
failed=0
mkdir -p build/fuzz
for t in "${TARGETS[@]}"; do
	mkdir -p "build/fuzz/corpus/$t" "fuzz/artifacts/$t"
	log=build/fuzz/$t.log
	if [ $check -eq 1 ]; then
		limit=(-max_total_time="$CHECK_S")
	else
		limit=(-runs="$RUNS")
	fi
	echo "== fuzz $t: ${limit[*]}"
	start=$SECONDS
	cargo fuzz run "${FLAGS[@]}" "$t" "build/fuzz/corpus/$t" "fuzz/corpus/$t" -- \
		"${limit[@]}" -max_len="${MAX_LEN[$t]:-1024}" -print_final_stats=1 \
		-artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
	rc=$?
	execs=$(awk '/^stat::number_of_executed_units:/{print $2}' "$log")
	rate=$(awk '/^stat::average_exec_per_sec:/{print $2}' "$log")
	if [ $rc -eq 0 ] && [ -n "$execs" ]; then
		passed=$((passed + 1))
		echo "ok: fuzz $t: $execs executions in $((SECONDS - start)) s ($rate/s)"
	else
		failed=$((failed + 1))
		grep -E "panicked|assertion|Test unit written|SUMMARY" "$log" | head -n 20
		echo "FAILED: fuzz $t (exit $rc, ${execs:-?} executions; log $log)"
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
