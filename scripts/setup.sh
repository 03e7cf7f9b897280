#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs and builds everything the project needs, idempotently:
#   packages  Debian packages from the machine's own apt configuration
#   bindgen   bindgen-cli, pinned, with `cargo install --locked`
#   cargo-fuzz  cargo-fuzz, pinned (fuzz/cargo-fuzz.version), the same way, for `make fuzz`
#   sources   linux-source-7.2 and the rust-src matching `rustc --version`, from Debian's
#             trixie-backports suite, through apt with private state directories
#   kernel    the x86 test kernel, configured from tests/kernel/config.fragment, in a cache
#             outside the clone keyed by kernel version + fragment + rustc + bindgen
#   kernel-arm  the same for the AST2600 BMC (ARCH=arm, tests/kernel/arm.fragment), with the
#             Aspeed device trees
#   kernel-bench  the x86 bench kernel (make bench): the test kernel's configuration without its
#             debugging (tests/kernel/bench.fragment), cached beside it; not part of `all`
#   kernel-bench-arm  the same for the ARM test kernel
#   qemu      QEMU 10.0.2 for ARM with the project's ipmb-peer device (scripts/setup-qemu.sh)
#   armhf     busybox and Python for the ARM guest (scripts/setup-armhf.sh)
#   clients   the real IPMI clients the e2e tests drive: python-ipmi, pinned, from PyPI into a
#             venv in the cache (ipmitool and dkms are Debian packages, in `packages`)
#   all       all of the above (the default)
#
# Each step does nothing when its result is already there. The cache lives in $IPMB_CACHE
# (default ~/.cache/ipmb). The result is described in $IPMB_CACHE/env, a shell fragment with
# KDIR, KSRC, RUST_LIB_SRC, LLVM, BINDGEN and LIBCLANG_PATH, which scripts/kmake.sh reads.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
LLVM_SUFFIX=-19
JOBS=$(($(nproc) + 1))

# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

HOST_PACKAGES=(
	clang-19 lld-19 llvm-19 libclang-19-dev
	make flex bison bc libelf-dev libssl-dev cpio xz-utils kmod
	busybox-static qemu-system-x86 gcc gcc-multilib python3
	# libFuzzer's C++ runtime, built by libfuzzer-sys for `make fuzz`.
	g++
	# The ARM guest's C programs (samples), static armhf, built with clang-19: armhf libc and
	# libgcc only, since gcc-arm-linux-gnueabihf and gcc-multilib conflict in Debian.
	libc6-dev-armhf-cross libgcc-12-dev-armhf-cross
	# Real clients and packaging, tested by make check: ipmitool through the kernel's
	# ipmi_ipmb, dkms building the module from dkms.conf, and the venv of python-ipmi.
	ipmitool dkms python3-venv
)

step_packages() {
	ensure_packages "Debian packages" "${HOST_PACKAGES[@]}"
}

# What `make bench` needs on top: the plot of build/bench/.
BENCH_PACKAGES=(python3-matplotlib)

BINDGEN_VERSION=$(pinned "$ROOT/tests/kernel/bindgen.version")
BINDGEN=$CACHE/tools/bin/bindgen
export LIBCLANG_PATH=/usr/lib/llvm$LLVM_SUFFIX/lib

step_bindgen() {
	if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		say "bindgen $BINDGEN_VERSION: present"
		return
	fi
	say "bindgen $BINDGEN_VERSION: cargo install --locked (takes about 2 minutes)"
	cargo install --locked --root "$CACHE/tools" bindgen-cli --version "$BINDGEN_VERSION"
}

CARGO_FUZZ_VERSION=$(pinned "$ROOT/fuzz/cargo-fuzz.version")

step_cargo_fuzz() {
	local bin=$CACHE/tools/bin/cargo-fuzz
	if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
		say "cargo-fuzz $CARGO_FUZZ_VERSION: present"
		return
	fi
	say "cargo-fuzz $CARGO_FUZZ_VERSION: cargo install --locked (takes about 2 minutes)"
	cargo install --locked --root "$CACHE/tools" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
}

# python-ipmi (its `ipmbdev` interface opens /dev/ipmb-N), pinned, in a venv in the cache that
# the x86 guest runs from the host's root; recorded in $CACHE/env-clients. The venv is made
# with Debian's Python, the one the guest runs the tests with; the pip of the machine's own
# configuration fetches python-ipmi. A stamp names a finished install and what made it.
PYTHON_IPMI_VERSION=0.6.1
PYTHON_IPMI_VENV=$CACHE/tools/python-ipmi-$PYTHON_IPMI_VERSION

