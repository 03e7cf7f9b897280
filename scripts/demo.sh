#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: sets up what is missing, builds the module, and boots QEMU to show it working.
# `make demo MACHINE=ast2600-evb` (or bletchley-bmc): the same on QEMU's AST2600 board, with
# the ARM kernel, ipmb.ko for ARM and the QEMU IPMB peer on the board's IPMB bus.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
case "${MACHINE:-x86}" in
x86 | x86_64)
	scripts/setup.sh all
	make --no-print-directory modules vbus
	[ -f samples/Makefile ] && make --no-print-directory -C samples
	exec python3 tests/qemu/run.py --mode demo
	;;
*)
	scripts/setup.sh kernel-arm
	scripts/setup-armhf.sh
	scripts/setup-qemu.sh
	make --no-print-directory ARCH=arm modules
	make --no-print-directory -C samples arm
	exec python3 tests/qemu/run.py --mode demo --machine "$MACHINE"
	;;
esac
