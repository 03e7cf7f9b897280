# SPDX-License-Identifier: GPL-2.0
"""The ioctls of include/uapi/linux/ipmb.h: INFO and STATS, bad arguments, 32-bit callers."""

import errno
import fcntl
import os
import struct
import subprocess

import ipmbabi as abi
import lib
from lib import eq, frame, true, with_len

BMC, SAT = lib.BMC, lib.SAT
ior = abi.ior
IOC_INFO, IOC_STATS = abi.IOC_INFO, abi.IOC_STATS
INFO_SIZE, STATS_SIZE = abi.INFO_SIZE, abi.STATS_SIZE


def info(fd):
    """struct ipmb_info as a tuple of all its fields, reserved ones included."""
    return struct.unpack(abi.INFO_FMT, fcntl.ioctl(fd, IOC_INFO, bytes(INFO_SIZE)))


def stats(fd):
    return abi.stats(fd)


def test_info_describes_the_instance():
    bmc, sat = lib.two_nodes("max_frame_len=64", "queue_len=17", "tx_retries=2",
                             "req_timeout_ms=100", "req_retries=2")
    fd = bmc.open()
    try:
        # abi_version, adapter, own_addr, smbus_block_write, max_frame_len, queue_len,
        # tx_retries, req_timeout_ms, req_retries, seq_count, seq_expiry_ms, max_clients,
        # inbox_len, max_registrations, reserved[4]
        eq(info(fd), (abi.ABI_VERSION, bmc.nr, BMC, 0, 64, 17, 2, 100, 2, 64, 5000, 64, 32, 256,
                      0, 0, 0, 0),
           "ipmb_info")
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
        # Every counter is in sysfs too (the gauges rx_queued and req_inflight may be).
        gauges = {"rx_queued", "req_inflight"}
        eq(sorted(set(abi.STATS_FIELDS) - gauges - set(c)), [], "STATS counters not in sysfs")
        eq(sorted(set(c) - set(abi.STATS_FIELDS)), [], "sysfs counters not in STATS")
        eq({n: s[n] for n in c if n not in gauges}, {n: c[n] for n in c if n not in gauges},
           "STATS counters against sysfs")
        eq((s["rx_frames"], s["rx_bad_cs2"], s["tx_frames"]), (2, 1, 1),
           "rx_frames, rx_bad_cs2, tx_frames")
        eq((s["rx_queued"], s["req_inflight"]), (2, 0), "rx_queued, req_inflight")
        eq(s["reserved"], (0,) * 3, "reserved")
        os.read(fd, 256)
        eq(stats(fd)["rx_queued"], 1, "rx_queued after a read")
    finally:
        os.close(fd)


def test_bad_arguments():
    bmc, sat = lib.two_nodes()
    fd = bmc.open()
    try:
        lib.raises(errno.EFAULT, fcntl.ioctl, fd, IOC_INFO, 8)
        lib.raises(errno.EFAULT, fcntl.ioctl, fd, IOC_STATS, 0)
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(0x1F, INFO_SIZE), bytes(INFO_SIZE))
        # The right number with the wrong size is another command: unknown. The ABI v1 sizes
        # (40 and 128 bytes) are unknown too.
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(0, 32), bytes(32))
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(0, 40), bytes(40))
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, ior(1, 128), bytes(128))
        lib.raises(errno.ENOTTY, fcntl.ioctl, fd, 0x5401, bytes(64))  # TCGETS
        eq(info(fd)[0], abi.ABI_VERSION, "INFO still works after bad calls")
    finally:
        os.close(fd)


def test_info_after_unbind_is_enodev():
    bmc, sat = lib.two_nodes()
    fd = bmc.open()
    try:
        bmc.delete()
        lib.raises(errno.ENODEV, fcntl.ioctl, fd, IOC_INFO, bytes(INFO_SIZE))
    finally:
        os.close(fd)


def _probe(name, *args):
    prog = os.path.join(lib.REPO, "build", "uapi", name)
    true(os.path.exists(prog), f"{prog} not built (make uapi-probes)")
    r = subprocess.run([prog, *args], capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, f"{name}: {r.stderr.strip()}")
    return dict(line.split(" ", 1) for line in r.stdout.splitlines())


def test_32bit_and_64bit_callers_agree():
    bmc, sat = lib.two_nodes()
    lib.send_raw(sat.nr, frame(BMC, 0x07, SAT, 1, 0x01, b"\x00"))
    out = {name: _probe(name, bmc.dev) for name in ("ioctl_probe", "ioctl_probe32")}
    eq(out["ioctl_probe32"], out["ioctl_probe"], "32-bit against 64-bit output")
    got = out["ioctl_probe"]
    eq((got["abi_version"], got["own_addr"], got["rx_frames"], got["rx_queued"]),
       (str(abi.ABI_VERSION), str(BMC), "1", "1"), "fields")
    eq(got["bad_pointer_errno"], str(errno.EFAULT), "bad pointer errno")


def test_32bit_requests_and_async_receive():
    """REQUEST, SUBMIT and RECEIVE (struct ipmb_msg in and out) from -m32 and 64-bit."""
    bmc, sat = lib.two_nodes()
    resp = subprocess.Popen([os.path.join(lib.REPO, "samples", "ipmb-responder"), sat.dev],
                            stdout=subprocess.PIPE, text=True)
    try:
        eq(resp.stdout.readline().strip(), "ready", "responder started")
        out = {name: _probe(name, bmc.dev, f"0x{SAT:02x}")
               for name in ("ioctl_probe", "ioctl_probe32")}
    finally:
        resp.terminate()
        resp.wait(timeout=10)
    keys = ("request", "receive", "receive_id_matches")
    got = {n: {k: o.get(k) for k in keys} for n, o in out.items()}
    eq(got["ioctl_probe32"], got["ioctl_probe"], "32-bit against 64-bit answers")
    eq(got["ioctl_probe"]["receive_id_matches"], "1", "RECEIVE returns SUBMIT's id")
    for k in ("request", "receive"):
        fields = got["ioctl_probe"][k].split()
        # kind 1 (response), flags 0 (a real response), addr 0x72, netfn 6, cc 0.
        eq(fields[:4] + fields[6:8] + fields[14:16], ["kind", "1", "flags", "0", "netfn", "6",
                                                     "cc", "0"], f"{k} fields")
        eq(fields[5], str(SAT), f"{k} responder address")
        eq(fields[16:21], ["reserved", "0", "0", "0", "0"], f"{k} reserved (zeroed on output)")
