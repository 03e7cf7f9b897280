# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of the request/response ioctls (ABI v3 of include/uapi/linux/ipmb.h).

The BMC (0x20) sends requests with IPMB_IOC_REQUEST/SUBMIT; the satellite (0x72) answers,
either as a legacy responder (read()/write() of raw frames) or as a registered one
(IPMB_IOC_REGISTER/RECEIVE/RESPOND). Responders run in threads of the test process; the load
test adds forked requester processes.
"""

import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
import threading
import time

import ipmbabi as abi
import lib
from lib import (answer, closing, eq, frame, parse, poll_for, read_wait, true, wait_for,
                 with_len)

BMC, SAT = lib.BMC, lib.SAT
NOBODY = 0x40                       # an address no node on the wire has
APP, STORAGE, OEM = 0x06, 0x0A, 0x30  # request netFns
GET_DEVICE_ID = 0x01


# ---------------------------------------------------------------------------------------------
# Helpers.

def echo(req, n):
    return 0.0, b"\x00" + bytes(req["data"])


def wait_counter(inst, name, value, timeout=3.0):
    """Waits until counter `name` of `inst` reaches `value`, then requires it equal."""
    wait_for(lambda: inst.counters()[name] >= value, f"{name} >= {value} on {inst.client}",
             timeout)
    eq(inst.counters()[name], value, name)


def delta(after, before, *names):
    return {n: after[n] - before[n] for n in names}


def receive_wait(fd, timeout_ms=3000):
    """IPMB_IOC_RECEIVE on a non-blocking file, after poll() reports EPOLLPRI."""
    true(poll_for(fd, select.POLLPRI, timeout_ms) & select.POLLPRI,
         f"EPOLLPRI within {timeout_ms} ms")
    return abi.receive(fd)


def drain(fd):
    while True:
        try:
            os.read(fd, 256)
        except BlockingIOError:
            return


class Deadline(Exception):
    pass


def call_with_deadline(seconds, fn, *args, **kwargs):
    """Calls fn; a SIGALRM after `seconds` interrupts it with Deadline.

    The runner's own alarm (its time limit for the test) is put back afterwards.
    """
    def on_alarm(signum, frame_):
        raise Deadline()

    old = signal.signal(signal.SIGALRM, on_alarm)
    runner = signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))[0]
    start = time.monotonic()
    try:
        return fn(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if runner:
            signal.setitimer(signal.ITIMER_REAL, max(runner - (time.monotonic() - start), 0.01))


def synthesized(rsp, cc, what):
    eq((rsp["cc"], rsp["flags"] & abi.MSG_SYNTHESIZED, rsp["data_len"]),
       (cc, abi.MSG_SYNTHESIZED, 0), f"{what}: (cc, IPMB_MSG_SYNTHESIZED, data_len)")


def answered(rsp, data, what):
    eq((rsp["cc"], rsp["flags"] & abi.MSG_SYNTHESIZED, rsp["data"]), (0, 0, bytes(data)),
       f"{what}: (cc, IPMB_MSG_SYNTHESIZED, data)")


class Responder(threading.Thread):
    """Answers requests arriving at a satellite file, in a thread.

    `policy(req, n)` sees the n-th request (a dict with netfn, cmd, seq, data...) and returns
    None to ignore it, or (delay_s, body) to answer after delay_s with body (cc first). Requests
    and errors are recorded in `seen` and `errors`. Use as a context manager.
    """

    def __init__(self, inst, policy=echo):
        super().__init__(daemon=True)
        self.fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
        self.policy = policy
        self.seen = []
        self.errors = []
        self.sent = 0
        self._halt = threading.Event()
        self._pending = []

    events = select.POLLIN

    def next_request(self):
        """Returns the next request (a dict) or None."""
        try:
            buf = os.read(self.fd, 256)
        except BlockingIOError:
            return None
        return parse(buf)

    def send(self, req, body):
        os.write(self.fd, with_len(answer(req, body)))

    def run(self):
        p = select.poll()
        p.register(self.fd, self.events)
        while not self._halt.is_set():
            now = time.monotonic()
            wait = min([due for due, _, _ in self._pending], default=now + 0.02) - now
            try:
                if p.poll(max(0, min(wait, 0.02)) * 1000):
                    req = self.next_request()
                    if req is not None:
                        self.seen.append(req)
                        r = self.policy(req, len(self.seen) - 1)
                        if r is not None:
                            self._pending.append((time.monotonic() + r[0], req, r[1]))
                now = time.monotonic()
                due = sorted((x for x in self._pending if x[0] <= now), key=lambda x: x[0])
                self._pending = [x for x in self._pending if x[0] > now]
                for _, req, body in due:
                    self.send(req, body)
                    self.sent += 1
            except Exception as e:  # noqa: BLE001 - reported by __exit__
                self.errors.append(repr(e))
                time.sleep(0.01)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        if self.is_alive():
            self.join(5)
        closing(self.fd)
        if exc[0] is None:
            eq(self.errors, [], f"{type(self).__name__} errors")


class Legacy(Responder):
    """A responder with read() and write() of raw frames, as before the ABI v2 ioctls."""


class Registered(Responder):
    """A responder with IPMB_IOC_REGISTER, RECEIVE and RESPOND for `pairs` of (netFn, cmd)."""

    events = select.POLLPRI

    def __init__(self, inst, pairs, policy=echo):
        super().__init__(inst, policy)
        for netfn, cmd in pairs:
            abi.register(self.fd, netfn, cmd)

    def next_request(self):
        try:
            m = abi.receive(self.fd)
        except BlockingIOError:
            return None
        if m["kind"] != abi.KIND_REQUEST:
            self.errors.append(f"RECEIVE kind {m['kind']}: {m}")
            return None
        return m

    def send(self, req, body):
        abi.respond(self.fd, req, body[0], body[1:])


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
# Retries, timeouts and synthesized completion codes.

def test_retry_after_dropped_response():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        with Legacy(sat, lambda req, n: None if n == 0 else echo(req, n)) as r:
            rsp = abi.request(fb, SAT, APP, 0x01, b"\x11\x22", timeout_ms=200, retries=2)
            answered(rsp, b"\x11\x22", "answer to the resend")
            eq(len(r.seen), 2, "request frames the satellite saw")
            eq(r.seen[1]["raw"], r.seen[0]["raw"], "the resend is the same frame")
            eq(r.seen[0]["seq"], rsp["seq"], "seq of both frames and of the answer")
        c = bmc.counters()
        eq((c["req_sent"], c["req_retries"], c["req_timeouts"], c["rsp_matched"],
            c["tx_frames"]), (1, 1, 0, 1, 2),
           "req_sent, req_retries, req_timeouts, rsp_matched, tx_frames")
    finally:
        os.close(fb)


def test_timeout_after_all_tries():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        start = time.monotonic()
        rsp = abi.request(fb, SAT, APP, 0x01, b"\x05", timeout_ms=50, retries=1)
        elapsed = time.monotonic() - start
        synthesized(rsp, abi.CC_TIMEOUT, "no responder")
        true(0.09 <= elapsed < 3, f"two tries of 50 ms took {elapsed:.3f} s")
        eq(sat.counters()["rx_frames"], 2, "frames the satellite saw")
        a, b = parse(read_wait(fs)), parse(read_wait(fs))
        eq((a["raw"], a["seq"]), (b["raw"], rsp["seq"]), "both tries: same frame, same seq")
        c = bmc.counters()
        eq((c["req_sent"], c["req_retries"], c["req_timeouts"], c["tx_frames"]), (1, 1, 1, 2),
           "req_sent, req_retries, req_timeouts, tx_frames")
        # The default: req_retries (3) resends.
        rsp = abi.request(fb, SAT, APP, 0x02, b"", timeout_ms=20)
        synthesized(rsp, abi.CC_TIMEOUT, "default retries")
        eq(sat.counters()["rx_frames"], 2 + 4, "frames of a request with the default retries")
    finally:
        closing(fb, fs)


def test_bus_error_when_nobody_answers_the_address():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        start = time.monotonic()
        rsp = abi.request(fb, NOBODY, APP, 0x01, b"\x01", timeout_ms=5000, retries=0)
        synthesized(rsp, abi.CC_BUS_ERROR, "request to an empty address")
        true(time.monotonic() - start < 3, "a NAK does not wait for the response timeout")
        c = bmc.counters()
        eq((c["req_bus_errors"], c["req_timeouts"], c["tx_frames"]), (1, 0, 0),
           "req_bus_errors, req_timeouts, tx_frames")
        true(c["tx_errors"] >= 1, f"tx_errors counted ({c['tx_errors']})")
        # A satellite that NAKs every resend of the frame (1 + tx_retries tries).
        tries = 1 + abi.info(fb)["tx_retries"]
        lib.vbus_param("nak_next", tries)
        try:
            rsp = abi.request(fb, SAT, APP, 0x02, b"", timeout_ms=5000, retries=0)
        finally:
            lib.vbus_param("nak_next", 0)
        synthesized(rsp, abi.CC_BUS_ERROR, "request NAKed on every try")
        eq(sat.counters()["rx_frames"], 0, "frames the satellite saw")
        eq(bmc.counters()["req_bus_errors"], 2, "req_bus_errors")
    finally:
        os.close(fb)


def test_too_long_for_max_frame_len():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        max_len = abi.info(fb)["max_frame_len"]
        fit = max_len - 7  # rsSA netFn cs1 rqSA seq cmd ... cs2
        before = bmc.counters()
        rsp = abi.request(fb, SAT, APP, 0x01, bytes(fit + 1), timeout_ms=50, retries=0)
        synthesized(rsp, abi.CC_TOO_LONG, f"{fit + 1} bytes of data")
        rsp = abi.request(fb, SAT, APP, 0x01, bytes(abi.MAX_DATA), timeout_ms=50, retries=0)
        synthesized(rsp, abi.CC_TOO_LONG, f"{abi.MAX_DATA} bytes of data")
        eq(delta(bmc.counters(), before, "tx_frames")["tx_frames"], 0, "frames sent")
        eq(sat.counters()["rx_frames"], 0, "frames the satellite saw")
        # The longest frame that fits goes out.
        rsp = abi.request(fb, SAT, APP, 0x01, bytes(range(fit)), timeout_ms=50, retries=0)
        synthesized(rsp, abi.CC_TIMEOUT, f"{fit} bytes of data (fits, nobody answers)")
        got = read_wait(fs)
        eq((len(got) - 1, parse(got)["data"]), (max_len, bytes(range(fit))),
           "the longest frame on the wire")
    finally:
        closing(fb, fs)


def test_unsent_request_returns_a_response():
    """A REQUEST that ends unsent (too long: 0xC8) returns kind IPMB_KIND_RESPONSE and id 0,
    as a sent one does, whatever the caller put in those output-only fields (the guest ioctl
    fuzzer found them returned as given)."""
    bmc, _ = lib.two_nodes()
    fb = bmc.open()
    try:
        rsp = abi.request(fb, SAT, APP, 0x01, bytes(abi.MAX_DATA), timeout_ms=50, retries=0,
                          kind=0x55, id=0x1234)
        eq((rsp["kind"], rsp["id"]), (abi.KIND_RESPONSE, 0), "(kind, id) of an unsent REQUEST")
    finally:
        closing(fb)


def test_too_long_requests_not_counted_sent():
    """A request too long to send is counted in req_sent neither synchronously nor
    asynchronously: no counter takes its outcome (0xC8), and every request counted in
    req_sent ends in exactly one outcome counter (the soak's account)."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        before = bmc.counters()
        abi.request(fb, SAT, APP, 0x01, bytes(abi.MAX_DATA), timeout_ms=50, retries=0)
        rid, _ = abi.submit(fb, SAT, APP, 0x01, bytes(abi.MAX_DATA), timeout_ms=50, retries=0)
        m = abi.receive(fb)
        eq((m["id"], m["cc"]), (rid, abi.CC_TOO_LONG), "the SUBMIT's outcome")
        eq(delta(bmc.counters(), before, "req_sent")["req_sent"], 0, "req_sent")
    finally:
        closing(fb)


def test_late_response_not_matched_to_next_request():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        def policy(req, n):
            return (0.4, b"\x00late") if n == 0 else (0, b"\x00fresh")

        with Legacy(sat, policy) as r:
            first = abi.request(fb, SAT, APP, 0x01, b"1", timeout_ms=100, retries=0)
            synthesized(first, abi.CC_TIMEOUT, "first request (answered late)")
            second = abi.request(fb, SAT, APP, 0x01, b"2", timeout_ms=2000, retries=0)
            answered(second, b"fresh", "second request, same (responder, netFn, cmd)")
            true(second["seq"] != first["seq"],
                 f"the next request gets another seq ({first['seq']} then {second['seq']})")
            eq([q["seq"] for q in r.seen], [first["seq"], second["seq"]], "seqs on the wire")
            wait_for(lambda: r.sent == 2, "the late answer sent")
        wait_counter(bmc, "rsp_late", 1)
        c = bmc.counters()
        eq((c["rsp_matched"], c["req_timeouts"], c["rsp_duplicate"]), (1, 1, 0),
           "rsp_matched, req_timeouts, rsp_duplicate")
        lib.raises(errno.EAGAIN, os.read, rd, 256)  # the late frame is not in read()
    finally:
        closing(fb, rd)


def use_every_seq(fd, cmd):
    """Sends seq_count answered requests to (SAT, APP, cmd); returns when the first ended."""
    i = abi.info(fd)
    n, expiry = i["seq_count"], i["seq_expiry_ms"] / 1000
    seqs = []
    first_done = None
    for k in range(n):
        rsp = abi.request(fd, SAT, APP, cmd, bytes([k]), timeout_ms=2000, retries=0)
        answered(rsp, bytes([k]), f"request {k}")
        seqs.append(rsp["seq"])
        if first_done is None:
            first_done = time.monotonic()
        true(k == 0 or seqs[-1] != seqs[-2], f"consecutive seqs differ: {seqs[-2:]}")
    eq(sorted(seqs), list(range(n)), f"seqs of {n} requests to one key")
    true(time.monotonic() - first_done < expiry - 0.5, f"{n} requests took under 4.5 s")
    return first_done, expiry


def test_seq_quarantine():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    nb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        with Legacy(sat):
            first_done, expiry = use_every_seq(fb, 0x01)
            # Every seq is in quarantine for this key: O_NONBLOCK gives EAGAIN...
            lib.raises(errno.EAGAIN, abi.request, nb, SAT, APP, 0x01, b"x", 0, 0, 2000, 0)
            # ... and a blocking request waits until the first seq expires (interrupted if it
            # still waits 3 s after that).
            # (Its timeout bounds the wait for a seq too: 10 s is longer than the wait.)
            limit = expiry + 3 - (time.monotonic() - first_done)
            try:
                rsp = call_with_deadline(limit, abi.request, fb, SAT, APP, 0x01, b"z",
                                         timeout_ms=10000, retries=0)
            except Deadline:
                raise AssertionError(f"the blocking request was still waiting for a seq "
                                     f"{expiry + 3:.1f} s after the first request ended")
            waited = time.monotonic() - first_done
            answered(rsp, b"z", "request after the wait")
            true(expiry - 0.2 <= waited,
                 f"the blocking request (seq {rsp['seq']}) ended {waited:.2f} s after the "
                 f"first, before the expiry ({expiry} s)")
    finally:
        closing(fb, nb)


test_seq_quarantine.timeout = 60


def test_seq_quarantine_survives_other_keys():
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    nb = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        with Legacy(sat):
            use_every_seq(fb, 0x01)
            lib.raises(errno.EAGAIN, abi.request, nb, SAT, APP, 0x01, b"x", 0, 0, 2000, 0)
            # Another key may use a seq at once...
            other = abi.request(nb, SAT, APP, 0x02, b"y", timeout_ms=2000, retries=0)
            answered(other, b"y", "another cmd while 0x01 has no seq")
            # ... which does not end that seq's quarantine for the first key.
            try:
                again = abi.request(nb, SAT, APP, 0x01, b"w", timeout_ms=2000, retries=0)
                raise AssertionError(
                    f"O_NONBLOCK request to cmd 0x01 succeeded with seq {again['seq']}, used "
                    f"for cmd 0x01 under 5 s before (cmd 0x02 used seq {other['seq']} since)")
            except BlockingIOError:
                pass
    finally:
        closing(fb, nb)


test_seq_quarantine.timeout = 60


def test_seq_wait_ends_at_the_timeout():
    """A request that finds no usable seq waits at most its timeout_ms, then ends like any
    request without a response: synthesized IPMB_CC_TIMEOUT (REQUEST returns it, SUBMIT
    delivers it to the inbox), counted in req_timeouts, nothing sent."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    fa = bmc.open()
    try:
        with Legacy(sat):
            use_every_seq(fb, 0x01)
            before = bmc.counters()
            start = time.monotonic()
            rsp = abi.request(fb, SAT, APP, 0x01, b"t", timeout_ms=300, retries=0)
            took = time.monotonic() - start
            synthesized(rsp, abi.CC_TIMEOUT, "REQUEST with no usable seq")
            true(0.29 <= took < 2, f"REQUEST gave up after its 300 ms timeout ({took:.2f} s)")
            start = time.monotonic()
            id_, _ = abi.submit(fa, SAT, APP, 0x01, b"u", timeout_ms=300, retries=0)
            took = time.monotonic() - start
            true(0.29 <= took < 2, f"SUBMIT gave up after its 300 ms timeout ({took:.2f} s)")
            m = receive_wait(fa)
            eq(m["id"], id_, "id of the SUBMIT's outcome")
            synthesized(m, abi.CC_TIMEOUT, "SUBMIT with no usable seq")
            eq(delta(bmc.counters(), before, "req_sent", "req_timeouts", "tx_frames"),
               dict(req_sent=2, req_timeouts=2, tx_frames=0), "counters of the two requests")
    finally:
        closing(fb, fa)


test_seq_wait_ends_at_the_timeout.timeout = 60


def test_timeout_runs_from_when_the_frame_is_on_the_wire():
    """A frame that waits for the bus longer than the request's timeout is not timed out (nor
    resent) before it was sent: the timeout runs from when the try is on the wire."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        def policy(req, n):
            lib.vbus_param("delay_us", 0)  # the answer goes out at once
            return echo(req, n)

        with Legacy(sat, policy) as r:
            lib.vbus_param("delay_us", 1000000)
            try:
                rsp = abi.request(fb, SAT, APP, 0x01, b"w", timeout_ms=300, retries=1)
            finally:
                lib.vbus_param("delay_us", 0)
            answered(rsp, b"w", "request whose frame took 1 s to reach the wire")
            eq(len(r.seen), 1, "tries the satellite saw")
        c = bmc.counters()
        eq((c["req_retries"], c["req_timeouts"], c["rsp_matched"]), (0, 0, 1),
           "req_retries, req_timeouts, rsp_matched")
    finally:
        os.close(fb)


