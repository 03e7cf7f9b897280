#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds qemu-system-arm (the Aspeed BMC machines) from QEMU's source with the project's IPMB
# peer device (tests/bmc/qemu/ipmb_peer.c), idempotently:
#   - the upstream tarball of the Debian source package pinned in tests/bmc/qemu.version, from
#     bookworm-backports through apt with private state (checked against the index's SHA-256);
#   - build dependencies from the machine's own apt sources, if missing;
#   - meson, pinned, in a venv in the cache (the tarball's python/wheels is empty);
#   - a build in $IPMB_CACHE/qemu-<version>-<key>, key = version + the device and its build glue
#     + configure flags + meson; only bin/qemu-system-arm and share/qemu are kept.
# $IPMB_CACHE/env-qemu then holds QEMU_ARM, QEMU_ARM_ENV and QEMU_ARM_ARGS. When the cached
# build matches the key, nothing is done. `setup-qemu.sh packages` installs the build
# dependencies only (setup.sh all does it before starting the builds side by side).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

PEER=$ROOT/tests/bmc/qemu
GLUE=(ipmb_peer.c Kconfig meson.build trace-events ipmb-aspeed.mak)
QEMU_DEB_VERSION=$(pinned "$ROOT/tests/bmc/qemu.version")
QEMU_SRC_VERSION=${QEMU_DEB_VERSION#*:}        # 10.0.2+ds-2+deb13u1~bpo12+1
QEMU_SRC_VERSION=${QEMU_SRC_VERSION%-*}        # 10.0.2+ds
QEMU_VERSION=${QEMU_SRC_VERSION%+*}            # 10.0.2
ORIG=$CACHE/debs/qemu_${QEMU_SRC_VERSION}.orig.tar.xz

# QEMU's own pins (pythondeps.toml, group "meson").
MESON_VERSION=1.5.0
PYCOTAP_VERSION=1.3.1
PYTHON=/usr/bin/python3
VENV=$CACHE/tools/qemu-meson-$MESON_VERSION

QEMU_PACKAGES=(gcc make pkg-config ninja-build libglib2.0-dev libfdt-dev zlib1g-dev python3
	python3-venv xz-utils)

# As few features as possible: the Aspeed machines, TCG, the IPMB peer and i2c-echo.
CONFIGURE_FLAGS=(
	--target-list=arm-softmmu
	--without-default-features
	--without-default-devices --with-devices-arm=ipmb-aspeed
	--enable-fdt=system
	--enable-trace-backends=log
	--audio-drv-list=
	--disable-docs --disable-tools --disable-install-blobs --disable-download
	--disable-debug-info --disable-werror
)

step_packages() {
	ensure_packages "qemu: build dependencies" "${QEMU_PACKAGES[@]}"
}

# The orig tarball alone: the mirror may no longer have the .dsc and debian.tar.xz.
step_source() {
	if [ -f "$ORIG" ] && [ -f "$ORIG.sha256" ] &&
		(cd "$CACHE/debs" && sha256sum --quiet -c "$ORIG.sha256" 2>/dev/null); then
		say "qemu: source $(basename "$ORIG") present"
		return
	fi
	apt_private_update bookworm-bpo bookworm-backports "" deb-src
	local sources want
	# The SHA-256 of the orig tarball in the signed index's entry for the pinned version.
	# shellcheck disable=SC2046
	sources=$(apt-cache $(apt_opts bookworm-bpo) showsrc qemu)
	want=$(awk -v v="$QEMU_DEB_VERSION" -v f="$(basename "$ORIG")" '
		/^Package: / { inver = 0 }
		/^Version: / { inver = ($2 == v) }
		/^Checksums-Sha256:/ { insum = 1; next }
		/^[^ ]/ { insum = 0 }
		inver && insum && $3 == f && !found { print $1; found = 1 }' <<<"$sources")
	[ -n "$want" ] || die "qemu $QEMU_DEB_VERSION is not in bookworm-backports' sources (tests/bmc/qemu.version)"
	mkdir -p "$CACHE/debs"
	rm -f "$ORIG" "$ORIG.sha256"
	say "qemu: downloading the source of $QEMU_DEB_VERSION"
	# The .dsc and debian.tar.xz may 404; only the orig tarball is needed.
	# shellcheck disable=SC2046
	(cd "$CACHE/debs" && apt-get $(apt_opts bookworm-bpo) source --download-only \
		"qemu=$QEMU_DEB_VERSION") >&2 ||
		warn "apt-get source failed for part of the package (the orig tarball is enough)"
	[ -f "$ORIG" ] || die "no $(basename "$ORIG") was downloaded"
	echo "$want  $(basename "$ORIG")" >"$ORIG.sha256"
	(cd "$CACHE/debs" && sha256sum --quiet -c "$ORIG.sha256") ||
		{ rm -f "$ORIG" "$ORIG.sha256"; die "$(basename "$ORIG"): SHA-256 differs from the index"; }
	rm -f "$CACHE"/debs/qemu_*.dsc "$CACHE"/debs/qemu_*.debian.tar.*
}

step_meson() {
	if [ -f "$VENV/.ipmb-ok" ]; then
		say "qemu: meson $MESON_VERSION present"
		return
	fi
	say "qemu: meson $MESON_VERSION into $VENV (PyPI)"
	rm -rf "$VENV"
	"$PYTHON" -m venv "$VENV"
	"$VENV/bin/pip" install -q --disable-pip-version-check \
		"meson==$MESON_VERSION" "pycotap==$PYCOTAP_VERSION"
	touch "$VENV/.ipmb-ok"
}

write_env() {
	local args="-display none -audio none"
	[ -d "$DIR/share/qemu" ] && args="-L $DIR/share/qemu $args"
	{
		printf 'QEMU_ARM=%q\n' "$DIR/bin/qemu-system-arm"
		printf 'QEMU_ARM_ENV=%q\n' ""
		printf 'QEMU_ARM_ARGS=%q\n' "$args"
		printf 'QEMU_ARM_VERSION=%q\n' "$QEMU_VERSION"
	} >"$CACHE/env-qemu.tmp"
	if cmp -s "$CACHE/env-qemu.tmp" "$CACHE/env-qemu"; then
		rm -f "$CACHE/env-qemu.tmp"
	else
		mv "$CACHE/env-qemu.tmp" "$CACHE/env-qemu"
	fi
}

build() {
	local start=$SECONDS f devices
	step_packages
	step_source
	step_meson
	say "qemu: building $QEMU_VERSION in $DIR; log in $DIR/build.log"
	rm -rf "$DIR"
	mkdir -p "$DIR/build"
	tar -C "$DIR" -xf "$ORIG"
	mv "$DIR/qemu-$QEMU_VERSION" "$DIR/src"
	cp "$PEER/ipmb_peer.c" "$DIR/src/hw/misc/"
	cat "$PEER/Kconfig" >>"$DIR/src/hw/misc/Kconfig"
	cat "$PEER/meson.build" >>"$DIR/src/hw/misc/meson.build"
	cat "$PEER/trace-events" >>"$DIR/src/hw/misc/trace-events"
	cp "$PEER/ipmb-aspeed.mak" "$DIR/src/configs/devices/arm-softmmu/"
	# Debian's +ds tarball has no edk2 firmware, which meson would unpack if bzip2 exists.
	sed -i 's|^\(    unpack_edk2_blobs = bzip2.found()\)$|\1 and fs.exists('"'"'pc-bios/edk2-arm-code.fd.bz2'"'"')|' \
		"$DIR/src/meson.build"
	grep -q "unpack_edk2_blobs = bzip2.found() and fs.exists" "$DIR/src/meson.build" ||
		die "qemu: meson.build changed: cannot turn off the edk2 blobs"
	if ! (cd "$DIR/build" && ../src/configure --prefix="$DIR" --python="$VENV/bin/python3" \
		"${CONFIGURE_FLAGS[@]}") >"$DIR/build.log" 2>&1; then
		tail -n 30 "$DIR/build.log" >&2
		die "qemu: configure failed"
	fi
	# The emulator alone: a plain `ninja` (and `ninja install`) would also build QEMU's unit
	# tests, qtests and the softfloat test suite, about 40% of the compile steps.
	if ! (cd "$DIR/build" && nice -n 10 ninja -j2 qemu-system-arm) 2>&1 |
		tee -a "$DIR/build.log" | awk '
			/^\[[0-9]+\/[0-9]+\]/ { n++; if (n % 300 == 0) { printf "[setup] qemu: %s\n", $1; fflush() } }
			/error:|FAILED:/ { print; fflush() }'; then
		tail -n 40 "$DIR/build.log" >&2
		die "qemu: build failed"
	fi
	# Only the emulator is kept, with an empty data directory of its own for -L (the Aspeed
	# machines load no firmware; the system's QEMU data must not be picked up instead).
	mkdir -p "$DIR/bin" "$DIR/share/qemu"
	mv "$DIR/build/qemu-system-arm" "$DIR/bin/"
	rm -rf "$DIR/src" "$DIR/build"
	devices=$("$DIR/bin/qemu-system-arm" -M ast2600-evb -display none -device help 2>&1 || true)
	grep -q '"ipmb-peer"' <<<"$devices" || die "qemu: the built qemu-system-arm has no ipmb-peer device"
	echo "$KEY" >"$DIR/.ipmb-key"
	say "qemu: built in $((SECONDS - start)) s ($(du -sh "$DIR" | cut -f1) kept)"
}

case "${1:-}" in
"") ;;
packages) step_packages; exit 0 ;;
*) die "usage: $0 [packages]" ;;
esac

mkdir -p "$CACHE"
# One QEMU setup at a time per cache.
exec 8>"$CACHE/.lock-qemu"
flock 8

KEY=$(
	printf 'qemu=%s\nmeson=%s\nflags=%s\n' "$QEMU_DEB_VERSION" "$MESON_VERSION" "${CONFIGURE_FLAGS[*]}"
	for f in "${GLUE[@]}"; do
		printf '%s=%s\n' "$f" "$(sha256sum <"$PEER/$f" | cut -c1-16)"
	done
)
DIR=$CACHE/qemu-$QEMU_VERSION-$(echo "$KEY" | sha256sum | cut -c1-12)

if [ -f "$DIR/.ipmb-key" ] && [ "$(cat "$DIR/.ipmb-key")" = "$KEY" ] &&
	[ -x "$DIR/bin/qemu-system-arm" ]; then
	say "qemu: cached in $DIR"
	write_env
	exit 0
fi
# Builds that never finished (no key file) are of no use: reclaim their space.
for stale in "$CACHE"/qemu-*; do
	[ -d "$stale" ] && [ ! -f "$stale/.ipmb-key" ] && [ "$stale" != "$DIR" ] &&
		say "qemu: removing unfinished build $stale" && rm -rf "$stale"
done
build
write_env
