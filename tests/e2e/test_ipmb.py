# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of ipmb.ko on the virtual I2C bus: two nodes on one wire.

The BMC is at 0x20 on the first adapter, a satellite controller at 0x72 on the second.
"""

import errno
import os
import select
import signal
import threading
import time

import lib
from lib import eq, frame, true, with_len

BMC, SAT = lib.BMC, lib.SAT
APP_REQ, APP_RSP = 0x06, 0x07


def read_frame(fd, size=256):
    return os.read(fd, size)


def test_request_and_response_both_ways():
    bmc, sat = lib.two_nodes()
    fb, fs = bmc.open(), sat.open()
    try:
        req = frame(SAT, APP_REQ, BMC, 5, 0x01)
        eq(os.write(fb, with_len(req)), len(req) + 1, "write() count")
        eq(read_frame(fs), with_len(req), "request as the satellite reads it")
        rsp = frame(BMC, APP_RSP, SAT, 5, 0x01, bytes([0x00, 0x20, 0x01]))
        os.write(fs, with_len(rsp))
        eq(read_frame(fb), with_len(rsp), "response as the BMC reads it")
        eq(bmc.counters()["tx_frames"], 1, "BMC tx_frames")
        eq(bmc.counters()["rx_frames"], 1, "BMC rx_frames")
        eq(sat.counters()["rx_frames"], 1, "satellite rx_frames")
    finally:
        os.close(fb)
        os.close(fs)


def test_fifo_order_under_burst():
    bmc, sat = lib.two_nodes()
    fb, fs = bmc.open(), sat.open()
    try:
        sent = [frame(BMC, APP_RSP, SAT, seq, 0x01, bytes([0, seq])) for seq in range(64)]
        for f in sent:
            os.write(fs, with_len(f))
        got = [read_frame(fb) for _ in sent]
        eq(got, [with_len(f) for f in sent], "frames in arrival order")
    finally:
        os.close(fb)
        os.close(fs)


def test_poll_and_epoll():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        p = select.poll()
        p.register(fb, select.POLLIN | select.POLLOUT)
        eq(dict(p.poll(0)).get(fb), select.POLLOUT, "poll on an empty queue")
        ep = select.epoll()
        ep.register(fb, select.EPOLLIN | select.EPOLLET)
        eq(ep.poll(0.1), [], "epoll before a frame")
        lib.send_raw(sat.nr, frame(BMC, APP_RSP, SAT, 1, 0x01, b"\x00"))
        eq(ep.poll(2), [(fb, select.EPOLLIN)], "epoll after a frame")
        eq(dict(p.poll(0)).get(fb), select.POLLIN | select.POLLOUT, "poll with a frame queued")
        # ipmbbridged seeks to 0 before every read and ignores the result: it must be harmless.
        try:
            os.lseek(fb, 0, os.SEEK_SET)
        except OSError as e:
            eq(e.errno, errno.ESPIPE, "lseek errno (as the C driver)")
        read_frame(fb)
        eq(dict(p.poll(0)).get(fb), select.POLLOUT, "poll after reading it")
        ep.close()
    finally:
        os.close(fb)


def test_nonblocking_read_gives_eagain():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        lib.raises(errno.EAGAIN, os.read, fb, 256)
    finally:
        os.close(fb)


class Interrupted(Exception):
    pass


def test_signal_interrupts_blocked_read():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()

    def on_alarm(signum, frame_):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.time()
        try:
            os.read(fb, 256)
            raise AssertionError("read returned without a frame")
        except Interrupted:
            pass
        true(time.time() - start < 5, "read was interrupted promptly")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.close(fb)


def test_bad_frames_counted_not_delivered():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        good = frame(BMC, APP_RSP, SAT, 1, 0x01, b"\x00")
        bad_cs1 = bytearray(good)
        bad_cs1[2] ^= 1
        bad_cs2 = bytearray(good)
        bad_cs2[-1] ^= 1
        odd_src = frame(BMC, APP_RSP, 0x73, 1, 0x01, b"\x00")
        lib.send_raw(sat.nr, good[:5])
        lib.send_raw(sat.nr, bytes(bad_cs1))
        lib.send_raw(sat.nr, bytes(bad_cs2))
        lib.send_raw(sat.nr, odd_src)
        # Too long: the target refuses byte 240, past the default 239, so the sender sees a NAK.
        too_long = frame(BMC, APP_RSP, SAT, 1, 0x01, bytes(233))
        lib.raises(errno.EIO, lib.send_raw, sat.nr, too_long)
        lib.raises(errno.EAGAIN, os.read, fb, 256)
        c = bmc.counters()
        eq((c["rx_short"], c["rx_bad_cs1"], c["rx_bad_cs2"], c["rx_bad_addr"], c["rx_too_long"]),
           (1, 1, 1, 1, 1), "drop counters (short, cs1, cs2, addr, too long)")
        eq(c["rx_frames"], 0, "rx_frames")
        # A good frame after all that still arrives.
        lib.send_raw(sat.nr, good)
        eq(read_frame(fb), with_len(good), "good frame after bad ones")
    finally:
        os.close(fb)


def test_queue_overflow_counted():
    bmc, sat = lib.two_nodes("queue_len=4")
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        sent = [frame(BMC, APP_RSP, SAT, seq, 0x01, b"\x00") for seq in range(6)]
        for f in sent:
            lib.send_raw(sat.nr, f)
        eq([read_frame(fb) for _ in range(4)], [with_len(f) for f in sent[:4]], "oldest kept")
        lib.raises(errno.EAGAIN, os.read, fb, 256)
        eq(bmc.counters()["rx_overflow"], 2, "rx_overflow")
    finally:
        os.close(fb)


def test_oem_max_frame_len():
    bmc, sat = lib.two_nodes("max_frame_len=64")
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        f = frame(BMC, APP_RSP, SAT, 1, 0x01, bytes(range(50)))
        lib.send_raw(sat.nr, f)
        eq(read_frame(fb), with_len(f), "a 58-byte frame with max_frame_len=64")
    finally:
        os.close(fb)


def test_write_validation():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        good = frame(SAT, APP_REQ, BMC, 1, 0x01)
        bad = {
            "empty": b"",
            "short": with_len(good[:6]),
            "length past count": bytes([len(good) + 5]) + good,
            "bad cs1": with_len(good[:2] + bytes([good[2] ^ 1]) + good[3:]),
            "bad cs2": with_len(good[:-1] + bytes([good[-1] ^ 1])),
            "odd destination": with_len(frame(0x73, APP_REQ, BMC, 1, 0x01)),
            "too long": with_len(frame(SAT, APP_REQ, BMC, 1, 0x01, bytes(233))),  # 240 bytes
        }
        for name, buf in bad.items():
            try:
                os.write(fb, buf)
                raise AssertionError(f"write accepted: {name}")
            except OSError as e:
                eq(e.errno, errno.EINVAL, f"errno for {name}")
        eq(bmc.counters()["tx_invalid"], len(bad), "tx_invalid")
        eq(bmc.counters()["tx_frames"], 0, "tx_frames")
    finally:
        os.close(fb)


def test_write_retries_nak_then_fails():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        req = with_len(frame(SAT, APP_REQ, BMC, 1, 0x01))
        lib.vbus_param("nak_next", 1)
        eq(os.write(fb, req), len(req), "write after one NAK")
        lib.vbus_param("arb_lost_next", 2)
        eq(os.write(fb, req), len(req), "write after two arbitration losses")
        c = bmc.counters()
        eq((c["tx_frames"], c["tx_retries"], c["tx_errors"]), (2, 3, 0), "tx counters")
        lib.vbus_param("nak_next", 100)
        lib.raises(errno.ENXIO, os.write, fb, req)
        lib.vbus_param("nak_next", 0)
        c = bmc.counters()
        eq((c["tx_frames"], c["tx_retries"], c["tx_errors"]), (2, 6, 1), "tx counters")
        # No target at the address: NAK on every try, then ENXIO.
        lib.raises(errno.ENXIO, os.write, fb, with_len(frame(0x40, APP_REQ, BMC, 1, 0x01)))
    finally:
        os.close(fb)


def test_read_events_return_ff():
    bmc, sat = lib.two_nodes()
    got = lib.i2c_xfer(sat.nr, [(BMC >> 1, 4)])
    eq(got, [b"\xff" * 4], "bytes read from the target")
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        # A frame written then read back with a repeated START ends at the read request;
        # the STOP that follows the read must not queue it a second time.
        f = frame(BMC, APP_RSP, SAT, 1, 0x01, b"\x00")
        lib.i2c_xfer(sat.nr, [(BMC >> 1, f[1:]), (BMC >> 1, 1)])
        eq(read_frame(fb), with_len(f), "frame ended by a read request")
        lib.raises(errno.EAGAIN, os.read, fb, 256)
    finally:
        os.close(fb)


def test_second_instance_on_adapter_fails():
    bmc, sat = lib.two_nodes()
    with open(f"/sys/bus/i2c/devices/i2c-{bmc.nr}/new_device", "w") as f:
        f.write(f"ipmb-dev 0x{lib.OWN_SLAVE | 0x11:x}")
    try:
        client = f"/sys/bus/i2c/devices/{bmc.nr}-{lib.OWN_SLAVE | 0x11:04x}"
        true(not os.path.exists(os.path.join(client, "driver")), "second instance bound")
        true(os.path.exists(bmc.dev), "first instance's device is gone")
    finally:
        with open(f"/sys/bus/i2c/devices/i2c-{bmc.nr}/delete_device", "w") as f:
            f.write(f"0x{lib.OWN_SLAVE | 0x11:x}")


def test_unbind_with_blocked_reader():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fp = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    result = {}

    def reader():
        try:
            os.read(fb, 256)
            result["r"] = "returned"
        except OSError as e:
            result["r"] = e.errno

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    true(t.is_alive(), "reader is blocked")
    bmc.delete()
    t.join(5)
    true(not t.is_alive(), "reader still blocked after unbind")
    eq(result.get("r"), errno.ENODEV, "blocked read after unbind")
    lib.raises(errno.ENODEV, os.read, fp, 256)
    lib.raises(errno.ENODEV, os.write, fp, with_len(frame(SAT, APP_REQ, BMC, 1, 1)))
    p = select.poll()
    p.register(fp, select.POLLIN)
    true(dict(p.poll(0)).get(fp, 0) & select.POLLHUP, "poll reports hang-up after unbind")
    os.close(fb)
    os.close(fp)


def test_unload_with_open_file():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        r = lib.rmmod("ipmb", check=False)
        true(r.returncode != 0, "rmmod succeeded with a file open")
        true(lib.loaded("ipmb"), "module gone with a file open")
    finally:
        os.close(fb)
    # With the devices still bound and no file open, unloading unbinds them.
    lib.rmmod("ipmb")
    true(not lib.loaded("ipmb"), "module still loaded after close")
    true(not os.path.exists(bmc.dev), "/dev node left after unload")
    true(not os.path.exists(os.path.join(bmc.path, "driver")), "device still bound")


def test_smbus_block_write_opt_in():
    bmc, sat = lib.two_nodes("smbus_block_write=1", "max_frame_len=64")
    fb, fs = bmc.open(), sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        req = frame(SAT, APP_REQ, BMC, 1, 0x01)
        eq(os.write(fb, with_len(req)), len(req) + 1, "SMBus block write")
        # On the wire: netFn/LUN as the command, then a count byte the receiver takes for
        # the header checksum: an IPMB receiver drops it. That is why it is opt-in.
        lib.raises(errno.EAGAIN, os.read, fs, 256)
        eq(sat.counters()["rx_bad_cs1"], 1, "receiver's rx_bad_cs1")
        eq(bmc.counters()["tx_frames"], 1, "tx_frames")
        # A frame whose block would exceed 32 bytes is refused, not truncated.
        lib.raises(errno.EINVAL, os.write, fb,
                   with_len(frame(SAT, APP_REQ, BMC, 1, 0x01, bytes(30))))
    finally:
        os.close(fb)
        os.close(fs)


def test_dropped_stop_frame_ends_at_next_start():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        a = frame(BMC, APP_RSP, SAT, 1, 0x01, b"\x00")
        b = frame(BMC, APP_RSP, SAT, 2, 0x01, b"\x00")
        lib.vbus_param("drop_stop_next", 1)
        lib.send_raw(sat.nr, a)
        # Without its STOP the frame is still open: nothing to read yet.
        lib.raises(errno.EAGAIN, os.read, fb, 256)
        lib.send_raw(sat.nr, b)
        eq([read_frame(fb), read_frame(fb)], [with_len(a), with_len(b)],
           "the next START ends the open frame; both arrive, in order")
    finally:
        os.close(fb)


def test_corrupted_byte_on_wire_dropped():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        lib.vbus_param("corrupt_byte", 4)
        lib.send_raw(sat.nr, frame(BMC, APP_RSP, SAT, 1, 0x01, b"\x00"))
        lib.raises(errno.EAGAIN, os.read, fb, 256)
        eq(bmc.counters()["rx_bad_cs2"], 1, "rx_bad_cs2 after a corrupted seq byte")
    finally:
        os.close(fb)


def test_tx_retries_above_bound_refused():
    """tx_retries is bounded (15, like max-retries): a larger value fails the probe with
    EINVAL and leaves no device."""
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb", "tx_retries=16")
    lib.raises(errno.EINVAL, lib.Instance, a0, lib.BMC)
    true(not os.path.exists(f"/dev/ipmb-{a0}"), "/dev/ipmb after a refused probe")


def test_tx_retries_at_bound_accepted():
    a0, _ = lib.vbus(2)
    lib.insmod("ipmb", "tx_retries=15")
    bmc = lib.Instance(a0, lib.BMC)
    true(os.path.exists(bmc.dev), f"{bmc.dev} with tx_retries=15")