step_clients() {
	local stamp="python-ipmi==$PYTHON_IPMI_VERSION python=/usr/bin/python3"
	if [ "$(cat "$PYTHON_IPMI_VENV/.installed" 2>/dev/null)" = "$stamp" ]; then
		say "python-ipmi $PYTHON_IPMI_VERSION: present"
	else
		say "python-ipmi $PYTHON_IPMI_VERSION: installing into $PYTHON_IPMI_VENV"
		rm -rf "$PYTHON_IPMI_VENV"
		/usr/bin/python3 -m venv "$PYTHON_IPMI_VENV"
		"$PYTHON_IPMI_VENV/bin/pip" install --quiet "python-ipmi==$PYTHON_IPMI_VERSION"
		echo "$stamp" >"$PYTHON_IPMI_VENV/.installed"
	fi
	{
		printf 'PYTHON_IPMI_VERSION=%q\n' "$PYTHON_IPMI_VERSION"
		printf 'PYTHON_IPMI_PYTHON=%q\n' "$PYTHON_IPMI_VENV/bin/python3"
	} >"$CACHE/env-clients.tmp"
	mv "$CACHE/env-clients.tmp" "$CACHE/env-clients"
}

RUSTC_VERSION=$(rustc --version | awk '{print $2}')

# Sets KVER (Debian version of linux-source-7.2) and RSVER (rust-src), resolving them from the
# pinned file and rustc, with the index only when a choice has to be made.
resolve_versions() {
	local want
	want=$(pinned "$ROOT/tests/kernel/linux.version")
	if [ -f "$CACHE/resolved" ] && grep -qx "want=$want rustc=$RUSTC_VERSION" "$CACHE/resolved.key" 2>/dev/null; then
		# shellcheck disable=SC1091
		. "$CACHE/resolved"
		return
	fi
	apt_private_update trixie trixie-backports
	if madison trixie linux-source-7.2 | grep -qxF "$want"; then
		KVER=$want
	else
		KVER=$(madison trixie linux-source-7.2 | sort -V | tail -n1)
		[ -n "$KVER" ] || die "the mirror offers no linux-source-7.2"
		warn "linux-source-7.2 $want is no longer on the mirror; falling back to $KVER"
	fi
	RSVER=$(madison trixie rust-src | grep "^$RUSTC_VERSION+" | sort -V | tail -n1 || true)
	[ -n "$RSVER" ] || die "no rust-src $RUSTC_VERSION in trixie-backports (rustc is $RUSTC_VERSION)"
	printf 'KVER=%q\nRSVER=%q\n' "$KVER" "$RSVER" >"$CACHE/resolved"
	echo "want=$want rustc=$RUSTC_VERSION" >"$CACHE/resolved.key"
}

step_sources() {
	resolve_versions
	KUPSTREAM=${KVER%%-*}
	KSRC=$CACHE/src/linux-$KUPSTREAM
	RUST_LIB_SRC=$CACHE/src/rust-src-$RUSTC_VERSION/usr/src/rustc-$RUSTC_VERSION/library
	if [ ! -f "$KSRC/.ipmb-extracted" ]; then
		local deb tmp
		deb=$(fetch_deb trixie linux-source-7.2 "$KVER")
		tmp=$CACHE/src/tmp-linux
		rm -rf "$tmp" "$KSRC"
		mkdir -p "$tmp"
		say "unpacking linux-source-7.2 $KVER"
		dpkg-deb -x "$deb" "$tmp"
		tar -C "$CACHE/src" -xf "$tmp"/usr/src/linux-source-*.tar.xz
		mv "$CACHE/src/linux-source-7.2" "$KSRC"
		rm -rf "$tmp"
		touch "$KSRC/.ipmb-extracted"
	else
		say "kernel sources $KVER: present"
	fi
	if [ ! -d "$RUST_LIB_SRC/core" ]; then
		local deb
		deb=$(fetch_deb trixie rust-src "$RSVER")
		say "unpacking rust-src $RSVER"
		rm -rf "$CACHE/src/rust-src-$RUSTC_VERSION"
		dpkg-deb -x "$deb" "$CACHE/src/rust-src-$RUSTC_VERSION"
		[ -d "$RUST_LIB_SRC/core" ] || die "rust-src $RSVER has no library/core"
	else
		say "rust-src $RSVER: present"
	fi
}