def test_short_timeout_on_time_beside_long_ones():
    """A request's timeout fires when it is due, not on a coarse tick: here 1 ms timeouts
    while a 60 s request is in flight (the old 20 ms timeout work was up to 20 ms late)."""
    bmc, sat = lib.two_nodes()
    fa = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fb = bmc.open()
    # Timers and the clock are only as fine as the guest's clock source: in the TCG guest,
    # jiffies (4 ms), so "on time" is within two of its ticks plus some overhead.
    allowed = 2 * time.clock_getres(time.CLOCK_MONOTONIC) + 0.004
    try:
        abi.submit(fa, SAT, APP, 0x30, b"", timeout_ms=60000, retries=0)
        late = []
        for i in range(15):
            start = time.monotonic()
            rsp = abi.request(fb, SAT, APP, 0x31, bytes([i]), timeout_ms=1, retries=0)
            late.append(time.monotonic() - start - 0.001)
            synthesized(rsp, abi.CC_TIMEOUT, f"request {i}")
        late.sort()
        true(late[len(late) // 2] < allowed,
             f"median lateness of 1 ms timeouts {late[len(late) // 2] * 1000:.1f} ms, "
             f"allowed {allowed * 1000:.1f} ms (all: {[round(x * 1000, 1) for x in late]})")
    finally:
        closing(fa, fb)


def kernel_log():
    """The kernel log records as text (from /dev/kmsg, without consuming them)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    lines = []
    try:
        while True:
            try:
                lines.append(os.read(fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                return lines
            except BrokenPipeError:  # overwritten while reading: go on with the next
                continue
    finally:
        os.close(fd)


def test_timeouts_and_resends_not_on_system_wq():
    """Timeouts and resends run on the instance's own workqueue: the kernel's warning about
    work queued on the deprecated system_wq never names the module."""
    bmc, sat = lib.two_nodes()
    fb = bmc.open()
    try:
        synthesized(abi.request(fb, SAT, APP, 0x01, b"", timeout_ms=5, retries=2),
                    abi.CC_TIMEOUT, "request resent and timed out")
        eq(bmc.counters()["req_retries"], 2, "req_retries")
        eq([ln for ln in kernel_log() if "deprecated workqueue" in ln], [],
           "kernel log lines about the deprecated workqueue")
    finally:
        os.close(fb)


def test_nonblocking_submit_does_not_wait_for_the_transfer():
    """SUBMIT with O_NONBLOCK returns before the frame is on the wire (the transmit work
    sends it); the outcome arrives in the inbox as usual."""
    bmc, sat = lib.two_nodes()
    fa = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        def policy(req, n):
            lib.vbus_param("delay_us", 0)
            return echo(req, n)

        with Legacy(sat, policy):
            lib.vbus_param("delay_us", 1000000)
            try:
                start = time.monotonic()
                id_, seq = abi.submit(fa, SAT, APP, 0x01, b"nb", timeout_ms=3000, retries=0)
                took = time.monotonic() - start
                m = receive_wait(fa, 5000)
            finally:
                lib.vbus_param("delay_us", 0)
        true(took < 0.5, f"SUBMIT returned after {took:.3f} s with a transfer taking 1 s")
        eq((m["id"], m["seq"]), (id_, seq), "id and seq of the outcome")
        answered(m, b"nb", "the queued request")
    finally:
        os.close(fa)


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
