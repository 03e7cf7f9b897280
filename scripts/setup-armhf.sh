#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The userland of the ARM (AST2600) test guest, idempotently: busybox and Python 3.11 from
# Debian bookworm armhf, fetched through apt with private state (nothing is installed on the
# host), unpacked, trimmed to what the e2e tests use, and byte-compiled on the host so the
# guest never compiles the standard library under TCG (bytecode only, no sources).
#
# The result is a directory tree $IPMB_CACHE/armhf/rootfs-<key> (key: the resolved package
# versions and this script), described in $IPMB_CACHE/env-armhf:
#   ARMHF_ROOT   the tree: bin/busybox, usr/bin/python3, usr/lib/python3.11, the shared
#                libraries Python's remaining extension modules need, lib -> usr/lib
#   ARMHF_KEY    its key
# tests/qemu/run.py copies the tree into the initramfs of the ARM guest.
#
# Package versions are resolved once and kept (as setup.sh does for the kernel sources);
# `scripts/setup-armhf.sh --update` resolves them again against the mirror.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

APT_NAME=bookworm-armhf
PY=python3.11
WANT=(busybox-static "$PY-minimal" "lib$PY-minimal" "lib$PY-stdlib")
# Host Python that byte-compiles the guest's standard library: same minor version, so the
# same bytecode magic.
HOST_PY=/usr/bin/$PY

# Parts of the standard library the tests never use: tests, tools, GUI, network protocols,
# document formats, databases, terminals, CJK codecs (and with them ncurses, readline,
# OpenSSL, Kerberos, Berkeley DB, SQLite, libcrypt). What stays: everything a test can use
# to drive devices and processes (os, ctypes, struct, fcntl, select, signal, threading,
# subprocess, multiprocessing, concurrent, argparse, traceback, unittest, json, ...).
TRIM_DIRS=(test idlelib tkinter turtledemo ensurepip lib2to3 pydoc_data distutils venv
	sqlite3 dbm curses asyncio email http xml xmlrpc wsgiref html tomllib zoneinfo
	config-3.11-arm-linux-gnueabihf site-packages dist-packages)
TRIM_FILES=(turtle.py pydoc.py)
TRIM_DYNLOAD=(_sqlite3 _dbm _gdbm _curses _curses_panel readline _ssl _hashlib nis _tkinter
	_asyncio _crypt _lsprof _zoneinfo audioop ossaudiodev _xxsubinterpreters _xxtestfuzz
	_codecs_cn _codecs_hk _codecs_iso2022 _codecs_jp _codecs_kr _codecs_tw
	_test _xxtest xxlimited xxlimited_35 _ctypes_test _testbuffer _testcapi _testclinic
	_testimportmultiple _testinternalcapi _testmultiphase)

DIR=$CACHE/armhf
ENV_FILE=$CACHE/env-armhf
SELF_HASH=$(sha256sum "$0" | cut -c1-16)

# Prints "pkg=version arch" for the closure of WANT in the armhf index, sorted.
resolve() {
	apt_private_update "$APT_NAME" bookworm armhf
	# shellcheck disable=SC2046
	apt-get $(apt_opts "$APT_NAME" armhf) install -s -y --no-install-recommends "${WANT[@]}" |
		sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([a-z0-9]*\)\].*/\1=\2 \3/p' | sort
}

