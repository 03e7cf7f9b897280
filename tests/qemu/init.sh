#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# PID 1 of the test guest (busybox). Reads /etc/ipmb-test.conf (written by tests/qemu/run.py),
# loads the modules so their KUnit suites run, runs the end-to-end programs, asks kmemleak for
# a scan, and powers off. Every phase prints a marker the host side checks for.
#   x86_64: the programs run from the host's root filesystem (read-only over 9p), results on
#           the second serial port.
#   Aspeed (GUEST_ROOT=initramfs): Python and the repository files are in the initramfs
#           (/repo, /kdir); each results line goes to /dev/kmsg as one record prefixed with
#           $RESULTS_PREFIX, so it reaches the console whole, and the host strips the prefix.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmp /tmp
. /etc/ipmb-test.conf
export IPMB_MACHINE=$MACHINE
export IPMB_CACHE
# The duration of the soak (tests/e2e/test_soak.py).
export IPMB_SOAK_S=${SOAK_S:-60} IPMB_SOAK_LIMIT_S=${SOAK_LIMIT_S:-0}

# Markers are logged at KERN_CRIT so they reach the console at any console log level.
marker() { echo "<2>IPMB-HARNESS: $*" >/dev/kmsg; }

# Boot noise is not ours: start kmemleak's bookkeeping from a clean slate.
[ -e /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak

marker "kunit-begin"
for m in $KUNIT_MODULES; do
	insmod "/modules/$m" || marker "insmod-failed $m"
	rmmod "${m%.ko}" || marker "rmmod-failed $m"
done
marker "kunit-end"
# The suites ran; later loads of the module (the e2e tests load it again and again) need
# not run them each time: a filter that matches no suite.
echo "after-kunit-phase" >/sys/module/kunit/parameters/filter_glob 2>/dev/null || true

# In demo mode only KERN_WARNING and worse reach the console from here on.
[ "$MODE" != check ] && echo 4 >/proc/sys/kernel/printk

# Each line of standard input as one KERN_CRIT record, prefixed; /dev/kmsg refuses records
# over 1024 bytes, so a longer line loses its tail.
to_kmsg() {
	while IFS= read -r line; do
		[ ${#line} -gt 960 ] && line="${line:0:960}..."
		printf '<2>%s%s\n' "$RESULTS_PREFIX" "$line" >/dev/kmsg
	done
}

if [ "$GUEST_ROOT" = initramfs ]; then
	export TMPDIR=/tmp PYTHONUNBUFFERED=1
	marker "e2e-begin"
	if [ "$MODE" = demo ]; then
		python3 "$REPO/$DEMO" --repo "$REPO" --kdir "$KDIR" >/dev/console 2>&1
		rc=$?
	elif [ "$MODE" = bench ]; then
		python3 "$REPO/tests/bench.py" --repo "$REPO" --kdir "$KDIR" $E2E_ARGS >/dev/console 2>&1
		rc=$?
	else
		(
			python3 "$REPO/tests/e2e/runner.py" --repo "$REPO" --kdir "$KDIR" $E2E_ARGS \
				2>/dev/console
			echo $? >/tmp/e2e-rc
		) | to_kmsg
		rc=$(cat /tmp/e2e-rc)
	fi
	marker "e2e-end rc=$rc"
# cache=loose: the guest caches what it read of the host's files (they do not change while
# it runs), and msize=512000 moves up to 512 kB per 9p message. With the defaults (no cache,
# 128 kB) every lookup was a round trip: python3 -c pass took 7.5 s to start, /bin/true
# 0.67 s; with these 1.7 s and 0.17 s (idle x86 test guest).
elif mkdir -p /host && mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 host /host; then
	mount -t proc proc /host/proc
	mount -t sysfs sys /host/sys
	mount -t devtmpfs dev /host/dev
	mount -t debugfs debugfs /host/sys/kernel/debug
	# /tmp stays the host's (read-only): the repository itself may live there.
	mount -t tmpfs run /host/run
	export TMPDIR=/run
	marker "e2e-begin"
	if [ "$MODE" = demo ] || [ "$MODE" = bench ]; then
		chroot /host /usr/bin/python3 "$REPO/tests/$MODE.py" --repo "$REPO" --kdir "$KDIR" \
			$E2E_ARGS >/dev/console 2>&1
	else
		chroot /host /usr/bin/python3 "$REPO/tests/e2e/runner.py" --repo "$REPO" --kdir "$KDIR" \
			$E2E_ARGS >/dev/ttyS1 2>/dev/console
	fi
	marker "e2e-end rc=$?"
else
	marker "9p-mount-failed"
fi

if [ -e /sys/kernel/debug/kmemleak ]; then
	# kmemleak reports only objects older than 5 s.
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >/dev/kmsg
	marker "kmemleak-scanned"
fi
marker "done"
sync
reboot -f