kmake() {
	make -C "$KSRC" O="$KDIR" ARCH="$KARCH" LLVM=$LLVM_SUFFIX RUST_LIB_SRC="$RUST_LIB_SRC" \
		BINDGEN="$BINDGEN" "$@"
}

# build_kernel ARCH FRAGMENT IMAGE ENVFILE: configures tinyconfig + FRAGMENT for ARCH and builds
# it (image, modules and, on ARM, the device trees) in a cache directory keyed by the kernel
# version, rustc, bindgen, LLVM, the architecture and the fragment; records it in ENVFILE.
build_kernel() {
	KARCH=$1
	# What the in-progress marker (.ipmb-arch) names: the architecture, or x86-bench, arm-bench.
	local ktag=${KTAG:-$KARCH} frag=$2 image=$3 envfile=$4 key
	# A relative fragment is the repository's; an absolute one is generated (the bench kernel's).
	[ "${frag#/}" != "$frag" ] || frag=$ROOT/$frag
	step_sources
	key=$(printf '%s\n' "kernel=$KVER" "rustc=$RUSTC_VERSION" "bindgen=$BINDGEN_VERSION" \
		"llvm=$LLVM_SUFFIX" "fragment=$(sha256sum <"$frag" | cut -c1-16)")
	# The x86 key predates the ARM kernel: kept as it was, so existing caches stay valid.
	[ "$KARCH" = x86 ] || key=$(printf '%s\n' "$key" "arch=$KARCH")
	KDIR=$CACHE/build/linux-${KVER%%-*}-$(echo "$key" | sha256sum | cut -c1-12)
	if [ -f "$KDIR/.ipmb-key" ] && [ "$(cat "$KDIR/.ipmb-key")" = "$key" ] &&
		[ -f "$KDIR/$image" ]; then
		say "kernel ($KARCH): cached in $KDIR"
		write_env "$envfile"
		return
	fi
	# Builds of this architecture that never finished (no key file) are of no use to anyone:
	# reclaim their space. Another architecture's may be building right now (setup all).
	local stale
	for stale in "$CACHE"/build/linux-*; do
		[ -d "$stale" ] && [ "$stale" != "$KDIR" ] && [ ! -f "$stale/.ipmb-key" ] &&
			[ "$(cat "$stale/.ipmb-arch" 2>/dev/null || echo "$ktag")" = "$ktag" ] &&
			say "removing unfinished build $stale" && rm -rf "$stale"
	done
	say "kernel ($KARCH): building in $KDIR (key: $(echo "$key" | tr '\n' ' '))"
	mkdir -p "$KDIR"
	rm -f "$KDIR/.ipmb-key"
	echo "$ktag" >"$KDIR/.ipmb-arch"
	kmake -s tinyconfig
	"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KDIR" "$KDIR/.config" "$frag" >/dev/null
	kmake -s olddefconfig
	# Every option the fragment asks for must survive Kconfig's dependency resolution.
	local line opt val bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			opt=${line%%=*}
			val=${line#*=}
			grep -qx "$opt=$val" "$KDIR/.config" && continue
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			grep -q "^$opt=" "$KDIR/.config" || continue
			;;
		*) continue ;;
		esac
		warn "config: $line requested, .config has: $(grep -E "^(# )?$opt[= ]" "$KDIR/.config" || echo unset)"
		bad=1
	done <"$frag"
	[ $bad -eq 0 ] || die "kernel config fragment not satisfied (see above)"
	kmake -s rustavailable >/dev/null || die "Rust is not available for this kernel (make rustavailable)"
	say "kernel ($KARCH): compiling with $JOBS jobs; full log in $KDIR/build.log"
	local start=$SECONDS
	if ! kmake -j"$JOBS" 2>&1 | tee "$KDIR/build.log" | awk -v arch="$KARCH" '
		/^  [A-Z]/ { n++; if (n % 250 == 0) { printf "[setup] kernel (%s): %d build steps, %s\n", arch, n, $NF; fflush() } }
		/error:|Error [0-9]/ { print; fflush() }'; then
		tail -n 40 "$KDIR/build.log" >&2
		die "kernel build failed"
	fi
	[ -f "$KDIR/$image" ] || die "kernel build produced no $image"
	echo "$key" >"$KDIR/.ipmb-key"
	say "kernel ($KARCH): built in $((SECONDS - start)) s"
	write_env "$envfile"
}

step_kernel() {
	build_kernel x86 tests/kernel/config.fragment arch/x86/boot/bzImage env
}

# The AST2600 (ARMv7) kernel for QEMU's Aspeed machines.
step_kernel_arm() {
	build_kernel arm tests/kernel/arm.fragment arch/arm/boot/zImage env-arm
}

# The bench kernels (make bench), for ARCH x86 (default) or arm: the test kernel's fragment
# (tests/kernel/config.fragment, or arm.fragment) with every option that
# tests/kernel/bench.fragment names replaced by its line there, written to the cache (its hash
# keys the build, so it sits beside the test kernel and is rebuilt when either file changes).
# ARM has no KASAN to turn off; the rest of bench.fragment is the debugging arm.fragment adds.
step_kernel_bench() {
	local arch=${1:-x86} base image envfile opts gen
	case "$arch" in
	x86) base=config.fragment image=arch/x86/boot/bzImage envfile=env-bench ;;
	arm) base=arm.fragment image=arch/arm/boot/zImage envfile=env-arm-bench ;;
	*) die "no bench kernel for $arch" ;;
	esac
	gen=$CACHE/fragments/$arch-bench.fragment
	mkdir -p "$CACHE/fragments"
	opts=$(grep -oE 'CONFIG_[A-Z0-9_]+' "$ROOT/tests/kernel/bench.fragment" | sort -u)
	{
		grep -vwFf <(echo "$opts") "$ROOT/tests/kernel/$base"
		cat "$ROOT/tests/kernel/bench.fragment"
	} >"$gen.tmp"
	mv "$gen.tmp" "$gen"
	KTAG=$arch-bench build_kernel "$arch" "$gen" "$image" "$envfile"
}

