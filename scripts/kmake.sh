#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs kbuild for the out-of-tree module: against $KDIR when given (a user's own Rust-enabled
# kernel build tree), otherwise against the project's cached test kernel for $ARCH (x86 by
# default, or arm: the AST2600 BMC kernel), built on demand by scripts/setup.sh. ARM objects
# go to build/arm/ (Kbuild's MO=), so x86 and ARM builds of one tree never mix. Extra
# arguments are passed to make.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
ARCH=${ARCH:-}
# An empty ARCH in the environment would defeat kbuild's own default (ARCH ?= SUBARCH).
[ -n "$ARCH" ] || unset ARCH
SRC=${M:-$ROOT}

args=()
if [ -z "${KDIR:-}" ]; then
	case "${ARCH:-}" in
	"" | x86 | x86_64) "$ROOT/scripts/setup.sh" kernel; envfile=$CACHE/env ;;
	arm) "$ROOT/scripts/setup.sh" kernel-arm; envfile=$CACHE/env-arm ;;
	*) echo "kmake.sh: no cached kernel for ARCH=$ARCH (x86 or arm)" >&2; exit 1 ;;
	esac
	# shellcheck disable=SC1090
	. "$envfile"
	export LIBCLANG_PATH
	args+=(LLVM="$LLVM" RUST_LIB_SRC="$RUST_LIB_SRC")
else
	args+=(LLVM="${LLVM:-1}")
	[ -n "${RUST_LIB_SRC:-}" ] && args+=(RUST_LIB_SRC="$RUST_LIB_SRC")
fi
if [ -n "${ARCH:-}" ]; then
	args+=(ARCH="$ARCH")
	case "$ARCH" in
	x86 | x86_64) ;;
	*)
		out=$ROOT/build/$ARCH${SRC#"$ROOT"}
		mkdir -p "$out"
		args+=(MO="$out")
		;;
	esac
fi
exec make -C "$KDIR" M="$SRC" "${args[@]}" "$@"
