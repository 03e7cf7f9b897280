# SPDX-License-Identifier: GPL-2.0
"""read() and write() of raw frames (the ipmb_dev_int layout) with the QEMU IPMB peer.

The peer's bursts arrive through the i2c-aspeed target interrupt, one byte per interrupt;
peer.burst() returns once the whole burst is on our side, so counters and the read() queue
can be checked exactly.
"""

import os

import ipmbabi as abi
import lib
import peer
from lib import eq, frame, with_len
from peer import ECHO, OEM

DROPS = tuple(n for n in peer.FRAME_COUNTERS if n != "rx_frames")


@lib.machines("ast2600-evb")
def test_write_request_read_response():
    inst = peer.setup()
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        data = b"\x11\x22\x33\x44"
        # Our LUN 2, the peer's LUN 1: the response swaps them.
        req = frame(peer.PEER, OEM, peer.OWN, 9, ECHO, data, dest_lun=1, src_lun=2)
        eq(os.write(fd, with_len(req)), len(req) + 1, "write() count")
        rsp = frame(peer.OWN, OEM | 1, peer.PEER, 9, ECHO, b"\x00" + data, dest_lun=2, src_lun=1)
        eq(lib.read_wait(fd, peer.TIMEOUT_MS), with_len(rsp), "response read()")
        eq(lib.queued_frames(fd), [], "frames after the response")
        c = inst.counters()
        eq((c["tx_frames"], c["rx_frames"]), (1, 1), "tx_frames, rx_frames")
    finally:
        os.close(fd)


test_write_request_read_response.timeout = 30


@lib.machines("ast2600-evb")
def test_burst_read_in_fifo_order():
    count, dlen = 100, 10
    inst = peer.setup()
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        peer.burst(inst, fd, count, dlen=dlen)
        got = lib.queued_frames(fd)
        eq(len(got), count, "frames read")
        for i, buf in enumerate(got):
            eq(buf, with_len(peer.burst_frame(i, dlen)), f"frame {i}")
        c = inst.counters()
        eq({n: c[n] for n in DROPS}, {n: 0 for n in DROPS}, "drop counters")
    finally:
        os.close(fd)


test_burst_read_in_fifo_order.timeout = 40


@lib.machines("ast2600-evb")
def test_bad_frames_counted_by_cause_not_read():
    """Bursts of bad frames: each frame counted once, in its cause's counter; none read()."""
    count = 5
    inst = peer.setup("max_frame_len=32")
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        # (kind, dlen, counter); 40 data bytes make a 47-byte frame, over the IPMB limit 32.
        for kind, dlen, counter in ((peer.BAD_CS1, 8, "rx_bad_cs1"),
                                    (peer.BAD_CS2, 8, "rx_bad_cs2"),
                                    (peer.VALID, 40, "rx_too_long")):
            before = inst.counters()
            peer.burst(inst, fd, count, kind, dlen)
            eq(lib.queued_frames(fd), [], f"frames read() after {counter} frames")
            after = inst.counters()
            delta = {n: after[n] - before[n] for n in DROPS + ("rx_frames",)}
            # rx_frames: the response to the burst request.
            expected = dict({n: 0 for n in DROPS}, rx_frames=1, **{counter: count})
            eq(delta, expected, f"sysfs counters after {count} frames for {counter}")
            s = abi.stats(fd)
            eq({n: s[n] for n in DROPS}, {n: after[n] for n in DROPS},
               "IPMB_IOC_STATS against sysfs")
    finally:
        os.close(fd)


test_bad_frames_counted_by_cause_not_read.timeout = 40


@lib.machines("ast2600-evb")
def test_queue_overflow_keeps_oldest():
    queue_len, count = 4, 10
    inst = peer.setup(f"queue_len={queue_len}")
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        peer.burst(inst, fd, count)
        eq(inst.counters()["rx_overflow"], count - queue_len, "rx_overflow")
        eq(lib.queued_frames(fd), [with_len(peer.burst_frame(i)) for i in range(queue_len)],
           "the first queue_len frames, in order")
    finally:
        os.close(fd)


test_queue_overflow_keeps_oldest.timeout = 30
