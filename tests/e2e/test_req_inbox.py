# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of registrations, inboxes, IPMB_IOC_RESPOND, and responses nobody waits for.

Helpers and responders: reqlib.py.
"""

import errno
import fcntl
import os
import select

import ipmbabi as abi
import lib
from lib import (answer, closing, eq, frame, parse, poll_for, read_wait, true, with_len)
from reqlib import (APP, BMC, NOBODY, OEM, SAT, STORAGE, Legacy, answered, receive_wait,
                    synthesized, wait_counter)


# ---------------------------------------------------------------------------------------------
# Routing: registrations, read() and responses nobody waits for.

def test_registration_conflicts():
    bmc, sat = lib.two_nodes()
    f1, f2 = sat.open(), sat.open()
    try:
        abi.register(f1, APP, 0x01)
        abi.register(f1, APP, 0x01)  # again from the same file: fine
        lib.raises(errno.EBUSY, abi.register, f2, APP, 0x01)
        abi.register(f2, APP, 0x02)  # another cmd
        abi.register(f2, STORAGE, 0x01)  # another netFn
        lib.raises(errno.ENOENT, abi.unregister, f2, APP, 0x01)
        lib.raises(errno.ENOENT, abi.unregister, f1, OEM, 0x01)
        abi.unregister(f1, APP, 0x01)
        lib.raises(errno.ENOENT, abi.unregister, f1, APP, 0x01)
        abi.register(f2, APP, 0x01)
        lib.raises(errno.EBUSY, abi.register, f1, APP, 0x01)
        os.close(f2)
        f2 = None
        abi.register(f1, APP, 0x01)  # released by the close
        abi.register(f1, APP, 0x02)
        # Registrations are per device: the BMC's are separate.
        fb = bmc.open()
        try:
            abi.register(fb, APP, 0x01)
        finally:
            os.close(fb)
    finally:
        closing(*(f for f in (f1, f2) if f is not None))


def test_registrations_per_file_are_bounded():
    # A file holds at most max_registrations pairs (ENOSPC beyond); closing it releases
    # exactly those, and the pairs of other files stay theirs.
    bmc, sat = lib.two_nodes()
    f1, f2, f3 = sat.open(), sat.open(), sat.open()
    try:
        limit = abi.info(f1)["max_registrations"]
        pairs = [(OEM + 2 * (i // 256), i % 256) for i in range(limit)]
        for netfn, cmd in pairs:
            abi.register(f1, netfn, cmd)
        lib.raises(errno.ENOSPC, abi.register, f1, APP, 0x01)
        abi.register(f1, *pairs[0])  # held already: fine at the limit
        abi.unregister(f1, *pairs[-1])
        abi.register(f1, APP, 0x01)  # room again
        abi.register(f2, *pairs[-1])
        os.close(f1)
        f1 = None
        for netfn, cmd in pairs[:-1]:
            abi.register(f2, netfn, cmd)  # every pair of the closed file is free
        abi.register(f3, APP, 0x01)
        lib.raises(errno.ENOSPC, abi.register, f2, APP, 0x02)  # f2 is at the limit now
    finally:
        closing(*(f for f in (f1, f2, f3) if f is not None))


def test_registered_requests_bypass_read():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    fl = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        abi.register(fr, APP, 0x01)
        abi.submit(fb, SAT, APP, 0x01, b"reg", timeout_ms=3000, retries=0)
        abi.submit(fb, SAT, APP, 0x02, b"unreg", timeout_ms=3000, retries=0)
        abi.submit(fb, SAT, STORAGE, 0x01, b"netfn", timeout_ms=3000, retries=0)
        m = receive_wait(fr)
        eq((m["kind"], m["netfn"], m["cmd"], m["data"]), (abi.KIND_REQUEST, APP, 0x01, b"reg"),
           "the registered request")
        got = [parse(read_wait(fl)) for _ in range(2)]
        eq([(g["netfn"], g["cmd"], g["data"]) for g in got],
           [(APP, 0x02, b"unreg"), (STORAGE, 0x01, b"netfn")], "unregistered requests in read()")
        lib.raises(errno.EAGAIN, os.read, fl, 256)
        lib.raises(errno.EAGAIN, abi.receive, fr)
        eq(poll_for(fl, select.POLLPRI, 0), 0, "no EPOLLPRI for the file that registered nothing")
        # The answers reach the BMC's SUBMITs.
        abi.respond(fr, m, 0x00, b"R")
        for g in got:
            os.write(fl, with_len(answer(g, b"\x00L")))
        answers = sorted((receive_wait(fb)["data"] for _ in range(3)))
        eq(answers, [b"L", b"L", b"R"], "answers")
        # After UNREGISTER the pair goes to read() again.
        abi.unregister(fr, APP, 0x01)
        abi.submit(fb, SAT, APP, 0x01, b"again", timeout_ms=50, retries=0)
        eq(parse(read_wait(fl))["data"], b"again", "request after UNREGISTER")
        eq(sat.counters()["rx_routed"], 1, "rx_routed")
    finally:
        closing(fb, fr, fl)


def test_registered_inbox_overflow():
    bmc, sat = lib.two_nodes()
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    fl = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        inbox = abi.info(fr)["inbox_len"]
        abi.register(fr, OEM, 0x05)
        for seq in range(inbox + 2):
            lib.send_raw(bmc.nr, frame(SAT, OEM, BMC, seq % 64, 0x05, bytes([seq])))
        c = sat.counters()
        eq((c["rx_routed"], c["rx_route_overflow"]), (inbox, 2), "rx_routed, rx_route_overflow")
        got = [abi.receive(fr) for _ in range(inbox)]
        eq([m["seq"] for m in got], list(range(inbox)), "FIFO: the oldest kept")
        lib.raises(errno.EAGAIN, abi.receive, fr)
        lib.raises(errno.EAGAIN, os.read, fl, 256)  # dropped, not sent to read()
    finally:
        closing(fr, fl)


def test_respond_errors():
    bmc, sat = lib.two_nodes("max_frame_len=32")
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    other = sat.open()
    try:
        abi.register(fr, APP, 0x07)
        id_, seq = abi.submit(fb, SAT, APP, 0x07, b"q", timeout_ms=5000, retries=0)
        m = receive_wait(fr)
        eq(m["seq"], seq, "seq of the received request")
        # Another file does not hold the pair.
        lib.raises(errno.ENOENT, abi.respond, other, m, 0, b"x")
        # Longer than max_frame_len (32): 7 + cc + 25 bytes.
        lib.raises(errno.EMSGSIZE, abi.respond, fr, m, 0, bytes(25))
        # data_len past IPMB_MAX_DATA.
        bad = abi.pack_msg(m, cc=0, data=bytes(abi.MAX_DATA), data_len=abi.MAX_DATA + 1)
        lib.raises(errno.EINVAL, fcntl.ioctl, fr, abi.IOC_RESPOND, bad)
        abi.respond(fr, m, 0x00, bytes(range(24)))  # the longest answer that fits
        r = receive_wait(fb)
        eq(r["id"], id_, "id")
        answered(r, bytes(range(24)), "answer")
    finally:
        closing(fb, fr, other)


def test_respond_refuses_unknown_flags_and_reserved():
    # RESPOND takes the flags RECEIVE returns with a request (IPMB_MSG_BROADCAST) and nothing
    # else, and zero reserved fields: room for a later ABI.
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        abi.register(fr, APP, 0x07)
        id_, seq = abi.submit(fb, SAT, APP, 0x07, b"q", timeout_ms=5000, retries=0)
        m = receive_wait(fr)
        bad = {"flag SYNTHESIZED": dict(flags=abi.MSG_SYNTHESIZED), "flag 0x80": dict(flags=0x80),
               "flag 0x04": dict(flags=0x04), "reserved[1]": dict(reserved=(0, 1, 0, 0))}
        for name, fields in bad.items():
            buf = abi.pack_msg(m, cc=0, data=b"x", data_len=1, **fields)
            try:
                fcntl.ioctl(fr, abi.IOC_RESPOND, buf)
                raise AssertionError(f"RESPOND accepted: {name}")
            except OSError as e:
                eq(errno.errorcode.get(e.errno), "EINVAL", f"RESPOND errno for {name}")
        eq(sat.counters()["tx_frames"], 0, "nothing sent for refused responses")
        # IPMB_MSG_BROADCAST, as RECEIVE returns it for a broadcast request, is accepted.
        fcntl.ioctl(fr, abi.IOC_RESPOND, abi.pack_msg(m, cc=0, data=b"y", data_len=1,
                                                      flags=abi.MSG_BROADCAST))
        r = receive_wait(fb)
        eq((r["id"], r["data"]), (id_, b"y"), "the answer")
    finally:
        closing(fb, fr)


def test_outputs_have_zero_reserved():
    # What the kernel writes back has zero reserved fields, whatever the buffer held.
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        abi.register(fr, APP, 0x08)
        abi.submit(fb, SAT, APP, 0x08, b"", timeout_ms=5000, retries=0)
        true(poll_for(fr, select.POLLPRI, 3000) & select.POLLPRI, "the routed request")
        buf = bytearray(b"\xa5" * abi.MSG_SIZE)
        fcntl.ioctl(fr, abi.IOC_RECEIVE, buf, True)
        m = abi.unpack_msg(buf)
        eq(m["reserved"], (0,) * 4, "RECEIVE: reserved")
        rsp = abi.request(fb, NOBODY, APP, 0x01, timeout_ms=20, retries=0)
        eq(rsp["reserved"], (0,) * 4, "REQUEST: reserved")
    finally:
        closing(fb, fr)


def test_responses_nobody_waits_for_reach_read():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        unsolicited = frame(BMC, APP | 1, SAT, 9, 0x01, b"\x00\x01")
        os.write(fs, with_len(unsolicited))
        eq(read_wait(rd), with_len(unsolicited), "a response nobody waited for")
        # A response to a request sent with write() goes to the file that wrote it (ABI 4).
        os.write(fb, with_len(frame(SAT, APP, BMC, 10, 0x01)))
        req = parse(read_wait(fs))
        os.write(fs, with_len(answer(req, b"\x00\x02")))
        eq(read_wait(fb), with_len(answer(req, b"\x00\x02")), "answer to a write() request")
        lib.raises(errno.EAGAIN, os.read, rd, 256)
        # A second answer to a request the kernel matched is a duplicate: dropped.
        with Legacy(sat) as r:
            rsp = abi.request(fb, SAT, APP, 0x03, b"d", timeout_ms=2000, retries=0)
            answered(rsp, b"d", "request")
            dup = r.seen[0]
        os.write(fs, with_len(answer(dup, b"\x00d")))
        wait_counter(bmc, "rsp_duplicate", 1)
        lib.raises(errno.EAGAIN, os.read, rd, 256)
        c = bmc.counters()
        eq((c["rsp_matched"], c["rsp_late"]), (1, 0), "rsp_matched, rsp_late")
    finally:
        closing(fb, rd, fs)


def test_max_clients():
    # An inbox place is taken when a file is opened, for the first max_clients files open at
    # a time; files beyond get EMFILE from SUBMIT, RECEIVE and REGISTER but can still read(),
    # write() and make synchronous requests.
    bmc, sat = lib.two_nodes()
    fds = []
    try:
        fds.append(bmc.open(os.O_RDWR | os.O_NONBLOCK))
        n = abi.info(fds[0])["max_clients"]
        fds += [bmc.open(os.O_RDWR | os.O_NONBLOCK) for _ in range(n - 1)]
        for k, fd in enumerate(fds):
            abi.register(fd, OEM, k)
        extra = bmc.open(os.O_RDWR | os.O_NONBLOCK)
        fds.append(extra)
        eq(abi.info(extra)["abi_version"], abi.ABI_VERSION, "INFO on a file past max_clients")
        lib.raises(errno.EMFILE, abi.register, extra, OEM, 0xFF)
        lib.raises(errno.EMFILE, abi.submit, extra, SAT, APP, 0x01, b"", 0, 0, 50, 0)
        lib.raises(errno.EMFILE, abi.receive, extra)
        synthesized(abi.request(extra, SAT, APP, 0x01, b"", timeout_ms=20, retries=0),
                    abi.CC_TIMEOUT, "synchronous REQUEST on a file past max_clients")
        lib.send_raw(sat.nr, frame(BMC, APP | 1, SAT, 1, 0x01, b"\x00"))
        true(poll_for(extra, select.POLLIN, 3000) & select.POLLIN, "EPOLLIN past max_clients")
        eq(os.read(extra, 256), with_len(frame(BMC, APP | 1, SAT, 1, 0x01, b"\x00")),
           "read() on a file past max_clients")
        # A place freed by a close goes to a file opened afterwards (not to `extra`, which
        # was opened without one).
        os.close(fds.pop(0))
        late = bmc.open(os.O_RDWR | os.O_NONBLOCK)
        fds.append(late)
        abi.register(late, OEM, 0xFF)
        lib.raises(errno.EMFILE, abi.register, extra, OEM, 0xFE)
    finally:
        closing(*fds)
