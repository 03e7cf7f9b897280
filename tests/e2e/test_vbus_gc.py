# SPDX-License-Identifier: GPL-2.0
"""The virtual I2C bus's general call: a write to address 0 reaches every target on the others.

One ipmb_dev_int target on each of three adapters (0x10, 0x11, 0x12); each target's events are
followed with the i2c_slave trace event. Helpers: vbuslib.py.
"""

import errno
import re
import time

import lib
from vbuslib import (GC_TARGETS, GENERAL_CALL, Target, adapters, delete_target, expect_errno,
                     expect_no_frame, expected, frame, load_vbus, new_target, read_frame,
                     set_param, tracefs, transfer)


# ---------------------------------------------------------------------------------------------
# General call: a write to address 0 reaches every target on the other adapters.

TRACE_EVENT = re.compile(r"i2c_slave: i2c-(\d+) a=([0-9a-f]+) ret=(-?\d+)\s+(\S+) \[([0-9a-f]*)\]")


class Trace:
    """Records the i2c_slave trace events of the `with` block.

    After the block, `events` lists (bus, addr7, ret, kind, byte or None, irq flags).
    """

    def __enter__(self):
        self.path = tracefs()
        with open(f"{self.path}/trace", "w") as f:
            f.write("")
        self._enable("1")
        return self

    def __exit__(self, *exc):
        self._enable("0")
        self.events = []
        with open(f"{self.path}/trace") as f:
            for line in f:
                m = TRACE_EVENT.search(line)
                if m:
                    flags = line.split("]", 1)[1].split()[0]
                    byte = int(m.group(5), 16) if m.group(5) else None
                    self.events.append((int(m.group(1)), int(m.group(2), 16), int(m.group(3)),
                                        m.group(4), byte, flags))
        return False

    def _enable(self, on):
        with open(f"{self.path}/events/i2c_slave/i2c_slave/enable", "w") as f:
            f.write(f"{on}\n")

    def of(self, bus):
        """The (kind, byte) events the target on `bus` received, in order."""
        return [(kind, byte) for b, _, _, kind, byte, _ in self.events if b == bus]


def script(*msgs, stop=True):
    """The events a target receives for write messages `msgs` (repeated starts between them)."""
    out = []
    for msg in msgs:
        out += [("WR_REQ", None)] + [("WR_RCV", b) for b in msg]
    return out + ([("STOP", None)] if stop else [])


def gc_frame(seq, receiver):
    """A frame whose header checksum is right only for the target at 7-bit `receiver`.

    ipmb_dev_int checks it against its own address at STOP: every other target that gets the
    frame drops it, so each /dev/ipmb-N shows which frame reached its target whole.
    """
    return frame(seq=seq, data=bytes([receiver]), rs_sa=receiver << 1)


class Targets:
    """One ipmb_dev_int target per adapter of `buses`, at GC_TARGETS; deleted on exit."""

    def __init__(self, buses):
        self.buses = buses
        self.made = []

    def __enter__(self):
        lib.insmod("ipmb_dev_int")
        devs = []
        for bus, addr in zip(self.buses, GC_TARGETS):
            devs.append(new_target(bus, addr))
            self.made.append((bus, addr))
        return devs

    def __exit__(self, *exc):
        for bus, addr in reversed(self.made):
            delete_target(bus, addr)
        return False


def load_vbus3(*params):
    lib.insmod("i2c_vbus", "nr_adapters=3", *params)
    buses = adapters()
    found = [buses.get(f"ipmb-vbus-{i}") for i in range(3)]
    lib.true(None not in found, f"vbus adapters missing: {buses}")
    return found


