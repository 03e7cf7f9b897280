# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of response routing for read()/write() users (issue 10, item 1).

Several processes share one /dev/ipmb-N and send requests with plain write(); each must read()
the responses to its own requests. The satellite (0x72) answers from a thread of the test
process by echoing the request data, so every writer can tell its own responses from others'.
"""

import os
import select
import signal
import threading
import time

import lib
from lib import closing, eq, frame, poll_for, true, with_len

BMC, SAT = lib.BMC, lib.SAT
APP = 0x06


def parse(buf):
    """A read() buffer ([len][frame]) as a dict; `body` is what follows cmd, without cs2."""
    f = bytes(buf[1:])
    true(len(f) >= 7 and buf[0] == len(f), f"read() buffer {bytes(buf).hex()}")
    return dict(dest=f[0], netfn=f[1] >> 2, dest_lun=f[1] & 3, src=f[3], seq=f[4] >> 2,
                src_lun=f[4] & 3, cmd=f[5], body=f[6:-1], raw=bytes(buf))


def answer(req, body):
    """The response frame to a parsed request, with `body` (cc first) after cmd."""
    return frame(req["src"], req["netfn"] | 1, req["dest"], req["seq"], req["cmd"], body,
                 dest_lun=req["src_lun"], src_lun=req["dest_lun"])


class Echo(threading.Thread):
    """A read()/write() responder on `inst`: answers each request with cc 0 and its data."""

    def __init__(self, inst):
        super().__init__(daemon=True)
        self.fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
        self.seen, self.errors = 0, []
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                if not poll_for(self.fd, select.POLLIN, 20):
                    continue
                req = parse(os.read(self.fd, 256))
                if req["netfn"] & 1:
                    continue
                self.seen += 1
                os.write(self.fd, with_len(answer(req, b"\x00" + req["body"])))
            except BlockingIOError:
                pass
            except Exception as e:  # noqa: BLE001 - reported by __exit__
                self.errors.append(repr(e))
                time.sleep(0.01)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._halt.set()
        self.join(5)
        closing(self.fd)
        if exc[0] is None:
            eq(self.errors, [], "responder errors")


def _writer(dev, p, count, cmd, wait_s, wfd, go):
    """A process that writes `count` requests and reads until each one's own response.

    Request i has seq i % 64 (as python-ipmi numbers them: every process starts at 0, so the
    processes with the same cmd send the same (rsSA, netFn, cmd, seq) at about the same time)
    and data (p, i). A frame that is not the echo of the request just written is counted as
    foreign and skipped; a request whose response did not come within `wait_s` is missed.
    Reports "answered foreign" on `wfd`.
    """
    answered = foreign = 0
    try:
        os.read(go, 1)
        fd = os.open(dev, os.O_RDWR | os.O_NONBLOCK)
        for i in range(count):
            seq, data = i % 64, bytes([p, i])
            os.write(fd, with_len(frame(SAT, APP, BMC, seq, cmd, data)))
            deadline = time.monotonic() + wait_s
            while (left := deadline - time.monotonic()) > 0:
                if not poll_for(fd, select.POLLIN, max(1, int(left * 1000))):
                    continue
                try:
                    r = parse(os.read(fd, 256))
                except BlockingIOError:
                    continue
                if (r["src"], r["netfn"], r["cmd"], r["seq"], r["body"]) == \
                        (SAT, APP | 1, cmd, seq, b"\x00" + data):
                    answered += 1
                    break
                foreign += 1
        os.close(fd)
        os.write(wfd, f"{answered} {foreign}".encode())
        os._exit(0)
    except BaseException as e:  # noqa: B036 - a child reports every failure and exits
        try:
            os.write(wfd, f"error {p}: {e!r}".encode()[:4000])
        finally:
            os._exit(1)


def shared_device_run(procs=4, count=50, wait_s=1.0):
    """`procs` writer processes on the BMC's device; returns (answered, foreign, seconds)."""
    bmc, sat = lib.two_nodes()
    go_r, go_w = os.pipe()
    children = []
    try:
        for p in range(procs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                # Two processes per cmd: those pairs send the very same exchange and seqs.
                _writer(bmc.dev, p, count, 0x30 + p % 2, wait_s, w, go_r)
            os.close(w)
            children.append((pid, r))
        with Echo(sat):
            start = time.monotonic()
            os.write(go_w, b"x" * procs)
            answered = foreign = 0
            errors = []
            for pid, r in children:
                _, status = os.waitpid(pid, 0)
                out = os.read(r, 4096).decode(errors="replace")
                if status != 0 or not out or out.startswith("error"):
                    errors.append(out or f"pid {pid} status {status:#x}")
                    continue
                a, f = out.split()
                answered, foreign = answered + int(a), foreign + int(f)
            elapsed = time.monotonic() - start
            children = []
        eq(errors, [], "writer processes")
        print(f"# shared device: {answered} of {procs * count} responses reached their "
              f"writers, {foreign} foreign frames read, {elapsed:.1f} s", flush=True)
        return answered, foreign, elapsed, bmc
    finally:
        for pid, r in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
            closing(r)
        closing(go_r, go_w)


def test_shared_device_each_writer_reads_its_responses():
    answered, foreign, elapsed, bmc = shared_device_run()
    eq((answered, foreign), (200, 0), "responses that reached their writers, foreign frames")
    c = bmc.counters()
    eq((c["rsp_to_writer"], c["rx_overflow"]), (200, 0), "rsp_to_writer, rx_overflow")


test_shared_device_each_writer_reads_its_responses.timeout = 150
