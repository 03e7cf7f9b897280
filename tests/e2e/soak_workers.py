# SPDX-License-Identifier: GPL-2.0
"""The soak's workers (tests/e2e/soak.py): forked processes that make traffic on one node
each, and count what they did per instance (one bind of a node), reported to the main
process through a pipe."""

import errno
import json
import mmap
import os
import random
import select
import struct
import time
import traceback

import ipmbabi as abi
import lib

NODES = (0x20, 0x72, 0x40)
OEM = 0x30            # netFn of the answered and stalled commands
ANSWERED = range(0x10, 0x18)
STALLED = 0x21        # registered by every node's responder on a file it never reads
WRITE_CMD = 0x40      # write() traffic: nobody registers it, it goes to read()
ABSENT = 0x50         # no node: NAK
QUEUE_LEN = 16
MAX_FRAME = 32
PARAMS = (f"queue_len={QUEUE_LEN}", f"max_frame_len={MAX_FRAME}", "req_timeout_ms=100",
          "req_retries=1", "tx_retries=3")
FAULT_PERMILLE = 30
# Pause of the traffic loops in seconds: the guest has two CPUs for 17 processes and the
# cycles.
PACE = 0.01
WORKER_NICE = 10

# Drop counters: a received frame that went nowhere is counted in exactly one of them.
DROPS = ("rx_short", "rx_too_long", "rx_bad_cs1", "rx_bad_cs2", "rx_bad_addr", "rx_overflow",
         "rx_route_overflow", "rsp_late", "rsp_duplicate")
# What a send may give besides success: the peer NAKed or is gone, the bus failed.
SEND_ERRORS = (errno.ENXIO, errno.EIO, errno.EAGAIN, errno.ETIMEDOUT)
SYSCALLS = {"x86_64": (0, 16), "armv7l": (3, 54)}  # read, ioctl


