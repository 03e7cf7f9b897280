# SPDX-License-Identifier: GPL-2.0
"""Helpers of the request/response tests (test_req*.py): responders, waits and checks.

The BMC (0x20) sends requests with IPMB_IOC_REQUEST/SUBMIT; the satellite (0x72) answers,
either as a legacy responder (read()/write() of raw frames, Legacy) or as a registered one
(IPMB_IOC_REGISTER/RECEIVE/RESPOND, Registered). Responders run in threads of the test
process.
"""

import os
import select
import signal
import threading
import time

import ipmbabi as abi
import lib
from lib import answer, closing, eq, parse, poll_for, true, wait_for, with_len

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
