#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs kbuild for the out-of-tree module: against $KDIR when given (a user's own Rust-enabled
# kernel build tree), otherwise against the project's cached test kernel (built on demand by
# scripts/setup.sh). Extra arguments are passed to make.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}

if [ -z "${KDIR:-}" ]; then
	"$ROOT/scripts/setup.sh" kernel
	# shellcheck disable=SC1091
	. "$CACHE/env"
	export LIBCLANG_PATH
	args=(LLVM="$LLVM" RUST_LIB_SRC="$RUST_LIB_SRC")
else
	args=(LLVM="${LLVM:-1}")
	[ -n "${RUST_LIB_SRC:-}" ] && args+=(RUST_LIB_SRC="$RUST_LIB_SRC")
fi
exec make -C "$KDIR" M="${M:-$ROOT}" "${args[@]}" "$@"
