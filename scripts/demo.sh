#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: sets up what is missing, builds the module, and boots QEMU to show it working.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
scripts/setup.sh all
make --no-print-directory modules vbus
[ -f samples/Makefile ] && make --no-print-directory -C samples
exec python3 tests/qemu/run.py --mode demo
