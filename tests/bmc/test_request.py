# SPDX-License-Identifier: GPL-2.0
"""Requests to the QEMU IPMB peer with IPMB_IOC_REQUEST and samples/ipmb-raw.

Every request goes out through the i2c-aspeed controller in master mode; the peer masters the
bus to answer, and the response comes in through the controller's target interrupt into our
driver, which matches it to the request.
"""

import os
import signal
import struct
import subprocess
import time

import ipmbabi as abi
import lib
import peer
from lib import eq, true
from peer import APP, ECHO, GET_DEVICE_ID, OEM


def with_file(fn, *params):
    inst = peer.setup(*params)
    fd = inst.open()
    try:
        return fn(inst, fd)
    finally:
        os.close(fd)


@lib.machines("ast2600-evb", "bletchley-bmc")
def test_get_device_id():
    def run(inst, fd):
        rsp = peer.request(fd, APP, GET_DEVICE_ID)
        peer.answered(rsp, peer.CC_OK, peer.DEVICE_ID, "Get Device ID")
        eq((rsp["addr"], rsp["netfn"], rsp["cmd"]), (peer.PEER, APP, GET_DEVICE_ID),
           "response addr, netfn, cmd")
        c = inst.counters()
        eq((c["req_sent"], c["rsp_matched"], c["req_timeouts"]), (1, 1, 0),
           "req_sent, rsp_matched, req_timeouts")
    with_file(run)


test_get_device_id.timeout = 30


@lib.machines("ast2600-evb")
def test_echo_every_length_up_to_max_frame():
    # The longest echo that fits both ways: the response carries cc, so max_frame_len - 8.
    def run(inst, fd):
        longest = abi.info(fd)["max_frame_len"] - 8
        eq(longest, 24, "longest echo with max_frame_len=32 (the IPMB limit)")
        for n in range(longest + 1):
            data = bytes((0xA0 + n + k) & 0xFF for k in range(n))
            peer.answered(peer.request(fd, OEM, ECHO, data), peer.CC_OK, data, f"echo of {n}")
        eq(inst.counters()["rsp_matched"], longest + 1, "rsp_matched")
    with_file(run, "max_frame_len=32")


test_echo_every_length_up_to_max_frame.timeout = 30


@lib.machines("ast2600-evb")
def test_echo_long_frames_with_max_frame_len_240():
    inst = peer.setup("max_frame_len=240")
    fd = inst.open()
    try:
        for n in (25, 100, 200, 232):
            data = bytes((n * 7 + k) & 0xFF for k in range(n))
            peer.answered(peer.request(fd, OEM, ECHO, data), peer.CC_OK, data, f"echo of {n}")
        eq(inst.counters()["rx_too_long"], 0, "rx_too_long")
    finally:
        os.close(fd)


test_echo_long_frames_with_max_frame_len_240.timeout = 30


@lib.machines("ast2600-evb")
def test_unknown_command_gets_c1():
    def run(inst, fd):
        for netfn, cmd in ((APP, 0x55), (OEM, 0x7F), (0x2E, ECHO)):
            rsp = peer.request(fd, netfn, cmd, b"\x01\x02")
            peer.answered(rsp, peer.CC_INVALID_CMD, b"", f"netFn {netfn:#x} cmd {cmd:#x}")
    with_file(run)


test_unknown_command_gets_c1.timeout = 30


