# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of the request ioctls' argument checks, signals, and unbind.

Helpers and responders: reqlib.py.
"""

import ctypes
import errno
import fcntl
import os
import signal
import threading
import time

import ipmbabi as abi
import lib
from lib import (answer, closing, eq, parse, read_wait, true, wait_for, with_len)
from reqlib import (APP, NOBODY, SAT, Deadline, call_with_deadline, synthesized, wait_counter)


# ---------------------------------------------------------------------------------------------
# Argument checks, signals, unbind.

def test_bad_request_arguments():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        # (Not RECEIVE: with nothing to receive it would wait before writing anything.)
        for code in (abi.IOC_REQUEST, abi.IOC_SUBMIT, abi.IOC_REGISTER,
                     abi.IOC_UNREGISTER, abi.IOC_RESPOND, abi.IOC_INFO, abi.IOC_STATS):
            for ptr in (0, 8):
                try:
                    fcntl.ioctl(fb, code, ptr)
                    raise AssertionError(f"ioctl {code:#x} with pointer {ptr} succeeded")
                except OSError as e:
                    eq(errno.errorcode.get(e.errno), "EFAULT", f"ioctl {code:#x} pointer {ptr}")
        good = dict(addr=SAT, netfn=APP, cmd=0x01, data=b"", timeout_ms=50, retries=0)
        bad = {
            "odd addr": dict(addr=0x73),
            "odd netfn": dict(netfn=0x07),
            "netfn 64": dict(netfn=0x40),
            "lun 4": dict(lun=4),
            "own_lun 4": dict(own_lun=4),
            "data_len 241": dict(data=bytes(abi.MAX_DATA), data_len=abi.MAX_DATA + 1),
            "retries 16": dict(retries=abi.MAX_RETRIES + 1),
            "retries 0xfe": dict(retries=0xFE),
            "flag SYNTHESIZED": dict(flags=abi.MSG_SYNTHESIZED),
            "flag 0x80": dict(flags=0x80),
            "flag 0x04": dict(flags=0x04),
            "timeout 60001": dict(timeout_ms=abi.MAX_TIMEOUT_MS + 1),
            "reserved[0]": dict(reserved=(1, 0, 0, 0)),
            "reserved[3]": dict(reserved=(0, 0, 0, 0x80000000)),
        }
        for name, fields in bad.items():
            for code, what in ((abi.IOC_REQUEST, "REQUEST"), (abi.IOC_SUBMIT, "SUBMIT")):
                buf = bytearray(abi.pack_msg(good, **fields))
                try:
                    fcntl.ioctl(fb, code, buf, True)
                    raise AssertionError(f"{what} accepted: {name}")
                except OSError as e:
                    eq(errno.errorcode.get(e.errno), "EINVAL", f"{what} errno for {name}")
        for name, args in {"odd netfn": (0x07, 1, 0), "netfn 64": (0x40, 1, 0),
                           "reserved": (APP, 1, 1)}.items():
            try:
                abi.register(fb, *args)
                raise AssertionError(f"REGISTER accepted: {name}")
            except OSError as e:
                eq(errno.errorcode.get(e.errno), "EINVAL", f"REGISTER errno for {name}")
        c = bmc.counters()
        eq((c["tx_frames"], c["req_sent"]), (0, 0), "nothing sent for refused requests")
        # The limits themselves are accepted.
        rsp = abi.request(fb, NOBODY, APP, 0x01, timeout_ms=abi.MAX_TIMEOUT_MS,
                          retries=abi.MAX_RETRIES, lun=3, own_lun=3)
        synthesized(rsp, abi.CC_BUS_ERROR, "request at the limits")
        # Unknown numbers, wrong sizes or directions, another magic: ENOTTY.
        # The ABI v2 message size (264 bytes) is another command too.
        for code in (abi.iowr(0x08, abi.MSG_SIZE), abi.iowr(0x02, abi.MSG_SIZE - 4),
                     abi.iowr(0x02, 260), abi.iowr(0x02, 264), abi.iow(0x07, 264), abi.iow(0x02, abi.MSG_SIZE), abi.ior(0x03, abi.MSG_SIZE),
                     abi.iowr(0x04, abi.MSG_SIZE), abi.iow(0x05, 8), abi.ior(0x00, 40),
                     abi.ior(0x01, 128), abi.ioc(abi.IOC_READ | abi.IOC_WRITE, 0x02,
                                                 abi.MSG_SIZE, magic=0xBC)):
            try:
                fcntl.ioctl(fb, code, bytearray(abi.MSG_SIZE + 64), True)
                raise AssertionError(f"ioctl {code:#x} succeeded")
            except OSError as e:
                eq(errno.errorcode.get(e.errno), "ENOTTY", f"errno of ioctl {code:#x}")
        # RESPOND without holding the pair.
        req = dict(kind=abi.KIND_REQUEST, addr=SAT, netfn=APP, cmd=0x01, seq=3)
        lib.raises(errno.ENOENT, abi.respond, fb, req, 0, b"")
        eq(abi.info(fb)["abi_version"], abi.ABI_VERSION, "INFO after bad calls")
    finally:
        os.close(fb)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]


def raw_ioctl(fd, code, buf):
    """ioctl(2) through libc, without Python's handling of EINTR: returns (ret, errno)."""
    cbuf = (ctypes.c_char * len(buf)).from_buffer(buf)
    ret = _libc.ioctl(fd, code, ctypes.addressof(cbuf))
    return ret, ctypes.get_errno()


