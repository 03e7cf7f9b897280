#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the kernel's ipmi_ipmb.ko with tests/kernel/ipmi_ipmb-use-after-free.patch applied, as
# an external module, for the tests that use the in-tree IPMI stack (test_ipmitool.py, the
# bench's /dev/ipmi0 path): unpatched, its transmit thread reads a request after the receive
# side may have freed it (a KASAN report in the test guest). The source is the cached kernel's
# (KSRC in the cached kernel's env file), copied to build/ipmi-ipmb/ and patched there; the
# module goes where scripts/kmake.sh puts external modules (for x86 also build/ipmi-ipmb/).
#
# Usage: scripts/ipmi-ipmb.sh [make args]   (ARCH=arm for the ARM kernel, IPMB_KERNEL=bench
# for the bench kernel of ARCH)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
# The kernel scripts/kmake.sh builds against: its setup step and env file.
case "${ARCH:-x86}-${IPMB_KERNEL:-test}" in
arm-bench) step=kernel-bench-arm envfile=$CACHE/env-arm-bench ;;
arm-*) step=kernel-arm envfile=$CACHE/env-arm ;;
*-bench) step=kernel-bench envfile=$CACHE/env-bench ;;
*) step=kernel envfile=$CACHE/env ;;
esac
"$ROOT/scripts/setup.sh" "$step" >/dev/null
KSRC=$(sed -n 's/^KSRC=//p' "$envfile")
src=$ROOT/build/ipmi-ipmb
patch=$ROOT/tests/kernel/ipmi_ipmb-use-after-free.patch
mkdir -p "$src"
# Rewritten only when the kernel's file or the patch changed, so make does not rebuild it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$KSRC/drivers/char/ipmi/ipmi_ipmb.c" "$tmp/ipmi_ipmb.c"
patch --quiet --no-backup-if-mismatch "$tmp/ipmi_ipmb.c" "$patch"
cmp -s "$tmp/ipmi_ipmb.c" "$src/ipmi_ipmb.c" || cp "$tmp/ipmi_ipmb.c" "$src/ipmi_ipmb.c"
echo "obj-m := ipmi_ipmb.o" >"$src/Kbuild"
M=$src exec "$ROOT/scripts/kmake.sh" "${@:-modules}"
