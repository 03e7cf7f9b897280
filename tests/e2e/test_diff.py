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


def long_frame(dest, src, n):
    """A valid response frame of `n` bytes, address byte included, with varied data."""
    return frame(dest, 0x07, src, n % 64, 0x01, bytes((n + k) & 0xFF for k in range(n - 7)))


def test_long_frames_received_as_c():
    """Every length past the IPMB limit that ipmb_dev_int receives whole (33 to 238 bytes)
    reaches read() whole from ipmb.ko too, with its default max_frame_len."""
    sent = [long_frame(BMC, SAT, n) for n in range(33, 239)]
    c, r, _ = both([raw(f) for f in sent])
    expected = sorted(with_len(f) for f in sent)
    # As sets: the C driver's queue is LIFO (test_burst_order_c_lifo_rust_fifo).
    eq((sorted(c), sorted(r)), (expected, expected), "(C driver, ipmb.ko) read() of 33..238")


def test_239_byte_frame_c_cuts_rust_keeps():
    f = long_frame(BMC, SAT, 239)
    c, r, _ = both([raw(f)])
    eq(c, [with_len(f[:238])], "C driver: the last byte cut off (its buffer holds 238)")
    eq(r, [with_len(f)], "ipmb.ko: whole (max_frame_len 239)")


def test_overlong_c_truncates_rust_refuses():
    f = long_frame(BMC, SAT, 240)
    inst, sender = setup()
    c = run(inst, C_DRIVER, sender, [raw(f)])
    # Its buffer keeps the address byte and 237 more: the length byte says 238.
    eq(c, [with_len(f[:238])], "C driver: truncated to 238 bytes and queued (defect)")

    def refused(nr):
        lib.raises(errno.EIO, lib.send_raw, nr, f)

    r = run(inst, RUST_DRIVER, sender, [refused])
    eq(r, [], "ipmb.ko: refused (NAK of byte 240) and dropped")
    eq(inst.counters()["rx_too_long"], 1, "ipmb.ko: counted as rx_too_long")


def i2c_protocol_node():
    """A client from firmware with i2c-protocol (ipmb_dev_int then writes plain I2C, as an
    IPMB node of every upstream board does), and ipmb.ko at the satellite's address to see
    what goes on the wire."""
    a0, a1 = lib.vbus(2, fw_client=0, fw_i2c_protocol=1)
    lib.insmod("ipmb_dev_int")
    lib.insmod("ipmb")
    inst = lib.Instance(a0, BMC, driver=None, new=False)
    return inst, lib.Instance(a1, SAT, driver=RUST_DRIVER)


def written(inst, rx, driver, frames):
    """Binds `inst` to `driver` and write()s each frame: what each write() returned (the byte
    count or the errno's name), and every frame `rx` read."""
    inst.rebind(driver)
    fd = inst.open()
    rfd = rx.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        results = []
        for f in frames:
            try:
                results.append(os.write(fd, with_len(f)))
            except OSError as e:
                results.append(errno.errorcode.get(e.errno))
        return results, lib.queued_frames(rfd)
    finally:
        os.close(fd)
        os.close(rfd)


def test_long_frames_written_as_c():
    """write() of 33 to 239 bytes, address included (up to ipmb_dev_int's 240-byte buffer
    with the length byte): each frame goes out whole, from either driver."""
    inst, rx = i2c_protocol_node()
    sent = [long_frame(SAT, BMC, n) for n in range(33, 240)]
    got = {drv: written(inst, rx, drv, sent) for drv in (C_DRIVER, RUST_DRIVER)}
    expected = ([len(f) + 1 for f in sent], [with_len(f) for f in sent])
    eq(got, {C_DRIVER: expected, RUST_DRIVER: expected},
       "write() results and the frames the satellite read, per driver")


def test_write_past_c_limit_einval_as_c():
    """A 240-byte frame (241 bytes with the length byte): EINVAL from both, nothing sent."""
    inst, rx = i2c_protocol_node()
    f = long_frame(SAT, BMC, 240)
    got = {drv: written(inst, rx, drv, [f]) for drv in (C_DRIVER, RUST_DRIVER)}
    eq(got, {C_DRIVER: (["EINVAL"], []), RUST_DRIVER: (["EINVAL"], [])},
       "write() of a 240-byte frame and what the satellite read, per driver")


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
