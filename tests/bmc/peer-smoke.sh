#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test of the QEMU IPMB peer (tests/bmc/qemu/ipmb_peer.c) with the ARM ipmb.ko: boots
# QEMU's ast2600-evb with `-device ipmb-peer` at 0x40 on bus 3 and a device tree that adds an
# ipmb-dev node on i2c3 at 0x10, from a busybox initramfs that loads ipmb.ko and talks to the
# peer through /dev/ipmb-3 with dd (write()/read() as ipmb_dev_int): Get Device ID, echo, an
# unknown command, bursts (valid, bad cs1, too long) checked in the sysfs counters.
# The expected frames below were computed from the peer's protocol, not from its code.
#
#   tests/bmc/peer-smoke.sh [ipmb.ko]      (default build/arm/ipmb.ko, from `make ARCH=arm`)
#
# Needs $IPMB_CACHE/env-arm (the ARM kernel), env-qemu (scripts/setup-qemu.sh) and env-armhf
# (scripts/setup-armhf.sh: busybox).
# Prints the guest's SMOKE lines; exits 0 if every check passed. Work files: build/arm/smoke/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${IPMB_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/ipmb}
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

[ -f "$CACHE/env-arm" ] || die "no $CACHE/env-arm: build the ARM kernel first"
[ -f "$CACHE/env-qemu" ] || die "no $CACHE/env-qemu: run scripts/setup-qemu.sh first"
[ -f "$CACHE/env-armhf" ] || die "no $CACHE/env-armhf: run scripts/setup-armhf.sh first"
# shellcheck disable=SC1091
. "$CACHE/env-arm"
# shellcheck disable=SC1091
. "$CACHE/env-qemu"
MOD=${1:-$ROOT/build/arm/ipmb.ko}
[ -f "$MOD" ] || die "no $MOD: run make ARCH=arm first"
W=$ROOT/build/arm/smoke
rm -rf "$W"
mkdir -p "$W/req"

# busybox-static for armhf, from the ARM guest's userland (scripts/setup-armhf.sh).
# shellcheck disable=SC1091
. "$CACHE/env-armhf"
BUSYBOX=$ARMHF_ROOT/bin/busybox
[ -x "$BUSYBOX" ] || die "no $BUSYBOX: run scripts/setup-armhf.sh"

# The evb's device tree plus the ipmb-dev node.
cat >"$W/smoke.dts" <<'EOF'
/dts-v1/;
#include "aspeed/aspeed-ast2600-evb.dts"
#include <dt-bindings/i2c/i2c.h>
&i2c3 {
	ipmb@10 {
		compatible = "ipmb-dev";
		reg = <(0x10 | I2C_OWN_SLAVE_ADDRESS)>;
		i2c-protocol;
	};
};
EOF
cpp -nostdinc -I "$KSRC/include" -I "$KSRC/arch/arm/boot/dts" \
	-I "$KSRC/scripts/dtc/include-prefixes" -undef -x assembler-with-cpp \
	"$W/smoke.dts" -o "$W/smoke.dts.pp"
"$KDIR/scripts/dtc/dtc" -q -I dts -O dtb -o "$W/smoke.dtb" "$W/smoke.dts.pp"