write_env() {
	{
		printf 'KSRC=%q\n' "$KSRC"
		printf 'KDIR=%q\n' "$KDIR"
		printf 'KVER=%q\n' "$KVER"
		printf 'ARCH=%q\n' "$KARCH"
		printf 'RUST_LIB_SRC=%q\n' "$RUST_LIB_SRC"
		printf 'LLVM=%q\n' "$LLVM_SUFFIX"
		printf 'BINDGEN=%q\n' "$BINDGEN"
		printf 'LIBCLANG_PATH=%q\n' "$LIBCLANG_PATH"
	} >"$CACHE/$1.tmp"
	mv "$CACHE/$1.tmp" "$CACHE/$1"
}

mkdir -p "$CACHE"
# One setup at a time per cache: a second `make` waits instead of racing the first.
exec 9>"$CACHE/.lock"
flock 9

case "${1:-all}" in
packages) step_packages ;;
bindgen) step_bindgen ;;
cargo-fuzz) step_cargo_fuzz ;;
sources) step_sources ;;
kernel) step_packages; step_bindgen; step_kernel ;;
kernel-arm) step_packages; step_bindgen; step_kernel_arm ;;
kernel-bench)
	step_packages
	ensure_packages "bench packages" "${BENCH_PACKAGES[@]}"
	step_bindgen
	step_kernel_bench x86
	;;
kernel-bench-arm)
	step_packages
	ensure_packages "bench packages" "${BENCH_PACKAGES[@]}"
	step_bindgen
	step_kernel_bench arm
	;;
qemu) "$ROOT/scripts/setup-qemu.sh" ;;
armhf) "$ROOT/scripts/setup-armhf.sh" ;;
clients) step_packages; step_clients ;;
all)
	# Packages first (apt takes one lock), then the four builds at once: each has serial
	# phases (configure, the Rust core and kernel crates, linking) that the others fill, so a
	# fresh machine is ready sooner than with one after the other. Every line they print
	# starts with [setup] and names its build.
	step_packages
	"$ROOT/scripts/setup-qemu.sh" packages
	"$ROOT/scripts/setup-qemu.sh" &
	qemu=$!
	"$ROOT/scripts/setup-armhf.sh" &
	armhf=$!
	step_bindgen
	step_cargo_fuzz
	step_clients
	step_sources
	step_kernel &
	kx86=$!
	step_kernel_arm &
	karm=$!
	failed=()
	wait "$kx86" || failed+=("kernel (x86)")
	wait "$karm" || failed+=("kernel (arm)")
	wait "$qemu" || failed+=(qemu)
	wait "$armhf" || failed+=(armhf)
	[ ${#failed[@]} -eq 0 ] || die "setup failed: ${failed[*]}"
	;;
*) die "usage: $0 [packages|bindgen|cargo-fuzz|sources|kernel|kernel-arm|kernel-bench|kernel-bench-arm|qemu|armhf|clients|all]" ;;
esac