def test_general_call_reaches_every_other_target():
    buses = load_vbus3()
    with Targets(buses) as devs:
        seq = 0x10
        for s, sender in enumerate(buses):
            for r, receiver in enumerate(GC_TARGETS):
                if r == s:
                    continue
                seq += 1
                msg = gc_frame(seq, receiver)
                with Trace() as t:
                    transfer(sender, [(GENERAL_CALL, msg)])
                what = f"general call from adapter {s}, frame for {receiver:#x}"
                for i, bus in enumerate(buses):
                    want = [] if i == s else script(msg)
                    lib.eq(t.of(bus), want, f"{what}: events of the target on adapter {i}")
                for bus, addr, ret, kind, _, flags in t.events:
                    lib.eq(addr, GC_TARGETS[buses.index(bus)], f"{what}: address in {kind}")
                    lib.eq(ret, 0, f"{what}: answer to {kind}")
                    lib.true(len(flags) >= 3 and flags[2] in "hH",
                             f"{what}: {kind} not in hard-IRQ context ({flags})")
                # Whole frame with its STOP: queued by the target it is meant for only.
                lib.eq(read_frame(devs[r]), expected(msg, receiver << 1), f"{what}: frame")
                for i, dev in enumerate(devs):
                    if i != r:
                        expect_no_frame(dev, f"{what}: adapter {i}")


def test_general_call_without_target_enxio():
    a, b = load_vbus()
    with Trace() as t:
        expect_errno(errno.ENXIO, lambda: transfer(b, [(GENERAL_CALL, frame())]),
                     "general call on a wire without targets")
    lib.eq(t.events, [], "events of a general call without targets")
    with Target(a) as dev:
        with Trace() as t:
            # The target on the sending adapter does not count.
            expect_errno(errno.ENXIO, lambda: transfer(a, [(GENERAL_CALL, frame())]),
                         "general call with a target on the sending adapter only")
            # The general call is write-only.
            expect_errno(errno.ENXIO, lambda: transfer(b, [(GENERAL_CALL, 1)]),
                         "read from the general-call address")
            expect_errno(errno.ENXIO, lambda: transfer(b, [(GENERAL_CALL, 0)]),
                         "zero-length read from the general-call address")
        lib.eq(t.events, [], "events of failed general calls")
        expect_no_frame(dev, "after ENXIO")
        msg = frame(seq=0x20)
        with Trace() as t:
            transfer(b, [(GENERAL_CALL, msg)])
        lib.eq(t.of(a), script(msg), "general call with one target")
        lib.eq(read_frame(dev), expected(msg), "frame of the general call")


def test_general_call_repeated_start():
    buses = load_vbus3()
    a0, a1, a2 = buses
    t1, t2 = GC_TARGETS[1], GC_TARGETS[2]
    with Targets(buses) as devs:
        m1, m2 = gc_frame(0x21, t2), gc_frame(0x22, t1)
        # General call, then only t1: t2's transfer ends when the master selects t1.
        with Trace() as t:
            transfer(a0, [(GENERAL_CALL, m1), (t1, m2)])
        lib.eq(t.of(a1), script(m1, m2), "general call then t1: events of t1")
        lib.eq(t.of(a2), script(m1), "general call then t1: events of t2")
        lib.eq(t.of(a0), [], "general call then t1: sender's target")
        lib.eq(read_frame(devs[1]), expected(m2, t1 << 1), "t1 keeps the second message")
        # m1 is meant for t2: queued at the STOP it got when the master selected t1.
        lib.eq(read_frame(devs[2]), expected(m1, t2 << 1), "t2 got the general call whole")
        # t1, then a general call: t2 joins at the repeated start.
        with Trace() as t:
            transfer(a0, [(t1, m1), (GENERAL_CALL, m2)])
        lib.eq(t.of(a1), script(m1, m2), "t1 then general call: events of t1")
        lib.eq(t.of(a2), script(m2), "t1 then general call: events of t2")
        lib.eq(read_frame(devs[1]), expected(m2, t1 << 1), "t1 queues the general call")
        # Two general calls back to back: no STOP in between.
        with Trace() as t:
            transfer(a0, [(GENERAL_CALL, m2), (GENERAL_CALL, m1)])
        lib.eq(t.of(a1), script(m2, m1), "two general calls: events of t1")
        lib.eq(t.of(a2), script(m2, m1), "two general calls: events of t2")
        lib.eq(read_frame(devs[2]), expected(m1, t2 << 1), "t2 queues the second")
        expect_no_frame(devs[1], "t1 dropped the second (not its checksum)")
        # A failed message after a general call: every target addressed so far gets its STOP.
        for second, what in (((0x55, m2), "an unanswered address"),
                             ((GENERAL_CALL, 2), "a read from address 0")):
            with Trace() as t:
                expect_errno(errno.ENXIO, lambda: transfer(a0, [(GENERAL_CALL, m1), second]),
                             f"general call then {what}")
            for i, bus in ((1, a1), (2, a2)):
                lib.eq(t.of(bus), script(m1), f"general call then {what}: target {i}")
        lib.eq(read_frame(devs[2]), expected(m1, t2 << 1), "t2 queued m1 at the STOP")
        lib.eq(read_frame(devs[2]), expected(m1, t2 << 1), "t2 queued m1 at the second STOP")
        for dev in devs:
            expect_no_frame(dev, f"{dev} after the failed transfers")


