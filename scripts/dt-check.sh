#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks the device tree binding of the driver,
# Documentation/devicetree/bindings/ipmi/ipmb-dev.yaml, with dtschema:
#   - the binding against dtschema's meta-schemas (dt-doc-validate);
#   - its example, and the ipmb-dev nodes of the test machines' device trees (our
#     tests/bmc/dts/ast2600-evb-ipmb.dts and the upstream Bletchley DTB as shipped), against
#     the binding (dt-validate, limited to this schema: the rest of each tree is not ours);
#   - that the check can fail: a node with an unknown property and an out-of-range
#     max-frame-length must be reported.
# dtschema (the version pinned below) is installed once into a venv under
# $IPMB_CACHE/tools (default ~/.cache/ipmb/tools). The device trees are built with the cached
# ARM kernel's dtc and headers (scripts/setup.sh kernel-arm). Output goes to build/dt/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
DTSCHEMA_VERSION=2026.9
VENV=$CACHE/tools/dtschema-$DTSCHEMA_VERSION
BINDINGS=$ROOT/Documentation/devicetree/bindings
BINDING=$BINDINGS/ipmi/ipmb-dev.yaml
OUT=$ROOT/build/dt

# A stamp marks a finished install: an interrupted one is started again from scratch.
if [ ! -f "$VENV/.installed" ]; then
	echo "dt-check: installing dtschema $DTSCHEMA_VERSION into $VENV" >&2
	rm -rf "$VENV"
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install --quiet "dtschema==$DTSCHEMA_VERSION"
	touch "$VENV/.installed"
fi

[ -f "$CACHE/env-arm" ] || { echo "dt-check: no cached ARM kernel ($CACHE/env-arm)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$CACHE/env-arm"
mkdir -p "$OUT"

# dtb DTS OUT: preprocesses and compiles a device tree source as the kernel build does.
dtb() {
	cpp -nostdinc -I"$KSRC/include" -I"$KSRC/arch/arm/boot/dts" \
		-I"$KSRC/scripts/dtc/include-prefixes" -undef -D__DTS__ -x assembler-with-cpp \
		"$1" -o "$2.pp"
	"$KDIR/scripts/dtc/dtc" -q -I dts -O dtb -o "$2" "$2.pp"
}

# validate DTB: the diagnostics of the binding's schema for the DTB's ipmb-dev nodes.
validate() {
	"$VENV/bin/dt-validate" -l ipmi/ipmb-dev.yaml -s "$OUT/processed-schema.json" "$1" 2>&1
}

fail=0
"$VENV/bin/dt-doc-validate" -u "$BINDINGS" "$BINDING" || fail=1
"$VENV/bin/dt-mk-schema" -j "$BINDINGS" >"$OUT/processed-schema.json"

"$VENV/bin/dt-extract-example" "$BINDING" >"$OUT/example.dts"
dtb "$OUT/example.dts" "$OUT/example.dtb"
dtb "$ROOT/tests/bmc/dts/ast2600-evb-ipmb.dts" "$OUT/ast2600-evb-ipmb.dtb"
for f in "$OUT/example.dtb" "$OUT/ast2600-evb-ipmb.dtb" \
	"$KDIR/arch/arm/boot/dts/aspeed/aspeed-bmc-facebook-bletchley.dtb"; do
	out=$(validate "$f")
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		fail=1
	fi
done

sed -e 's/max-frame-length = <32>;/max-frame-length = <241>; smbus-block-write;/' \
	"$OUT/example.dts" >"$OUT/bad.dts"
dtb "$OUT/bad.dts" "$OUT/bad.dtb"
out=$(validate "$OUT/bad.dtb")
for want in "'smbus-block-write' does not match" "max-frame-length: 241 is greater than"; do
	if ! grep -qF "$want" <<<"$out"; then
		echo "dt-check: a bad node was not reported ($want): $out" >&2
		fail=1
	fi
done

[ "$fail" = 0 ] && echo "dt-check: binding, example and device trees valid"
exit "$fail"
