#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks dkms.conf: Debian's dkms adds the tree and builds ipmb.ko against the cached x86 test
# kernel (scripts/setup.sh kernel), in a private DKMS tree under build/dkms/: its own source
# tree (a copy of the files git knows), dkms tree, install tree and TMPDIR, so nothing goes to
# /usr/src, /var/lib/dkms or /lib/modules. The test kernel signs no modules
# (CONFIG_MODULE_SIG is off): sign_file names no program, so dkms makes no signing key either.
# Fails if PACKAGE_VERSION is not the uapi ABI version, if dkms fails, if the module it built is
# not ipmb.ko for that kernel, or if anything under /var/lib/dkms, /usr/src or /lib/modules
# changed meanwhile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
T=$ROOT/build/dkms
[ -f "$CACHE/env" ] || { echo "dkms-check: no cached x86 kernel ($CACHE/env)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$CACHE/env"
NAME=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$ROOT/dkms.conf")
VER=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$ROOT/dkms.conf")
ABI=$(sed -n 's/^#define IPMB_ABI_VERSION[[:space:]]*\([0-9]*\)$/\1/p' "$ROOT/include/uapi/linux/ipmb.h")
if [ "$VER" != "$ABI" ]; then
	echo "dkms-check: dkms.conf PACKAGE_VERSION $VER is not IPMB_ABI_VERSION $ABI" >&2
	exit 1
fi
KREL=$(cat "$KDIR/include/config/kernel.release")
ARCH_DIR=$(uname -m)

rm -rf "$T"
mkdir -p "$T/src/$NAME-$VER" "$T/dkms" "$T/install" "$T/tmp"
# The source as a user would have it: the files git knows (tracked, or new and not ignored).
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -C "$T/src/$NAME-$VER" -xf -
else
	tar -C "$ROOT" --exclude=./build -cf - . | tar -C "$T/src/$NAME-$VER" -xf -
fi

system_state() {
	# A directory that does not exist (no /lib/modules in a container) is a state too.
	{ find /var/lib/dkms /usr/src /lib/modules -maxdepth 4 -printf '%p %T@\n' 2>/dev/null || true; } |
		sort
}
before=$(system_state)

trees=(--dkmstree "$T/dkms" --sourcetree "$T/src" --installtree "$T/install")
export TMPDIR=$T/tmp sign_file=/nonexistent/no-signing LLVM RUST_LIB_SRC
start=$SECONDS
fail=0
if ! dkms add -m "$NAME" -v "$VER" "${trees[@]}" >"$T/add.log" 2>&1 ||
	! dkms build -m "$NAME" -v "$VER" -k "$KREL" --kernelsourcedir "$KDIR" "${trees[@]}" \
		>"$T/build.log" 2>&1; then
	cat "$T/add.log" "$T/build.log" >&2
	find "$T/dkms" -name make.log -exec tail -n 40 {} \; >&2
	fail=1
fi
secs=$((SECONDS - start))

ko=$T/dkms/$NAME/$VER/$KREL/$ARCH_DIR/module/$NAME.ko
if [ "$fail" = 0 ]; then
	if [ ! -f "$ko" ]; then
		echo "dkms-check: dkms built no $ko" >&2
		fail=1
	elif ! modinfo -F vermagic "$ko" | grep -q "^$KREL "; then
		echo "dkms-check: $ko is not for $KREL: $(modinfo -F vermagic "$ko")" >&2
		fail=1
	fi
fi
if [ "$(system_state)" != "$before" ]; then
	echo "dkms-check: dkms wrote outside its private tree:" >&2
	diff <(echo "$before") <(system_state) >&2 || true
	fail=1
fi
[ "$fail" = 0 ] && echo "dkms-check: dkms add + build of $NAME $VER for $KREL: ok ($secs s)"
exit "$fail"