def test_signal_interrupts_request():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    caught = []
    old = signal.signal(signal.SIGALRM, lambda s, f: caught.append(s))
    runner_alarm = signal.setitimer(signal.ITIMER_REAL, 0.3)[0]
    start = time.monotonic()
    try:
        buf = bytearray(abi.request_msg(SAT, APP, 0x01, b"\x01", timeout_ms=10000, retries=0))
        ret, err = raw_ioctl(fb, abi.IOC_REQUEST, buf)
        elapsed = time.monotonic() - start
        eq((ret, errno.errorcode.get(err)), (-1, "EINTR"), "REQUEST interrupted by a signal")
        true(elapsed < 3, f"interrupted promptly ({elapsed:.2f} s)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if runner_alarm:
            signal.setitimer(signal.ITIMER_REAL,
                             max(runner_alarm - (time.monotonic() - start), 0.01))
    try:
        eq(caught, [signal.SIGALRM], "the signal was handled")
        s = abi.stats(fb)
        eq((s["req_aborted"], s["req_inflight"], s["req_timeouts"]), (1, 0, 0),
           "req_aborted, req_inflight, req_timeouts")
        # The answer that comes afterwards is late: dropped, not in read().
        req = parse(read_wait(fs))
        os.write(fs, with_len(answer(req, b"\x00\x01")))
        wait_counter(bmc, "rsp_late", 1)
        lib.raises(errno.EAGAIN, os.read, rd, 256)
        # A signal whose handler raises (Python's usual way to stop a blocking call).
        start = time.monotonic()
        try:
            call_with_deadline(0.3, abi.request, fb, SAT, APP, 0x02, b"\x02",
                               timeout_ms=10000, retries=0)
            raise AssertionError("REQUEST returned without a response")
        except Deadline:
            pass
        true(time.monotonic() - start < 3, "interrupted promptly")
        eq(abi.stats(fb)["req_aborted"], 2, "req_aborted")
    finally:
        closing(fb, rd, fs)


def test_unbind_cuts_sync_request_with_enodev():
    """A synchronous REQUEST waiting for its response when the device is unbound returns
    ENODEV: the device is gone, which no completion code (0x82 is a bus error) says."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fa = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    result = []

    def sync_request():
        try:
            result.append(abi.request(fb, SAT, APP, 0x01, b"s", timeout_ms=10000, retries=0))
        except OSError as e:
            result.append(errno.errorcode.get(e.errno))

    t = threading.Thread(target=sync_request, daemon=True)
    try:
        # An asynchronous request in flight too, so the unbind has both kinds to abandon.
        abi.submit(fa, SAT, APP, 0x02, b"a", timeout_ms=10000, retries=0)
        t.start()
        wait_for(lambda: bmc.counters()["req_sent"] == 2, "both requests sent")
        bmc.delete()
        t.join(5)
        true(not t.is_alive(), "the sync REQUEST returned after unbind")
        eq(result, ["ENODEV"], "what the REQUEST cut by unbind returned")
    finally:
        closing(fb, fa)
        if t.ident is not None:
            t.join(5)


def test_ioctls_after_unbind_enodev():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fa = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        abi.register(fr, APP, 0x09)
        bmc.delete()
        got = {}
        for name, fn, args in (("REQUEST", abi.request, (fb, SAT, APP, 0x03)),
                               ("SUBMIT", abi.submit, (fa, SAT, APP, 0x03)),
                               ("REGISTER", abi.register, (fr, APP, 0x0A)),
                               ("UNREGISTER", abi.unregister, (fr, APP, 0x09)),
                               ("STATS", abi.stats, (fa,))):
            try:
                fn(*args)
                got[name] = "success"
            except OSError as e:
                got[name] = errno.errorcode.get(e.errno)
        eq(got, dict.fromkeys(got, "ENODEV"), "ioctls on files open across unbind")
    finally:
        closing(fb, fa, fr)


def test_oversized_requests_after_unbind_enodev():
    """After unbind, a REQUEST or SUBMIT too long for max_frame_len gives ENODEV like any
    other, not a synthesized IPMB_CC_TOO_LONG."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fa = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        big = bytes(abi.info(fb)["max_frame_len"])
        bmc.delete()
        got = {}
        for name, fn, fd in (("REQUEST", abi.request, fb), ("SUBMIT", abi.submit, fa)):
            try:
                fn(fd, SAT, APP, 0x01, big, timeout_ms=50, retries=0)
                got[name] = "success"
            except OSError as e:
                got[name] = errno.errorcode.get(e.errno)
        eq(got, dict(REQUEST="ENODEV", SUBMIT="ENODEV"), "oversized requests after unbind")
    finally:
        closing(fb, fa)


def test_unbind_stops_transmit_retries():
    """Unbind during a send's NAK retries: the send stops at the next try (unbind waits for one
    transfer, not for every retry), and the REQUEST gives ENODEV, not IPMB_CC_BUS_ERROR."""
    bmc, sat = lib.two_nodes("tx_retries=15")
    fb = bmc.open()
    result = []

    def sync_request():
        try:
            result.append(abi.request(fb, SAT, APP, 0x01, b"r", timeout_ms=5000, retries=0))
        except OSError as e:
            result.append(errno.errorcode.get(e.errno))
        times.append(time.monotonic())

    t = threading.Thread(target=sync_request, daemon=True)
    naks = 1000
    lib.vbus_param("nak_next", naks)
    times = []
    try:
        times.append(time.monotonic())
        t.start()
        # 15 retries back off 0.5, 1, 2, 4, 8 and then 16 ms each: about 175 ms in all.
        # (One counter file: reading them all takes long enough in the TCG guest to miss it.)
        retries = os.path.join(bmc.path, "statistics", "tx_retries")
        seen = wait_for(lambda: int(lib.read(retries)), "the send is being retried")
        times.append(time.monotonic())
        bmc.delete()
        times.append(time.monotonic())
        t.join(5)
        times = [round(x - times[0], 3) for x in times]
        true(not t.is_alive(), "the REQUEST returned after unbind")
        tries = naks - int(lib.read("/sys/module/i2c_vbus/parameters/nak_next"))
    finally:
        lib.vbus_param("nak_next", 0)
        os.close(fb)
        if t.ident is not None:
            t.join(5)
    eq(result, ["ENODEV"], f"what the REQUEST NAKed across unbind returned (retries seen {seen}, "
                           f"times: retrying, unbound, returned {times[1:]})")
    true(tries < 16, f"the send stopped retrying at unbind ({tries} of 16 tries made)")
