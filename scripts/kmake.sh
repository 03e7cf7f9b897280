#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs kbuild for the out-of-tree module: against $KDIR when given (a user's own Rust-enabled
# kernel build tree), otherwise against the project's cached test kernel for $ARCH (x86 by
# default, or arm: the AST2600 BMC kernel), built on demand by scripts/setup.sh. Objects go to
# build/<arch>/ (Kbuild's MO=), so x86 and ARM builds of one tree never mix; the x86 modules
# are then copied next to their sources (./ipmb.ko, tests/vbus/i2c_vbus.ko), where the tests
# and `insmod` instructions expect them. Extra arguments are passed to make.
# IPMB_KERNEL=bench builds against the bench kernel of $ARCH instead (no debugging; `make
# bench`), into build/x86-bench/ or build/arm-bench/, and copies nothing next to the sources.
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
	"" | x86 | x86_64)
		if [ "${IPMB_KERNEL:-}" = bench ]; then
			"$ROOT/scripts/setup.sh" kernel-bench; envfile=$CACHE/env-bench
		else
			"$ROOT/scripts/setup.sh" kernel; envfile=$CACHE/env
		fi
		;;
	arm)
		if [ "${IPMB_KERNEL:-}" = bench ]; then
			"$ROOT/scripts/setup.sh" kernel-bench-arm; envfile=$CACHE/env-arm-bench
		else
			"$ROOT/scripts/setup.sh" kernel-arm; envfile=$CACHE/env-arm
		fi
		;;
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
[ -n "${ARCH:-}" ] && args+=(ARCH="$ARCH")
case "${ARCH:-$(uname -m)}" in
x86 | x86_64 | i386) dir=x86 ;;
*) dir=$ARCH ;;
esac
[ "${IPMB_KERNEL:-}" = bench ] && dir=$dir-bench
out=$ROOT/build/$dir${SRC#"$ROOT"}
mkdir -p "$out"
args+=(MO="$out")
# A tree built in place by an older version of this script: Kbuild refuses MO= until it is clean.
if [ -f "$SRC/modules.order" ]; then
	echo "kmake.sh: removing the in-place build of $SRC (objects now go to build/<arch>/)" >&2
	make -C "$KDIR" M="$SRC" "${args[@]:0:${#args[@]}-1}" clean >/dev/null
fi
make -C "$KDIR" M="$SRC" "${args[@]}" "$@"
if [ "$dir" = x86 ]; then
	case " $* " in
	*" clean "*) rm -f "$SRC"/*.ko ;;
	*) find "$out" -maxdepth 1 -name '*.ko' -exec cp -p {} "$SRC/" \; ;;
	esac
fi