class Shared:
    """State the main process shares with the forked workers: an anonymous shared mapping
    (the generation of each node, the stop flag, the adapter numbers) and one pipe the workers
    write their reports to, one line each (atomic: shorter than PIPE_BUF)."""

    def __init__(self):
        self.mem = mmap.mmap(-1, 4096)
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        self.buf = b""

    def _get(self, slot):
        return struct.unpack_from("<i", self.mem, 4 * slot)[0]

    def _set(self, slot, v):
        struct.pack_into("<i", self.mem, 4 * slot, v)

    def gen(self, i):
        return self._get(i)

    def bump_gen(self, i):
        self._set(i, self._get(i) + 1)

    def adapter(self, i):
        return self._get(16 + i)

    def set_adapter(self, i, nr):
        self._set(16 + i, nr)

    def stopping(self):
        return self._get(31) != 0

    def stop(self):
        self._set(31, 1)

    def report(self, *item):
        os.write(self.wfd, (json.dumps(item) + "\n").encode())

    def reports(self):
        """The reports written since the last call."""
        while True:
            try:
                chunk = os.read(self.rfd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [json.loads(line) for line in lines if line]


def fork(target, *args):
    """Runs target(*args) in a child process; returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            # Behind the main process, whose unbinds, binds and reloads are the cycles: the
            # workers' traffic must not slow them down (the CPUs are most of the time busy).
            os.nice(WORKER_NICE)
            target(*args)
        except BaseException:  # noqa: B036 - any failure of a worker fails the soak
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


def open_node(sh, i, flags=os.O_RDWR):
    """Opens node i's device; returns (fd, generation) or None once stopping.

    The generation is read before and after the open: the main process bumps it before each
    bind, so two equal readings name the instance the file belongs to."""
    path = f"/dev/ipmb-{sh.adapter(i)}"
    while not sh.stopping():
        g1 = sh.gen(i)
        try:
            fd = os.open(path, flags)
        except OSError:
            # Not too often: 17 processes retrying would slow the reload they wait for.
            time.sleep(0.2)
            continue
        if sh.gen(i) == g1:
            return fd, g1
        os.close(fd)
    return None


class Worker:
    """A process's files and counts on one node, reported per instance."""

    def __init__(self, sh, name, i):
        self.sh, self.name, self.i = sh, name, i
        self.fd = self.gen = None
        self.counts = {}

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def report(self):
        if self.gen is not None:
            self.sh.report(self.name, self.i, self.gen, self.counts)
        self.counts = {}
        if self.fd is not None:
            lib.closing(self.fd)
        self.fd = self.gen = None

    def attach(self, flags=os.O_RDWR):
        """Opens the node's current instance; False once stopping."""
        got = open_node(self.sh, self.i, flags)
        if got is None:
            return False
        self.fd, self.gen = got
        return True

    def run(self, step, flags=os.O_RDWR, setup=None):
        """Calls step() until stopping; ENODEV (the instance died) reports and reattaches."""
        random.seed(os.getpid())
        while not self.sh.stopping():
            if self.fd is None:
                if not self.attach(flags):
                    break
                try:
                    if setup:
                        setup()
                except OSError as e:
                    if e.errno != errno.ENODEV:
                        raise
                    self.report()
                    continue
            try:
                step()
            except OSError as e:
                if e.errno in SEND_ERRORS:
                    # A transmission that failed (the peer unbound, a NAK...): counted.
                    self.count(f"err_{errno.errorcode[e.errno]}")
                    continue
                if e.errno != errno.ENODEV:
                    raise
                self.report()
        self.report()


def msg_cc(m):
    if m["flags"] & abi.MSG_SYNTHESIZED:
        return f"cc_{m['cc']:02x}"
    return "answered"


def reader(sh, i, slow):
    w = Worker(sh, "reader", i)

    def step():
        os.read(w.fd, 256)
        w.count("reads")
        if slow:
            time.sleep(0.05)
    w.run(step)


def responder(sh, i):
    w = Worker(sh, "responder", i)
    stalled = []

    def setup():
        for c in ANSWERED:
            abi.register(w.fd, OEM, c)
        try:
            fd = os.open(f"/dev/ipmb-{sh.adapter(i)}", os.O_RDWR)
        except FileNotFoundError:
            # Unbound since the first file was opened: as if that file had got ENODEV.
            raise OSError(errno.ENODEV, "unbound") from None
        stalled[:] = [fd]
        abi.register(fd, OEM, STALLED)

    def step():
        m = abi.receive(w.fd)
        w.count("received")
        abi.respond(w.fd, m, 0, bytes([m["cmd"]]) * random.randint(0, 8))
        w.count("responded")

    orig_report = w.report

    def report():
        lib.closing(*stalled)
        stalled.clear()
        orig_report()
    w.report = report
    w.run(step, setup=setup)


def request_args(i):
    """A random request from node i: (addr, cmd, data, flags, expected outcome kind)."""
    peers = [a for j, a in enumerate(NODES) if j != i]
    r = random.random()
    if r < 0.6:
        return random.choice(peers), random.choice(ANSWERED), b"\x01" * random.randint(0, 10), 0
    if r < 0.7:
        return random.choice(peers), STALLED, b"", 0
    if r < 0.8:
        return ABSENT, ANSWERED[0], b"", 0
    if r < 0.9:
        return random.choice(peers), ANSWERED[1], bytes(MAX_FRAME), 0
    return random.choice(peers), ANSWERED[2], b"", abi.MSG_BROADCAST


def sync_requester(sh, i):
    w = Worker(sh, "sync", i)

    def step():
        addr, cmd, data, flags = request_args(i)
        w.count("submitted")
        m = abi.request(w.fd, addr, OEM, cmd, data, timeout_ms=100, retries=0, flags=flags)
        w.count(msg_cc(m))
        time.sleep(PACE)
    w.run(step)


def async_requester(sh, i):
    w = Worker(sh, "async", i)
    ids = set()

    def step():
        for _ in range(random.randint(1, 12)):
            addr, cmd, data, flags = request_args(i)
            try:
                rid, _ = abi.submit(w.fd, addr, OEM, cmd, data, timeout_ms=100, retries=1,
                                    flags=flags)
            except BlockingIOError:
                w.count("eagain")
                break
            ids.add(rid)
            w.count("submitted")
        deadline = time.monotonic() + 0.5
        while ids and time.monotonic() < deadline:
            ev = lib.poll_for(w.fd, select.POLLPRI, 100)
            if ev & (select.POLLHUP | select.POLLERR):
                abi.receive(w.fd)       # ENODEV
            if not ev & select.POLLPRI:
                continue
            try:
                m = abi.receive(w.fd)
            except BlockingIOError:
                continue
            if m["id"] not in ids:
                w.count("unknown_id")
            ids.discard(m["id"])
            w.count(msg_cc(m))
        time.sleep(PACE)

    orig_report = w.report

    def report():
        w.count("unfinished", len(ids))
        ids.clear()
        orig_report()
    w.report = report
    w.run(step, flags=os.O_RDWR | os.O_NONBLOCK)


def blocker(sh, i):
    """A REQUEST that waits 60 s on a responder that never answers: blocked at unbind."""
    w = Worker(sh, "blocker", i)
    peer = NODES[(i + 1) % len(NODES)]

    def step():
        w.count("submitted")
        m = abi.request(w.fd, peer, OEM, STALLED, timeout_ms=60000, retries=0)
        w.count(msg_cc(m))
    w.run(step)


def writer(sh, i):
    """write() traffic from node i: single frames, and bursts of 40 into the 16-frame read()
    queues (the slow reader's fills up) or into the 32-message inbox of a responder that
    never reads it."""
    w = Worker(sh, "writer", i)
    me = NODES[i]
    seq = [0]

    def step():
        peer = random.choice([a for a in NODES if a != me])
        r = random.random()
        n, cmd = (40, WRITE_CMD) if r < 0.1 else (40, STALLED) if r < 0.15 else (1, WRITE_CMD)
        for _ in range(n):
            seq[0] = (seq[0] + 1) % 64
            f = lib.frame(peer, OEM, me, seq[0], cmd, b"\x55" * random.randint(0, 20))
            try:
                os.write(w.fd, lib.with_len(f))
                w.count("written")
            except OSError as e:
                if e.errno == errno.ENODEV:
                    raise
                w.count(f"write_{errno.errorcode.get(e.errno, e.errno)}")
        time.sleep(5 * PACE)
    w.run(step)


def injector(sh):
    """Raw frames from the adapter without an instance: good ones and every kind of bad one."""
    random.seed(os.getpid())
    nr = sh.adapter(len(NODES))
    while not sh.stopping():
        dest = random.choice(NODES)
        good = lib.frame(dest, OEM, 0x10, random.randint(0, 63), WRITE_CMD, b"\x11" * 3)
        kind = random.randint(0, 6)
        f = {0: good,
             1: good[:4],                                     # short
             2: good[:2] + bytes([good[2] ^ 1]) + good[3:],   # cs1
             3: good[:-1] + bytes([good[-1] ^ 1]),            # cs2
             4: lib.frame(dest, OEM, 0x11, 1, WRITE_CMD),     # odd requester address
             5: lib.frame(dest, OEM, 0x10, 1, WRITE_CMD, bytes(MAX_FRAME)),  # too long
             6: lib.frame(ABSENT, OEM, 0x10, 1, WRITE_CMD)}[kind]
        try:
            lib.send_raw(nr, f)
        except OSError:
            pass
        time.sleep(2 * PACE)
