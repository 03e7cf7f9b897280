# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of the request/response ioctls: INFO, synchronous and asynchronous requests,
broadcasts, and seqs shared with write().

Helpers and responders: reqlib.py.
"""

import errno
import fcntl
import os
import select
import struct
import time

import ipmbabi as abi
import lib
from lib import (answer, closing, eq, frame, parse, poll_for, read_wait, true, with_len)
from reqlib import (APP, BMC, GET_DEVICE_ID, NOBODY, OEM, SAT, STORAGE, Legacy, Registered,
                    answered, drain, receive_wait, synthesized, wait_counter)


# ---------------------------------------------------------------------------------------------
# INFO defaults.

def test_info_request_defaults():
    bmc, sat = lib.two_nodes()
    fd = bmc.open()
    try:
        i = abi.info(fd)
        got = {k: i[k] for k in ("abi_version", "req_timeout_ms", "req_retries", "seq_count",
                                 "seq_expiry_ms", "max_clients", "inbox_len", "max_frame_len",
                                 "max_registrations")}
        eq(got, dict(abi_version=abi.ABI_VERSION, req_timeout_ms=250, req_retries=3,
                     seq_count=64, seq_expiry_ms=5000, max_clients=64, inbox_len=32, max_frame_len=239,
                     max_registrations=256),
           "ipmb_info defaults")
        eq(i["reserved"], (0,) * 4, "reserved")
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# Synchronous requests.

def test_sync_request_legacy_responder():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        with Legacy(sat) as r:
            for i, (lun, own_lun) in enumerate(((0, 0), (2, 1), (3, 3))):
                data = bytes([i, 0xA5, lun, own_lun])
                rsp = abi.request(fb, SAT, APP, 0x10 + i, data, lun=lun, own_lun=own_lun,
                                  timeout_ms=2000, retries=0)
                answered(rsp, data, f"request {i}")
                req = r.seen[i]
                eq((req["dest"], req["netfn"], req["dest_lun"], req["src"], req["src_lun"],
                    req["cmd"], req["data"], req["seq"]),
                   (SAT, APP, lun, BMC, own_lun, 0x10 + i, data, rsp["seq"]),
                   f"request {i} on the wire (rsSA, netFn, rsLUN, rqSA, rqLUN, cmd, data, seq)")
                eq((rsp["netfn"], rsp["cmd"], rsp["addr"], rsp["lun"], rsp["own_lun"]),
                   (APP, 0x10 + i, SAT, lun, own_lun), f"response {i} fields")
        # An empty-data response (cc only), and a non-zero cc.
        with Legacy(sat, lambda req, n: (0, b"\xc1")) as r:
            rsp = abi.request(fb, SAT, APP, 0x20, b"\x01", timeout_ms=2000, retries=0)
            eq((rsp["cc"], rsp["data_len"], rsp["flags"]), (0xC1, 0, 0), "cc-only response")
        c = bmc.counters()
        eq((c["req_sent"], c["rsp_matched"], c["req_retries"], c["req_timeouts"]), (4, 4, 0, 0),
           "req_sent, rsp_matched, req_retries, req_timeouts")
        eq(abi.stats(fb)["req_inflight"], 0, "req_inflight")
        lib.raises(errno.EAGAIN, os.read, rd, 256)  # matched responses do not reach read()
    finally:
        closing(fb, rd)


def test_sync_request_registered_responder():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        with Registered(sat, [(APP, 0x30), (OEM, 0x31)]) as r:
            cases = [(APP, 0x30, b"abc", 0, 0), (OEM, 0x31, bytes(range(20)), 1, 2),
                     (APP, 0x30, b"", 3, 1)]
            for i, (netfn, cmd, data, lun, own_lun) in enumerate(cases):
                rsp = abi.request(fb, SAT, netfn, cmd, data, lun=lun, own_lun=own_lun,
                                  timeout_ms=2000, retries=0)
                answered(rsp, data, f"request {i}")
                m = r.seen[i]
                eq((m["kind"], m["id"], m["addr"], m["netfn"], m["cmd"], m["lun"],
                    m["own_lun"], m["seq"], m["data"], m["flags"]),
                   (abi.KIND_REQUEST, 0, BMC, netfn, cmd, own_lun, lun, rsp["seq"], data, 0),
                   f"request {i} as RECEIVE returns it "
                   "(kind, id, addr, netfn, cmd, lun, own_lun, seq, data, flags)")
        c = sat.counters()
        eq((c["rx_routed"], c["rx_route_overflow"]), (3, 0), "satellite rx_routed, overflow")
        lib.raises(errno.EAGAIN, os.read, fs, 256)  # routed requests do not reach read()
        eq(bmc.counters()["rsp_matched"], 3, "BMC rsp_matched")
    finally:
        closing(fb, fs)


def _load_child(dev, p, count, wfd, go):
    """A requester process: `count` requests, each answer checked; exits 0 or 1."""
    try:
        os.read(go, 1)
        fd = os.open(dev, os.O_RDWR)
        for i in range(count):
            # Half the processes talk to the legacy responder, half to the registered one;
            # the cmd varies so no (netFn, cmd) runs out of seqs (64 per 5 s).
            netfn = APP if p % 2 == 0 else STORAGE
            cmd = (p * count + i) % 256 if netfn == APP else (p * count + i) % 64
            data = struct.pack("<BHB", p, i, cmd) + bytes((i + k) & 0xFF for k in range(i % 9))
            rsp = abi.request(fd, SAT, netfn, cmd, data, timeout_ms=3000, retries=1)
            if (rsp["cc"], rsp["flags"], rsp["data"], rsp["cmd"]) != (0, 0, data, cmd):
                raise AssertionError(f"process {p} request {i}: sent {data.hex()} cmd {cmd}, "
                                     f"got {rsp}")
        os.close(fd)
        os._exit(0)
    except BaseException as e:  # noqa: B036 - a child reports every failure and exits
        try:
            os.write(wfd, f"process {p}: {e!r}".encode()[:4000])
        finally:
            os._exit(1)


def test_many_processes_many_requests():
    procs, count = 4, 200
    bmc, sat = lib.two_nodes()
    with lib.Workers(procs, lambda p, w, go: _load_child(bmc.dev, p, count, w, go)) as workers:
        with Legacy(sat) as legacy, \
                Registered(sat, [(STORAGE, c) for c in range(64)]) as registered:
            workers.start()
            deadline = time.monotonic() + 100
            failures, left = [], dict(workers.children)
            while left and time.monotonic() < deadline:
                for pid in list(left):
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        msg = os.read(left.pop(pid), 4096).decode(errors="replace")
                        if status != 0:
                            failures.append(msg or f"pid {pid} status {status:#x}")
                time.sleep(0.05)
            failures += [f"pid {pid} did not finish in time" for pid in left]
            eq(failures, [], "requester processes")
            eq((len(legacy.seen) >= procs // 2 * count, len(registered.seen) >= procs // 2 * count),
               (True, True), "requests the responders saw")
    c = bmc.counters()
    eq((c["req_sent"], c["rsp_matched"], c["req_timeouts"], c["req_bus_errors"]),
       (procs * count, procs * count, 0, 0),
       "BMC req_sent, rsp_matched, req_timeouts, req_bus_errors")
    eq(sat.counters()["rx_routed"], len(registered.seen), "satellite rx_routed")
    fd = bmc.open()
    try:
        eq(abi.stats(fd)["req_inflight"], 0, "req_inflight after the load")
    finally:
        os.close(fd)


test_many_processes_many_requests.timeout = 150


# ---------------------------------------------------------------------------------------------
# Asynchronous requests.

def test_async_submit_receive_poll():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    other = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        eq(poll_for(fb, select.POLLPRI | select.POLLOUT, 0), select.POLLOUT,
           "poll before any SUBMIT")
        lib.raises(errno.EAGAIN, abi.receive, fb)
        def policy(req, n):  # answers out of order; ignores cmd 0x5F
            return None if req["cmd"] == 0x5F else (0.05 * (n % 3), b"\x00" + req["data"])

        with Legacy(sat, policy):
            sent = {}
            for i in range(8):
                data = bytes([i]) * (i + 1)
                id_, seq = abi.submit(fb, SAT, APP, 0x40 + i, data, timeout_ms=3000,
                                      retries=0)
                true(id_ != 0, "SUBMIT id is nonzero")
                true(id_ not in sent, f"SUBMIT id {id_} is unique")
                sent[id_] = (seq, data, 0x40 + i)
            # One to an address nobody has: its synthesized answer comes the same way.
            id_, seq = abi.submit(fb, NOBODY, APP, 0x50, b"\x01", timeout_ms=3000, retries=0)
            true(id_ != 0 and id_ not in sent, "SUBMIT id of the failing request")
            sent[id_] = (seq, abi.CC_BUS_ERROR, 0x50)
            # One the satellite ignores: it times out.
            id_, seq = abi.submit(fb, SAT, APP, 0x5F, b"\x02", timeout_ms=50, retries=1)
            true(id_ != 0 and id_ not in sent, "SUBMIT id of the ignored request")
            sent[id_] = (seq, abi.CC_TIMEOUT, 0x5F)
            true(poll_for(fb, select.POLLPRI, 3000) & select.POLLPRI, "EPOLLPRI after SUBMIT")
            lib.raises(errno.EFAULT, fcntl.ioctl, fb, abi.IOC_RECEIVE, 8)
            got = {}
            while len(got) < len(sent):
                m = receive_wait(fb)
                true(m["id"] in sent and m["id"] not in got, f"RECEIVE id {m['id']} expected")
                got[m["id"]] = m
            eq(poll_for(other, select.POLLPRI, 0), 0, "EPOLLPRI on a file that submitted nothing")
            lib.raises(errno.EAGAIN, abi.receive, other)
        for id_, (seq, data, cmd) in sent.items():
            m = got[id_]
            eq((m["kind"], m["seq"], m["cmd"]), (abi.KIND_RESPONSE, seq, cmd),
               f"id {id_}: kind, seq, cmd")
            if isinstance(data, int):
                synthesized(m, data, f"id {id_} (cmd {cmd:#x})")
            else:
                answered(m, data, f"id {id_}")
        eq(poll_for(fb, select.POLLPRI | select.POLLOUT, 0), select.POLLOUT,
           "poll after receiving everything")
        lib.raises(errno.EAGAIN, abi.receive, fb)
        c = bmc.counters()
        eq((c["req_sent"], c["rsp_matched"], c["req_bus_errors"], c["req_timeouts"],
            c["req_retries"]), (10, 8, 1, 1, 1),
           "req_sent, rsp_matched, req_bus_errors, req_timeouts, req_retries")
    finally:
        closing(fb, other)


def test_close_with_async_requests_pending():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        inbox = abi.info(fb)["inbox_len"]
        for i in range(inbox):
            abi.submit(fb, SAT, APP, i, bytes([i]), timeout_ms=20000, retries=0)
        # The file's inbox is full of outstanding requests: one more is refused.
        lib.raises(errno.EAGAIN, abi.submit, fb, SAT, APP, 0x80, b"", 0, 0, 20000, 0)
        eq(abi.stats(fb)["req_inflight"], inbox, "req_inflight")
        reqs = [parse(read_wait(fs)) for _ in range(3)]
        os.close(fb)
        fb = None
        wait_counter(bmc, "req_aborted", inbox)
        eq(abi.stats(rd)["req_inflight"], 0, "req_inflight after close")
        for req in reqs:
            os.write(fs, with_len(answer(req, b"\x00" + req["data"])))
        wait_counter(bmc, "rsp_late", 3)
        eq(bmc.counters()["rsp_matched"], 0, "rsp_matched")
        lib.raises(errno.EAGAIN, os.read, rd, 256)  # late responses do not reach read()
        # The device still works.
        drain(fs)
        with Legacy(sat):
            fb = bmc.open()
            answered(abi.request(fb, SAT, APP, 0x81, b"ok", timeout_ms=2000, retries=0),
                     b"ok", "request after the close")
    finally:
        closing(*(x for x in (fb, rd, fs) if x is not None))


# ---------------------------------------------------------------------------------------------
# Broadcast.

def test_broadcast_get_device_id():
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fr = sat.open(os.O_RDWR | os.O_NONBLOCK)
    fl = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        device_id = bytes([0x20, 0x81, 0x01, 0x02, 0x02, 0xBF, 0x57, 0x01, 0x00, 0x12, 0x34])
        # A registered responder: the request comes flagged as a broadcast; the answer is an
        # ordinary response, matched to the broadcast request.
        abi.register(fr, APP, GET_DEVICE_ID)
        id_, seq = abi.submit(fb, SAT, APP, GET_DEVICE_ID, timeout_ms=3000,
                              flags=abi.MSG_BROADCAST)
        m = receive_wait(fr)
        eq((m["kind"], m["addr"], m["netfn"], m["cmd"], m["seq"],
            m["flags"] & abi.MSG_BROADCAST),
           (abi.KIND_REQUEST, BMC, APP, GET_DEVICE_ID, seq, abi.MSG_BROADCAST),
           "broadcast request as RECEIVE returns it (kind, addr, netfn, cmd, seq, flags)")
        abi.respond(fr, m, 0x00, device_id)
        r = receive_wait(fb)
        eq((r["id"], r["seq"]), (id_, seq), "id and seq of the answer")
        answered(r, device_id, "Get Device ID answer to the broadcast")
        eq(sat.counters()["rx_broadcast"], 1, "satellite rx_broadcast")
        c = bmc.counters()
        eq((c["tx_broadcast"], c["rsp_matched"], c["req_sent"]), (1, 1, 1),
           "BMC tx_broadcast, rsp_matched, req_sent")
        # A legacy reader gets the frame as a normal request; a broadcast is never resent.
        abi.unregister(fr, APP, GET_DEVICE_ID)
        rsp = abi.request(fb, SAT, APP, GET_DEVICE_ID, timeout_ms=50, retries=3,
                          flags=abi.MSG_BROADCAST)
        synthesized(rsp, abi.CC_TIMEOUT, "unanswered broadcast")
        got = parse(read_wait(fl))
        eq((got["dest"], got["netfn"], got["src"], got["cmd"], got["seq"]),
           (SAT, APP, BMC, GET_DEVICE_ID, rsp["seq"]), "broadcast frame in read()")
        lib.raises(errno.EAGAIN, os.read, fl, 256)  # one try only
        c = bmc.counters()
        eq((c["tx_broadcast"], c["req_retries"], c["req_timeouts"]), (2, 0, 1),
           "BMC tx_broadcast, req_retries, req_timeouts")
        eq(sat.counters()["rx_broadcast"], 2, "satellite rx_broadcast")
        # A broadcast for another address is not counted as ours.
        rsp = abi.request(fb, 0x74, APP, GET_DEVICE_ID, timeout_ms=50, retries=0,
                          flags=abi.MSG_BROADCAST)
        eq(rsp["flags"] & abi.MSG_SYNTHESIZED, abi.MSG_SYNTHESIZED, "broadcast to 0x74")
        eq(sat.counters()["rx_broadcast"], 2, "satellite rx_broadcast after one for 0x74")
    finally:
        closing(fb, fr, fl)


def test_write_and_kernel_requests_share_seqs():
    """A request sent with write() keeps its seq away from the kernel's requests to the same
    exchange (and its response goes to read()); a write() that collides with a kernel
    request in flight (same exchange and seq) is refused with EBUSY, not sent."""
    bmc, sat = lib.two_nodes()
    fd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    sfd = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        # The kernel's request in flight (nobody answers it).
        _, seq = abi.submit(fd, SAT, APP, 0x22, timeout_ms=5000, retries=0)
        read_wait(sfd)
        lib.raises(errno.EBUSY, os.write, fd, with_len(frame(SAT, APP, BMC, seq, 0x22)))
        eq(lib.queued_frames(sfd), [], "nothing sent for the refused write()")
        # Another seq, or another cmd with the same seq, is fine.
        ext = (seq + 5) % 64
        os.write(fd, with_len(frame(SAT, APP, BMC, ext, 0x22)))
        os.write(fd, with_len(frame(SAT, APP, BMC, ext, 0x23)))
        eq(len(lib.queued_frames(sfd)), 2, "the two other writes were sent")
        # The kernel's requests for cmd 0x23 go round the seqs and skip the one write() used.
        seqs = [abi.submit(fd, SAT, APP, 0x23, timeout_ms=5000, retries=0)[1]
                for _ in range(30)]
        eq(len(set(seqs)), 30, "distinct seqs")
        true(ext not in seqs and seq not in seqs,
             f"kernel seqs for cmd 0x23 {seqs} avoid {ext} (write()) and {seq} (in flight)")
        true(any(s > ext for s in seqs) or ext > 60, f"the seqs {seqs} went past {ext}")
        # The answer to the write() request reaches read(), not the kernel's requester.
        lib.queued_frames(sfd)
        req = parse(with_len(frame(SAT, APP, BMC, ext, 0x23)))
        os.write(sfd, with_len(answer(req, b"\x00\x99")))
        got = parse(read_wait(fd))
        eq((got["seq"], got["cmd"], bytes(got["data"])), (ext, 0x23, b"\x00\x99"),
           "response to the write() request in read()")
    finally:
        closing(fd, sfd)
