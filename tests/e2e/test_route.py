# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of routing: responses to write() requests and the default route.

Several processes share one /dev/ipmb-N and send requests with plain write(); each must read()
the responses to its own requests. The satellite (0x72) answers from a thread of the test
process by echoing the request data (reqlib.Legacy), so every writer can tell its own
responses from others'.
A responder that holds the default route (samples/ipmb-responder) answers every request.
"""

import errno
import os
import select
import subprocess
import time

import ipmbabi as abi
import lib
from reqlib import Legacy
from lib import answer, closing, eq, frame, parse, poll_for, true, with_len

BMC, SAT = lib.BMC, lib.SAT
APP = 0x06


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
                if (r["src"], r["netfn"], r["cmd"], r["seq"], r["data"]) == \
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

    def child(p, wfd, go):
        # Two processes per cmd: those pairs send the very same exchange and seqs.
        _writer(bmc.dev, p, count, 0x30 + p % 2, wait_s, wfd, go)

    with lib.Workers(procs, child) as workers, Legacy(sat):
        start = time.monotonic()
        workers.start()
        answered = foreign = 0
        errors = []
        for pid, r in workers.children:
            _, status = os.waitpid(pid, 0)
            out = os.read(r, 4096).decode(errors="replace")
            if status != 0 or not out or out.startswith("error"):
                errors.append(out or f"pid {pid} status {status:#x}")
                continue
            a, f = out.split()
            answered, foreign = answered + int(a), foreign + int(f)
        elapsed = time.monotonic() - start
    eq(errors, [], "writer processes")
    print(f"# shared device: {answered} of {procs * count} responses reached their "
          f"writers, {foreign} foreign frames read, {elapsed:.1f} s", flush=True)
    return answered, foreign, elapsed, bmc


def test_shared_device_each_writer_reads_its_responses():
    answered, foreign, elapsed, bmc = shared_device_run()
    eq((answered, foreign), (200, 0), "responses that reached their writers, foreign frames")
    c = bmc.counters()
    eq((c["rsp_to_writer"], c["rx_overflow"]), (200, 0), "rsp_to_writer, rx_overflow")


test_shared_device_each_writer_reads_its_responses.timeout = 150


def exchange(fw, fs, seq, cmd, before_answer=None):
    """`fw` writes a request (App `cmd`, `seq`) to the satellite, which reads it on `fs`; then
    `before_answer()` runs, and the satellite answers with cc 0. Returns the answer."""
    os.write(fw, with_len(frame(SAT, APP, BMC, seq, cmd)))
    req = parse(lib.read_wait(fs))
    if before_answer:
        before_answer()
    reply = answer(req, b"\x00")
    os.write(fs, with_len(reply))
    return with_len(reply)


def three_files():
    """The two nodes, two BMC files and a satellite file, all non-blocking."""
    bmc, sat = lib.two_nodes()
    flags = os.O_RDWR | os.O_NONBLOCK
    return bmc, sat, [bmc.open(flags), bmc.open(flags), sat.open(flags)]


def test_single_file_reads_every_frame_in_arrival_order():
    # A file that is the only reader sees what it saw before: responses to its requests and
    # everything else in one stream, in the order they arrived.
    bmc, sat = lib.two_nodes()
    fd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    fs = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, with_len(frame(SAT, APP, BMC, 1, 0x10, b"a")))
        req = parse(lib.read_wait(fs))
        first = frame(BMC, APP, SAT, 3, 0x09)                # a request from the satellite
        reply = answer(req, b"\x00a")                          # the answer to the write()
        stray = frame(BMC, APP | 1, SAT, 40, 0x09, b"\x00")   # a response nobody asked for
        for f in (first, reply, stray):
            os.write(fs, with_len(f))
        got = [lib.read_wait(fd) for _ in range(3)]
        eq(got, [with_len(first), with_len(reply), with_len(stray)], "frames read, in order")
        eq(lib.queued_frames(fd), [], "nothing more")
        c = bmc.counters()
        eq((c["rsp_to_writer"], c["rx_frames"], c["tx_unnoted"]), (1, 3, 0),
           "rsp_to_writer, rx_frames, tx_unnoted")
    finally:
        closing(fd, fs)


def test_response_goes_to_its_writer_and_poll_shows_it():
    bmc, sat, (f1, f2, fs) = three_files()
    try:
        reply = exchange(f1, fs, 7, 0x11)
        true(poll_for(f1, select.POLLIN, 3000) & select.POLLIN, "EPOLLIN on the writer")
        eq(poll_for(f2, select.POLLIN, 100), 0, "poll() of the other file")
        lib.raises(errno.EAGAIN, os.read, f2, 256)
        eq(os.read(f1, 256), reply, "the writer's read()")
        eq(poll_for(f1, select.POLLIN, 0), 0, "poll() of the writer once read")
    finally:
        closing(f1, f2, fs)


def test_response_after_close_goes_to_every_reader():
    bmc, sat, (f1, rd, fs) = three_files()
    files = [f1]

    def reopen():
        # The place is taken again: the new file must not get the closed one's response.
        os.close(files.pop())
        files.append(bmc.open(os.O_RDWR | os.O_NONBLOCK))

    try:
        reply = exchange(f1, fs, 8, 0x12, reopen)
        eq(lib.read_wait(rd), reply, "the shared queue has it")
        eq(lib.queued_frames(files[0]), [], "the file in the closed one's place")
        c = bmc.counters()
        eq((c["rsp_writer_gone"], c["rsp_to_writer"]), (1, 0), "rsp_writer_gone, rsp_to_writer")
    finally:
        closing(*files, rd, fs)


def test_unsent_request_leaves_no_note():
    # A write() that fails takes its note back: a frame that looks like its answer is
    # anybody's, as before.
    nobody = 0x40
    bmc, sat = lib.two_nodes()
    f1 = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    rd = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        try:
            os.write(f1, with_len(frame(nobody, APP, BMC, 9, 0x13)))
            raise AssertionError("write() to an address nobody has succeeded")
        except OSError as e:
            true(e.errno in (errno.ENXIO, errno.EIO), f"write() errno {e.errno}")
        fake = frame(BMC, APP | 1, nobody, 9, 0x13, b"\x00")
        lib.send_raw(sat.nr, fake)
        got = {}
        for name, fd in (("writer", f1), ("other", rd)):
            got[name] = lib.queued_frames(fd) if poll_for(fd, select.POLLIN, 1000) else []
        eq(sorted(len(v) for v in got.values()), [0, 1], "one file read the frame")
        eq(bmc.counters()["rsp_to_writer"], 0, "rsp_to_writer")
    finally:
        closing(f1, rd)


def test_faulting_read_puts_the_response_back_in_order():
    # A read() whose copy faults (EFAULT) leaves the frame at the head of where it came from:
    # the writer's response still comes before a frame that arrived after it.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    bmc, sat, (f1, f2, fs) = three_files()
    try:
        reply = exchange(f1, fs, 6, 0x14)
        true(poll_for(f1, select.POLLIN, 3000) & select.POLLIN, "EPOLLIN on the writer")
        later = frame(BMC, APP, SAT, 2, 0x09)
        os.write(fs, with_len(later))
        eq(poll_for(f2, select.POLLIN, 3000) & select.POLLIN, select.POLLIN, "the shared frame")
        ret = libc.read(f1, ctypes.c_void_p(8), 256)
        eq((ret, ctypes.get_errno()), (-1, errno.EFAULT), "read() into a bad pointer")
        eq([os.read(f1, 256), os.read(f1, 256)], [reply, with_len(later)],
           "the response still first, then the later frame")
    finally:
        closing(f1, f2, fs)


# ---------------------------------------------------------------------------------------------
# The default route (item 2).

STORAGE = 0x0A


def receive_wait(fd, timeout_ms=3000):
    true(poll_for(fd, select.POLLPRI, timeout_ms) & select.POLLPRI,
         f"EPOLLPRI within {timeout_ms} ms")
    return abi.receive(fd)


def test_default_route_rules():
    bmc, sat = lib.two_nodes()
    f1 = sat.open(os.O_RDWR | os.O_NONBLOCK)
    f2 = sat.open(os.O_RDWR | os.O_NONBLOCK)
    rd = sat.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        abi.register_default(f1)
        abi.register_default(f1)  # again from the same file: fine
        lib.raises(errno.EBUSY, abi.register_default, f2)
        lib.raises(errno.ENOENT, abi.unregister_default, f2)
        # (netfn, cmd, reserved, flags): the default route names no pair; unknown flags and
        # a reserved byte are refused.
        for bad in ((APP, 0, 0, abi.CMD_DEFAULT), (0, 1, 0, abi.CMD_DEFAULT), (APP, 1, 0, 0x02),
                    (0, 0, 1, abi.CMD_DEFAULT)):
            lib.raises(errno.EINVAL, abi.register, f2, *bad)
        abi.register(f2, APP, 0x05)  # an exact pair beats the default route
        for seq, (netfn, cmd) in enumerate(((APP, 0x05), (APP, 0x06), (STORAGE, 0x10))):
            lib.send_raw(bmc.nr, frame(SAT, netfn, BMC, seq, cmd))
        m2 = receive_wait(f2)
        m1 = [receive_wait(f1), receive_wait(f1)]
        eq((m2["netfn"], m2["cmd"]), (APP, 0x05), "f2: its pair")
        eq([(m["netfn"], m["cmd"]) for m in m1], [(APP, 0x06), (STORAGE, 0x10)],
           "f1: the rest, any netFn")
        lib.raises(errno.EAGAIN, os.read, rd, 256)  # nothing for read()
        abi.respond(f1, m1[0], 0xC1)  # a request the default route gave may be answered
        os.close(f1)
        f1 = -1
        abi.register_default(f2)  # released by the close
        abi.unregister_default(f2)
        lib.send_raw(bmc.nr, frame(SAT, APP, BMC, 9, 0x07))
        true(len(lib.read_wait(rd)) > 0, "without a default route read() gets the request")
    finally:
        closing(*(f for f in (f1, f2, rd) if f >= 0))


def test_sample_responder_answers_unimplemented_commands_with_c1():
    bmc, sat = lib.two_nodes()
    resp = subprocess.Popen([os.path.join(lib.REPO, "samples", "ipmb-responder"), sat.dev],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fb = bmc.open(os.O_RDWR)
    fw = bmc.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        eq(resp.stdout.readline().strip(), "ready", "ipmb-responder started")
        rsp = abi.request(fb, SAT, APP, 0x01, timeout_ms=2000, retries=0)
        eq((rsp["cc"], rsp["flags"], rsp["data_len"]), (0, 0, 11), "Get Device ID")
        # Commands it does not implement, of its netFn and others: 0xC1 at once, not 0xC3
        # after the timeout (250 ms per try by default).
        for netfn, cmd in ((APP, 0x09), (APP, 0x42), (STORAGE, 0x10), (0x2C, 0x00)):
            start = time.monotonic()
            rsp = abi.request(fb, SAT, netfn, cmd)
            took = time.monotonic() - start
            eq((rsp["cc"], rsp["flags"] & abi.MSG_SYNTHESIZED), (0xC1, 0),
               f"netFn {netfn:#x} cmd {cmd:#x}: (cc, synthesized)")
            true(took < 0.25, f"netFn {netfn:#x} cmd {cmd:#x} answered in {took:.3f} s")
        # And through write()/read().
        os.write(fw, with_len(frame(SAT, APP, BMC, 5, 0x08 + 0x30)))
        got = parse(lib.read_wait(fw, 250))
        eq((got["netfn"], got["cmd"], got["seq"], got["data"]), (APP | 1, 0x38, 5, b"\xc1"),
           "write()/read(): netFn, cmd, seq, cc")
        eq(bmc.counters()["req_timeouts"], 0, "req_timeouts")
    finally:
        closing(fb, fw)
        resp.terminate()
        out, err = resp.communicate(timeout=10)
        eq((resp.returncode, err), (0, ""), "ipmb-responder exit status, stderr")
