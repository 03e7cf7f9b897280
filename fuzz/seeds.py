#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Writes the seed corpus, fuzz/corpus/<target>/<name>, in each target's input encoding
(see the target's module doc in fuzz/src/). Run it after changing an encoding; the fuzzers
start from these and keep what they find in build/fuzz/corpus/."""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def cs(b):
    return (-sum(b)) & 0xFF


def frame(dest, netfn_lun, src, seq_lun, cmd, body=b""):
    f = bytes([dest, netfn_lun])
    f += bytes([cs(f)])
    d = bytes([src, seq_lun, cmd]) + body
    return f + d + bytes([cs(d)])


GET_DEVICE_ID = frame(0x72, 0x06 << 2, 0x20, 1 << 2, 0x01)
RESPONSE = frame(0x20, 0x07 << 2, 0x72, 1 << 2, 0x01, b"\x00\x20\x01")
BROADCAST = frame(0x20, 0x06 << 2, 0x72, 0, 0x01)
LONG = frame(0x20, 0x2E << 2, 0x72, 9 << 2 | 1, 0x40, bytes(range(25)))


def esc(b):
    """Data bytes for the assembler target: 0xf8..0xff need the 0xff escape."""
    return b"".join(bytes([0xFF, x]) if x >= 0xF8 else bytes([x]) for x in b)


def exchange(k):
    """The seqtab target's key byte of exchange k (0..63): responder, netFn and cmd."""
    return k & 1 | (k >> 1 & 3) << 1 | (k >> 3) << 5


WR, STOP, RD, RDP, FIX, BFIX, POP = 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE

seeds = {
    "frame": {
        "request": bytes([32, 32]) + GET_DEVICE_ID,
        "response": bytes([32, 64]) + RESPONSE,
        "long": bytes([32, 32]) + LONG,
        "oem-len": bytes([240, 255]) + LONG,
    },
    "assembler": {
        "request-stop": bytes([0x72, 32, 3, WR]) + esc(GET_DEVICE_ID[1:]) + bytes([STOP, POP]),
        "response-read": bytes([0x20, 32, 3, WR]) + esc(RESPONSE[1:]) + bytes([RD, RDP, STOP, POP]),
        "broadcast": bytes([0x20, 32, 3, WR]) + esc(BROADCAST) + bytes([STOP, POP]),
        # Header and data checksums made by the fix-up events.
        "fixups": bytes([0x20, 32, 1, WR, 0x18, FIX, 0x72, 0x04, 0x01, FIX, STOP,
                         WR, 0x20, 0x18, BFIX, 0x72, 0x04, 0x01, BFIX, STOP, WR,
                         0x18, FIX, 0x72, 0x04, 0x01, FIX, RD, POP, POP]),
        "overflow": bytes([0x20, 32, 0, WR]) + bytes(40) + bytes([STOP, WR, 1, 2, STOP]),
    },
    "ring": {
        # capacity 4, slot 32, exact storage; push, push_front, pop.
        "mixed": bytes([4, 32, 0, 0, 0, 5, 0, 1, 7, 0, 2, 8, 0, 0, 33, 0, 2, 3, 0,
                        0, 1, 0, 0, 2, 0, 0, 2, 0, 2, 40, 0, 2, 40, 0]),
        "full": bytes([2, 8, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 2, 8, 0, 2, 8, 0, 2, 8, 0]),
    },
    "seqtab": {
        # alloc (sync, 250 ms, 1 retry), sent, expire at the deadline, resend, response.
        "request": bytes([0, 0, 0, 0, 0, 0, 0, 0x80, 3, 1, 2, 0, 0, 15, 1, 7, 2, 0, 0,
                          6, 0, 0x80, 8, 9, 0, 5, 0, 0x80, 8]),
        # async requests, a timeout, a late and a duplicate response, abandon, take.
        "async": bytes([0, 1, 0, 0, 0, 0, 1, 1, 2, 0, 1, 2, 0, 2, 0, 1, 2, 2, 1, 0, 0,
                        15, 1, 7, 7, 5, 0, 0x80, 8, 6, 1, 0x80, 8, 6, 1, 0x80, 8, 11,
                        1, 9, 0, 10, 1]),
        # seq 0's records filled by write() callers' requests in two rounds 3 s apart, then
        # allocations while the first round expires (op 14: clock += u16 / 16 ms).
        "externals": bytes([0, 0, 0, 0, 0, 0])
        + b"".join(bytes([12, exchange(k), 0]) for k in range(8))
        + bytes([14, 0x80, 0xBB])
        + b"".join(bytes([12, exchange(k), 0]) for k in range(8, 17))
        + bytes([14, 0x00, 0x7D, 13, exchange(20)])
        + b"".join(bytes([12, exchange(k), 0]) for k in range(10, 14))
        + bytes([0, exchange(20), 0x80, 3, 0, 0, exchange(21), 0, 0, 0, 15, 1, 0, exchange(9), 0, 0, 0]),
        "queue": bytes([0, 0, 0, 0, 0, 0, 0, 3, 0, 3, 0, 4, 0, 0, 5, 0x80, 0, 0, 3, 0,
                        3, 1, 4, 4, 2, 0, 2, 1, 7]),
    },
}

for target, files in seeds.items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
