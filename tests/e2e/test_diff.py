# SPDX-License-Identifier: GPL-2.0
"""Differential tests: ipmb.ko against the in-tree C driver ipmb_dev_int.ko, same bus, same frames.

One client at 0x20 on the first adapter is bound to one driver, then to the other; the same
traffic is sent from the second adapter each time and what read() returns is compared. Valid
traffic must give byte-identical results. Where the C driver is defective, the test asserts
both behaviours, so the difference is shown (and pinned) side by side.
"""

import errno
import os

import lib
from lib import eq, frame, with_len

BMC, SAT = 0x20, 0x72
C_DRIVER, RUST_DRIVER = "ipmb-dev", "ipmb"


def setup():
    a0, a1 = lib.vbus(2)
    lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb")
    return lib.Instance(a0, BMC, driver=C_DRIVER), a1


def run(inst, driver, sender, traffic):
    """Binds `inst` to `driver`, sends `traffic` (callables), returns every frame read."""
    inst.rebind(driver)
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        for send in traffic:
            send(sender)
        out = []
        while True:
            try:
                out.append(os.read(fd, 512))
            except OSError as e:
                eq(e.errno, errno.EAGAIN, "read errno at the end of the queue")
                return out
    finally:
        os.close(fd)


def both(traffic):
    inst, sender = setup()
    c = run(inst, C_DRIVER, sender, traffic)
    r = run(inst, RUST_DRIVER, sender, traffic)
    return c, r, inst


def raw(f):
    return lambda nr: lib.send_raw(nr, f)


def test_valid_traffic_identical():
    frames = [
        frame(BMC, 0x06, SAT, 1, 0x01),                                  # request, no data
        frame(BMC, 0x07, SAT, 2, 0x01, bytes([0, 0x20, 1, 2, 3])),       # response
        frame(BMC, 0x2E, SAT, 63, 0x40, bytes(range(24)), 3, 2),         # 32 bytes, LUNs
        frame(BMC, 0x0A, 0x00 + 0x10, 9, 0x22, b"\x5a"),
    ]
    inst, sender = setup()
    # One at a time, so the C driver's LIFO order does not matter.
    for f in frames:
        c = run(inst, C_DRIVER, sender, [raw(f)])
        r = run(inst, RUST_DRIVER, sender, [raw(f)])
        eq(c, [with_len(f)], "C driver read()")
        eq(r, c, "ipmb.ko read() against the C driver")


def test_burst_order_c_lifo_rust_fifo():
    sent = [frame(BMC, 0x07, SAT, seq, 0x01, b"\x00") for seq in range(5)]
    c, r, _ = both([raw(f) for f in sent])
    eq(c, [with_len(f) for f in reversed(sent)], "C driver: newest first (LIFO defect)")
    eq(r, [with_len(f) for f in sent], "ipmb.ko: arrival order")


def test_bad_cs2_c_delivers_rust_drops():
    f = bytearray(frame(BMC, 0x07, SAT, 1, 0x01, b"\x00"))
    f[-1] ^= 0xFF
    c, r, inst = both([raw(bytes(f))])
    eq(c, [with_len(bytes(f))], "C driver: frame with a bad cs2 delivered (defect)")
    eq(r, [], "ipmb.ko: dropped")
    eq(inst.counters()["rx_bad_cs2"], 1, "ipmb.ko: counted as rx_bad_cs2")


def test_stop_after_read_c_requeues_rust_does_not():
    f = frame(BMC, 0x07, SAT, 1, 0x01, b"\x00")
    # A frame, then a separate read transaction (its own START ... STOP) to the target.
    traffic = [raw(f), lambda nr: lib.i2c_xfer(nr, [(BMC >> 1, 1)])]
    c, r, _ = both(traffic)
    eq(c, [with_len(f), with_len(f)], "C driver: the STOP after a read re-queues (defect)")
    eq(r, [with_len(f)], "ipmb.ko: delivered once")


def test_overlong_c_truncates_rust_refuses():
    f = frame(BMC, 0x07, SAT, 1, 0x01, bytes(250))
    inst, sender = setup()
    c = run(inst, C_DRIVER, sender, [raw(f)])
    eq(len(c), 1, "C driver: one frame queued")
    # Its buffer keeps the address byte and 237 more: the length byte says 238.
    eq(len(c[0]) - 1, 238, "C driver: truncated to 238 bytes (defect)")

    def refused(nr):
        lib.raises(errno.EIO, lib.send_raw, nr, f)

    r = run(inst, RUST_DRIVER, sender, [refused])
    eq(r, [], "ipmb.ko: refused (NAK past 32 bytes) and dropped")
    eq(inst.counters()["rx_too_long"], 1, "ipmb.ko: counted as rx_too_long")


def test_lseek_espipe_as_c():
    # Neither driver has an llseek: the VFS clears FMODE_LSEEK at open, so lseek() fails with
    # ESPIPE (fs/open.c, fs/read_write.c vfs_llseek). ipmbbridged calls it before each read.
    inst, _ = setup()
    results = {}
    for drv in (C_DRIVER, RUST_DRIVER):
        inst.rebind(drv)
        fd = inst.open()
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            results[drv] = "success"
        except OSError as e:
            results[drv] = errno.errorcode.get(e.errno)
        finally:
            os.close(fd)
    eq(results, {C_DRIVER: "ESPIPE", RUST_DRIVER: "ESPIPE"},
       "lseek(fd, 0, SEEK_SET) of each driver")
