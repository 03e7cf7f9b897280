# SPDX-License-Identifier: GPL-2.0
"""The ioctls of include/uapi/linux/ipmb.h: INFO and STATS, bad arguments, 32-bit callers."""

import errno
import fcntl
import os
import struct
import subprocess

import lib
from lib import eq, frame, true, with_len

BMC, SAT = lib.BMC, lib.SAT
INFO_FMT, STATS_FMT = "<IIBBHII5I", "<16Q"


def ior(nr, size):
    return (2 << 30) | (size << 16) | (0xBB << 8) | nr


IOC_INFO = ior(0, struct.calcsize(INFO_FMT))
IOC_STATS = ior(1, struct.calcsize(STATS_FMT))


def info(fd):
    return struct.unpack(INFO_FMT, fcntl.ioctl(fd, IOC_INFO, bytes(40)))


def stats(fd):
    return struct.unpack(STATS_FMT, fcntl.ioctl(fd, IOC_STATS, bytes(128)))


def test_info_describes_the_instance():
    bmc, sat = lib.two_nodes("max_frame_len=64", "queue_len=17", "tx_retries=2")
    fd = bmc.open()
    try:
        eq(info(fd), (1, bmc.nr, BMC, 0, 64, 17, 2, 0, 0, 0, 0, 0), "ipmb_info")
    finally:
        os.close(fd)


def test_stats_match_sysfs():
    bmc, sat = lib.two_nodes()
    fd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        good = frame(BMC, 0x07, SAT, 1, 0x01, b"\x00")
        bad = good[:-1] + bytes([good[-1] ^ 1])
        for f in (good, good, bad):
            lib.send_raw(sat.nr, f)
        os.write(fd, with_len(frame(SAT, 0x06, BMC, 2, 0x01)))
        s = stats(fd)
        c = bmc.counters()
        names = ["rx_frames", "rx_short", "rx_too_long", "rx_bad_cs1", "rx_bad_cs2",
                 "rx_bad_addr", "rx_overflow", "tx_frames", "tx_errors", "tx_retries",
                 "tx_invalid"]
        eq(list(s[:11]), [c[n] for n in names], "STATS counters against sysfs")
        eq((s[0], s[4], s[7]), (2, 1, 1), "rx_frames, rx_bad_cs2, tx_frames")
        eq(s[11], 2, "rx_queued")
        eq(s[12:], (0, 0, 0, 0), "reserved")
        os.read(fd, 256)
        eq(stats(fd)[11], 1, "rx_queued after a read")
    finally:
        os.close(fd)


def test_bad_arguments():
    bmc, sat = lib.two_nodes()
    fd = bmc.open()
    try:
        lib.raises(errno.EFAULT, fcntl.ioctl, fd, IOC_INFO, 8)
        lib.raises(errno.EFAULT, fcntl.ioctl, fd, IOC_STATS, 0)
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(0x1F, 40), bytes(40))
        # The right number with the wrong size is another command: unknown.
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(0, 32), bytes(32))
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, 0x5401, bytes(64))  # TCGETS
        eq(info(fd)[0], 1, "INFO still works after bad calls")
    finally:
        os.close(fd)


def test_info_after_unbind_is_enodev():
    bmc, sat = lib.two_nodes()
    fd = bmc.open()
    try:
        bmc.delete()
        lib.raises(errno.ENODEV, fcntl.ioctl, fd, IOC_INFO, bytes(40))
    finally:
        os.close(fd)


def test_32bit_and_64bit_callers_agree():
    bmc, sat = lib.two_nodes()
    lib.send_raw(sat.nr, frame(BMC, 0x07, SAT, 1, 0x01, b"\x00"))
    out = {}
    for name in ("ioctl_probe", "ioctl_probe32"):
        prog = os.path.join(lib.REPO, "build", "uapi", name)
        true(os.path.exists(prog), f"{prog} not built (make uapi-probes)")
        r = subprocess.run([prog, bmc.dev], capture_output=True, text=True)
        eq(r.returncode, 0, f"{name}: {r.stderr.strip()}")
        out[name] = dict(line.split() for line in r.stdout.splitlines())
    eq(out["ioctl_probe32"], out["ioctl_probe"], "32-bit against 64-bit output")
    got = out["ioctl_probe"]
    eq((got["abi_version"], got["own_addr"], got["rx_frames"], got["rx_queued"]),
       ("1", str(BMC), "1", "1"), "fields")
    eq(got["bad_pointer_errno"], str(errno.EFAULT), "bad pointer errno")