def _requester(dev, p, count, wfd, go):
    """A requester process: `count` requests to the peer, each answer checked; exits 0 or 1.

    Even processes use echo, odd ones Get Device ID: the two requests the peer answers with
    cc 0, so two exchanges share the seq quarantine (64 seqs per exchange per 5 s).
    """
    try:
        os.read(go, 1)
        fd = os.open(dev, os.O_RDWR)
        for i in range(count):
            if p % 2 == 0:
                data = struct.pack("<BH", p, i) + bytes((i + k) & 0xFF for k in range(i % 12))
                rsp = peer.request(fd, OEM, ECHO, data, timeout_ms=20000)
            else:
                data = peer.DEVICE_ID
                rsp = peer.request(fd, APP, GET_DEVICE_ID, timeout_ms=20000)
            if (rsp["cc"], rsp["flags"], rsp["data"]) != (0, 0, data):
                raise AssertionError(f"process {p} request {i}: expected {data.hex()}, "
                                     f"got {rsp}")
        os.close(fd)
        os._exit(0)
    except BaseException as e:  # noqa: B036 - a child reports every failure and exits
        try:
            os.write(wfd, f"process {p}: {e!r}".encode()[:4000])
        finally:
            os._exit(1)


def run_requesters(dev, procs, count, limit_s):
    """Runs `procs` requester processes at once; returns their failures."""
    go_r, go_w = os.pipe()
    children = {}
    try:
        for p in range(procs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                _requester(dev, p, count, w, go_r)
            os.close(w)
            children[pid] = r
        os.write(go_w, b"x" * procs)
        failures = []
        deadline = time.monotonic() + limit_s
        while children and time.monotonic() < deadline:
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    r = children.pop(pid)
                    msg = os.read(r, 4096).decode(errors="replace")
                    os.close(r)
                    if status != 0:
                        failures.append(msg or f"pid {pid} status {status:#x}")
            time.sleep(0.1)
        return failures + [f"pid {pid} did not finish in time" for pid in children]
    finally:
        for pid, r in children.items():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ChildProcessError, ProcessLookupError):
                pass
            lib.closing(r)
        lib.closing(go_r, go_w)


@lib.machines("ast2600-evb")
def test_many_processes_many_requests():
    procs, count = 4, 50
    inst = peer.setup()
    # Requests and responses contend for the bus all the time here: see peer.bus_timeout().
    with peer.bus_timeout(200):
        failures = run_requesters(inst.dev, procs, count, 60)
    eq(failures, [], "requester processes")
    c = inst.counters()
    eq((c["req_sent"], c["rsp_matched"], c["req_timeouts"], c["req_retries"],
        c["rsp_late"], c["rsp_duplicate"]), (procs * count, procs * count, 0, 0, 0, 0),
       "req_sent, rsp_matched, req_timeouts, req_retries, rsp_late, rsp_duplicate")


test_many_processes_many_requests.timeout = 80


def ipmb_raw(*args):
    prog = os.path.join(lib.REPO, "samples", "ipmb-raw")
    true(os.path.exists(prog), f"{prog} missing")
    return subprocess.run([prog, *args], capture_output=True, text=True, timeout=30)


@lib.machines("ast2600-evb")
def test_ipmb_raw_get_device_id():
    inst = peer.setup()
    r = ipmb_raw("-t", str(peer.TIMEOUT_MS), inst.dev, f"{peer.PEER:#x}", f"{APP:#x}",
                 f"{GET_DEVICE_ID:#x}")
    eq((r.returncode, r.stderr), (0, ""), "ipmb-raw exit status and stderr")
    lines = r.stdout.splitlines()
    true(len(lines) >= 2 and lines[0].startswith("cc=0x00 (ok) seq="),
         f"ipmb-raw status line: {r.stdout!r}")
    eq(lines[1], " " + " ".join(f"{b:02x}" for b in peer.DEVICE_ID), "ipmb-raw data line")
    fields = dict(tuple(s.strip() for s in line.split(":", 1)) for line in lines[2:])
    eq(fields, {
        "Device ID": "66",
        "Device Revision": "1",
        "Provides Device SDRs": "no",
        "Device Available": "yes",
        "Firmware Revision": "2.10",
        "IPMI Version": "2.0",
        "Additional Device Support": "0x21",
        "Manufacturer ID": "6746 (0x001a5a)",
        "Product ID": "4660 (0x1234)",
        "Aux Firmware Rev Info": "0x00 0x00 0x00 0x00",
    }, "ipmb-raw decoded Get Device ID")


test_ipmb_raw_get_device_id.timeout = 30
