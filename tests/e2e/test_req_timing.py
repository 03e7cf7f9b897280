# SPDX-License-Identifier: GPL-2.0
"""End-to-end tests of the requester's retries, timeouts, synthesized completion codes and seqs.

Helpers and responders: reqlib.py.
"""

import errno
import os
import time

import ipmbabi as abi
import lib
from lib import (closing, eq, parse, read_wait, true, wait_for)
from reqlib import (APP, NOBODY, SAT, Deadline, Legacy, answered, call_with_deadline, delta, echo,
                    receive_wait, synthesized, wait_counter)


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