# req NAME NETFN SEQ CMD DATA...: a request from 0x20 (our node) to 0x80 (the peer) in the
# write() layout [len][rsSA][netFn/LUN][cs1][rqSA][seq/LUN][cmd][data...][cs2].
req() {
	local name=$1 netfn=$2 seq=$3 cmd=$4 b bytes sum=0 hex
	shift 4
	bytes=(0x80 $((netfn << 2)) 0 0x20 $((seq << 2)) "$cmd" "$@" 0)
	bytes[2]=$(((-(0x80 + (netfn << 2))) & 0xff))
	for b in "${bytes[@]:3}"; do sum=$((sum + b)); done
	bytes[-1]=$(((-sum) & 0xff))
	hex=$(printf '\\x%02x' ${#bytes[@]} "${bytes[@]}")
	# shellcheck disable=SC2059
	printf "$hex" >"$W/req/$name"
}
req devid 0x06 1 0x01
req echo 0x30 2 0x01 0xde 0xad 0xbe 0xef
req unknown 0x30 3 0x7f
# burst [dest8, count_lo, count_hi, kind, dlen_lo, dlen_hi]: 5 valid frames of 4 data bytes
req burst 0x30 4 0x02 0x20 5 0 0 4 0
# 3 frames with a bad cs1; 2 frames of 26 data bytes (33 > max_frame_len 32)
req burst_cs1 0x30 5 0x02 0x20 3 0 1 4 0
req burst_long 0x30 6 0x02 0x20 2 0 0 26 0
# 200 frames of 25 data bytes (32 bytes: the longest the driver takes by default)
req burst_200 0x30 7 0x02 0x20 200 0 0 25 0

# The guest reads a frame only once rx_frames says one is queued, so read() never blocks
# (not with busybox's `timeout`: here every `timeout 10 dd ...` ended in "Terminated" before dd
# had opened its files).
cat >"$W/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail=0
nread=0
ok() { echo "SMOKE: ok $*"; }
bad() { echo "SMOKE: FAIL $*"; fail=$((fail + 1)); }
S=/sys/bus/i2c/devices/3-1010/statistics
ctr() { cat $S/$1; }
send() { dd if=/req/$1 of=/dev/ipmb-3 bs=64 count=1 2>/dev/null || bad "write $1"; }
# wait_ctr NAME VALUE: waits up to 60 s for counter NAME to reach VALUE.
wait_ctr() {
	i=0
	while [ "$(ctr $1)" -lt $2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(ctr $1)" -ge $2 ]
}
# expect WHAT HEX: the next frame read() gives is HEX (length byte first).
expect() {
	if ! wait_ctr rx_frames $((nread + 1)); then
		bad "$1: no frame (rx_frames $(ctr rx_frames), $nread read)"
		return
	fi
	nread=$((nread + 1))
	got=$(dd if=/dev/ipmb-3 bs=512 count=1 2>/dev/null | od -An -tx1 -v |
		tr -s ' \n' '  ' | sed 's/^ //; s/ $//')
	if [ "$got" = "$2" ]; then ok "$1: $got"; else bad "$1: got '$got', want '$2'"; fi
}
check_ctr() {
	wait_ctr $1 $2
	if [ "$(ctr $1)" -eq $2 ]; then ok "$1 = $2"; else bad "$1 = $(ctr $1), want $2"; fi
}

insmod /ipmb.ko || bad "insmod"
i=0
while [ ! -e /dev/ipmb-3 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /dev/ipmb-3 ] && ok "/dev/ipmb-3" || bad "no /dev/ipmb-3"

send devid
expect "Get Device ID" "17 20 1c c4 80 04 01 00 42 01 02 10 02 21 5a 1a 00 34 12 00 00 00 00 49"
send echo
expect "echo" "0c 20 c4 1c 80 08 01 00 de ad be ef 3f"
send unknown
expect "unknown command" "08 20 c4 1c 80 0c 7f c1 34"

send burst
expect "burst response" "08 20 c4 1c 80 10 02 00 6e"
expect "burst frame 0" "0b 20 c0 20 80 00 03 00 00 02 03 78"
expect "burst frame 1" "0b 20 c0 20 80 04 03 01 00 03 04 71"
expect "burst frame 2" "0b 20 c0 20 80 08 03 02 00 04 05 6a"
expect "burst frame 3" "0b 20 c0 20 80 0c 03 03 00 05 06 63"
expect "burst frame 4" "0b 20 c0 20 80 10 03 04 00 06 07 5c"
check_ctr rx_frames 9

send burst_cs1
expect "bad-cs1 burst response" "08 20 c4 1c 80 14 02 00 6a"
check_ctr rx_bad_cs1 3
send burst_long
expect "long burst response" "08 20 c4 1c 80 18 02 00 66"
check_ctr rx_too_long 2

start=$(cut -d' ' -f1 /proc/uptime)
send burst_200
check_ctr rx_frames 212
end=$(cut -d' ' -f1 /proc/uptime)
echo "SMOKE: 201 frames (response + 200 x 32 bytes) from $start to $end s of guest uptime"
expect "200-frame burst response" "08 20 c4 1c 80 1c 02 00 62"
expect "200-frame burst frame 0" "20 20 c0 20 80 00 03 00 00 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 52"
n=1
while [ $n -lt 199 ]; do
	dd if=/dev/ipmb-3 of=/dev/null bs=512 count=1 2>/dev/null
	nread=$((nread + 1))
	n=$((n + 1))
done
expect "200-frame burst frame 199" "20 20 c0 20 80 1c 03 c7 00 c9 ca cb cc cd ce cf d0 d1 d2 d3 d4 d5 d6 d7 d8 d9 da db dc dd de df 8e"
for c in rx_short rx_bad_cs2 rx_overflow tx_errors tx_invalid; do
	[ "$(ctr $c)" -eq 0 ] && ok "$c = 0" || bad "$c = $(ctr $c)"
done
[ "$(ctr tx_frames)" -eq 7 ] && ok "tx_frames = 7" || bad "tx_frames = $(ctr tx_frames)"
rmmod ipmb && ok "rmmod" || bad "rmmod"
echo "SMOKE-END: $fail failed"
while true; do sleep 60; done
EOF

cat >"$W/initramfs.list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /bin 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 0755 0 0
dir /req 0755 0 0
file /bin/busybox $BUSYBOX 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $W/init 0755 0 0
file /ipmb.ko $MOD 0644 0 0
EOF
for f in "$W"/req/*; do
	echo "file /req/$(basename "$f") $f 0644 0 0" >>"$W/initramfs.list"
done
"$KDIR/usr/gen_init_cpio" "$W/initramfs.list" >"$W/initramfs.cpio"

# shellcheck disable=SC2086
env $QEMU_ARM_ENV "$QEMU_ARM" $QEMU_ARM_ARGS -M ast2600-evb -no-reboot -monitor none \
	-nic none -kernel "$KDIR/arch/arm/boot/zImage" -dtb "$W/smoke.dtb" \
	-initrd "$W/initramfs.cpio" -append "console=ttyS4 panic=-1" -serial stdio \
	-device ipmb-peer,bus=aspeed.i2c.bus.3,address=0x40 </dev/null >"$W/console.log" 2>&1 &
qemu=$!
start=$SECONDS
while ! grep -aqs '^SMOKE-END' "$W/console.log" && kill -0 $qemu 2>/dev/null &&
	[ $((SECONDS - start)) -lt 240 ]; do
	sleep 1
done
kill $qemu 2>/dev/null || true
wait $qemu 2>/dev/null || true
grep -a '^SMOKE' "$W/console.log" || true
say "peer smoke: $((SECONDS - start)) s; console in $W/console.log"
grep -aq '^SMOKE-END: 0 failed' "$W/console.log" || die "peer smoke test failed"
! grep -aE 'WARNING:|BUG:|Oops|Kernel panic' "$W/console.log" || die "kernel reported a problem"