def test_general_call_faults():
    buses = load_vbus3()
    a0, a1, a2 = buses
    t1, t2 = GC_TARGETS[1], GC_TARGETS[2]
    with Targets(buses) as devs:
        # NAK and arbitration loss: nobody sees the transfer.
        with Trace() as t:
            set_param("nak_next", 1)
            expect_errno(errno.ENXIO, lambda: transfer(a0, [(GENERAL_CALL, frame())]),
                         "nak_next on a general call")
            set_param("arb_lost_next", 1)
            expect_errno(errno.EAGAIN, lambda: transfer(a0, [(GENERAL_CALL, frame())]),
                         "arb_lost_next on a general call")
        lib.eq(t.events, [], "events of the NAKed and lost general calls")
        # Corrupted byte: every receiver gets the same inverted byte.
        msg = gc_frame(0x30, t1)
        set_param("corrupt_byte", 5)
        with Trace() as t:
            transfer(a0, [(GENERAL_CALL, msg)])
        bad = bytearray(msg)
        bad[5] ^= 0xFF
        for bus in (a1, a2):
            lib.eq(t.of(bus), script(bytes(bad)), f"corrupt_byte: events on i2c-{bus}")
        lib.eq(read_frame(devs[1]), expected(bytes(bad), t1 << 1), "corrupted frame at t1")
        # Lost STOP: no receiver gets it.
        set_param("drop_stop_next", 1)
        with Trace() as t:
            transfer(a0, [(GENERAL_CALL, gc_frame(0x31, t2))])
        for bus in (a1, a2):
            lib.eq(t.of(bus), script(gc_frame(0x31, t2), stop=False),
                   f"drop_stop_next: events on i2c-{bus}")
        expect_no_frame(devs[2], "no STOP: the C driver queues frames at STOP")
        # Delayed and paced: every receiver gets every event, in hard-IRQ context.
        set_param("speed_khz", 100)
        set_param("delay_us", 20000)
        try:
            msg = frame(seq=0x32, data=bytes(range(20)), rs_sa=t2 << 1)
            start = time.monotonic()
            with Trace() as t:
                transfer(a0, [(GENERAL_CALL, msg)])
            elapsed = time.monotonic() - start
        finally:
            set_param("speed_khz", 0)
            set_param("delay_us", 0)
        lib.true(elapsed >= 0.020 + 27 * 0.00009, f"transfer took only {elapsed * 1e3:.2f} ms")
        for bus in (a1, a2):
            lib.eq(t.of(bus), script(msg), f"paced: events on i2c-{bus}")
        for _, _, _, kind, _, flags in t.events:
            lib.true(len(flags) >= 3 and flags[2] in "hH", f"paced {kind} not in hard IRQ")
        lib.eq(read_frame(devs[2]), expected(msg, t2 << 1), "paced frame at t2")
        expect_no_frame(devs[1], "t1 after the paced frame")