# fetch PKG VER ARCH: the .deb in $CACHE/debs, downloaded once.
fetch() {
	local pkg=$1 ver=$2 arch=$3 dest=$CACHE/debs file
	mkdir -p "$dest"
	file=$dest/${pkg}_${ver//:/%3a}_$arch.deb
	if [ ! -f "$file" ]; then
		say "armhf: downloading $pkg $ver"
		# shellcheck disable=SC2046
		(cd "$dest" && apt-get $(apt_opts "$APT_NAME" armhf) download -q "$pkg=$ver") >&2
		[ -f "$file" ] || die "apt-get download $pkg=$ver did not produce $file"
	fi
	echo "$file"
}

# The DT_NEEDED entries of an ELF file (nothing for other files).
needed() {
	readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

build() {
	local list=$1 key=$2 out=$DIR/rootfs-$2 stage=$DIR/stage-$$ tmp=$DIR/tmp-rootfs-$$
	local line pkg ver arch deb lib
	[ -x "$HOST_PY" ] || die "$HOST_PY is needed to byte-compile the guest's Python"
	rm -rf "$stage" "$tmp"
	mkdir -p "$stage" "$tmp"
	trap 'rm -rf "$stage" "$tmp"' EXIT
	while read -r line; do
		pkg=${line%%=*}
		ver=${line#*=}
		arch=${ver#* }
		ver=${ver% *}
		# Architecture-independent packages hold data only (MIME types, terminfo, config).
		[ "$arch" = armhf ] || continue
		deb=$(fetch "$pkg" "$ver" "$arch")
		dpkg-deb -x "$deb" "$stage"
	done <<<"$list"

	say "armhf: assembling the guest userland"
	# Merged /usr: the packages still ship /lib and /bin; the guest gets lib -> usr/lib.
	mkdir -p "$tmp/bin" "$tmp/usr/bin" "$tmp/usr/lib/arm-linux-gnueabihf"
	ln -s usr/lib "$tmp/lib"
	cp "$stage/bin/busybox" "$tmp/bin/busybox"
	cp "$stage/usr/bin/$PY" "$tmp/usr/bin/$PY"
	ln -s "$PY" "$tmp/usr/bin/python3"
	cp -a "$stage/usr/lib/$PY" "$tmp/usr/lib/$PY"
	local py=$tmp/usr/lib/$PY d f
	for d in "${TRIM_DIRS[@]}"; do rm -rf "${py:?}/$d"; done
	for f in "${TRIM_FILES[@]}"; do rm -f "$py/$f"; done
	for f in "${TRIM_DYNLOAD[@]}"; do rm -f "$py/lib-dynload/$f".cpython-*.so; done
	find "$py" -name __pycache__ -prune -exec rm -rf {} +
	find "$py" -name '*.exe' -delete

	# The shared libraries the remaining ELF files need, transitively, and the loader.
	local -A have=()
	local queue=() next elf
	mapfile -t queue < <(find "$tmp" -type f \( -name '*.so' -o -path '*/bin/*' \))
	while [ ${#queue[@]} -gt 0 ]; do
		elf=${queue[0]}
		queue=("${queue[@]:1}")
		for lib in $(needed "$elf"); do
			[ -n "${have[$lib]:-}" ] && continue
			have[$lib]=1
			# The loader goes to the path in the programs' PT_INTERP, below.
			case $lib in ld-linux-*) continue ;; esac
			next=$(ls "$stage"/{lib,usr/lib}/arm-linux-gnueabihf/"$lib" 2>/dev/null | head -n1 || true)
			[ -n "$next" ] || die "armhf: $lib (needed by ${elf#"$tmp"/}) is in no package"
			cp -L "$next" "$tmp/usr/lib/arm-linux-gnueabihf/$lib"
			queue+=("$tmp/usr/lib/arm-linux-gnueabihf/$lib")
		done
	done
	cp -L "$stage/lib/ld-linux-armhf.so.3" "$tmp/usr/lib/ld-linux-armhf.so.3"

	# Byte-compile on the host, as the guest will see the files (/usr/lib/python3.11), and
	# keep the bytecode only (foo.pyc beside where foo.py was): the guest never compiles
	# under TCG, and the initramfs it unpacks at every boot is a third smaller. Tracebacks
	# through the standard library show no source lines; the tests' own files stay sources.
	"$HOST_PY" -m compileall -q -b -j0 -s "$tmp" -p / --invalidation-mode unchecked-hash \
		"$py" >/dev/null || die "armhf: byte-compiling the standard library failed"
	find "$py" -name '*.py' -delete

	rm -rf "$out"
	mv "$tmp" "$out"
	echo "$list" >"$out/.packages"
	touch "$out/.ipmb-done"
	rm -rf "$stage"
	trap - EXIT
	say "armhf: userland ready in $out ($(du -sh "$out" | cut -f1))"
}

write_env() {
	printf 'ARMHF_ROOT=%q\nARMHF_KEY=%q\nARMHF_SCRIPT=%q\n' "$DIR/rootfs-$1" "$1" "$SELF_HASH" \
		>"$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

main() {
	local update=0 list key old
	[ "${1:-}" = --update ] && update=1
	mkdir -p "$DIR"
	exec 8>"$DIR/.lock"
	flock 8
	if [ $update -eq 0 ] && [ -f "$ENV_FILE" ]; then
		# shellcheck disable=SC1090
		old=$(. "$ENV_FILE" && [ "$ARMHF_SCRIPT" = "$SELF_HASH" ] &&
			[ -f "$ARMHF_ROOT/.ipmb-done" ] && echo "$ARMHF_ROOT" || true)
		if [ -n "$old" ]; then
			say "armhf userland: present ($old)"
			return
		fi
	fi
	list=$(resolve)
	[ -n "$list" ] || die "armhf: apt resolved no packages for ${WANT[*]}"
	key=$(printf '%s\n' "$list" "script=$SELF_HASH" "host=$("$HOST_PY" -V 2>&1)" |
		sha256sum | cut -c1-12)
	if [ ! -f "$DIR/rootfs-$key/.ipmb-done" ]; then
		build "$list" "$key"
	else
		say "armhf userland: present ($DIR/rootfs-$key)"
	fi
	write_env "$key"
	# Older trees (other versions or another trim) are of no use any more.
	for old in "$DIR"/rootfs-*; do
		[ "$old" = "$DIR/rootfs-$key" ] || rm -rf "$old"
	done
}

main "$@"
