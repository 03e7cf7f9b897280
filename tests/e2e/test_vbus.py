# SPDX-License-Identifier: GPL-2.0
"""The virtual I2C bus (tests/vbus/i2c_vbus.ko): delivery to a target backend and faults.

The target backend is the in-tree C driver ipmb_dev_int, instantiated on one vbus adapter at
7-bit address 0x10; frames are sent from another adapter through i2c-dev (I2C_RDWR). The
general-call tests put one ipmb_dev_int target on each of three adapters (0x10, 0x11, 0x12) and
follow each target's events with the i2c_slave trace event.
"""

import ctypes
import errno
import fcntl
import glob
import os
import re
import subprocess
import time

import lib

I2C_RDWR = 0x0707
I2C_FUNCS = 0x0705
I2C_M_RD = 0x0001
I2C_FUNC_I2C = 0x00000001
I2C_FUNC_SLAVE = 0x00000020
I2C_OWN_SLAVE_ADDRESS = 0x1000

TARGET = 0x10            # 7-bit address of the ipmb-dev target
RS_SA = TARGET << 1      # its 8-bit IPMB address
GENERAL_CALL = 0x00      # 7-bit general-call (broadcast) address
GC_TARGETS = (0x10, 0x11, 0x12)  # 7-bit addresses of the targets on adapters 0, 1, 2
PARAMS = "/sys/module/i2c_vbus/parameters"


class I2cMsg(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint16), ("flags", ctypes.c_uint16),
                ("len", ctypes.c_uint16), ("buf", ctypes.POINTER(ctypes.c_uint8))]


class I2cRdwr(ctypes.Structure):
    _fields_ = [("msgs", ctypes.POINTER(I2cMsg)), ("nmsgs", ctypes.c_uint32)]


def frame(seq=0x04, data=b"", rs_sa=RS_SA):
    """An IPMB request to rs_sa without its address byte (what goes on the wire after it)."""
    netfn_lun = 0x06 << 2
    cs1 = -(rs_sa + netfn_lun) & 0xFF
    body = bytes([0x81, seq << 2, 0x01]) + data
    cs2 = -sum(body) & 0xFF
    return bytes([netfn_lun, cs1]) + body + bytes([cs2])


def adapters():
    """Maps adapter names to bus numbers."""
    found = {}
    for d in glob.glob("/sys/bus/i2c/devices/i2c-*"):
        name_file = os.path.join(d, "name")
        if os.path.exists(name_file):
            found[lib.read(name_file)] = int(os.path.basename(d)[4:])
    return found


def load_vbus(*params):
    lib.insmod("i2c_vbus", *params)
    buses = adapters()
    a, b = buses.get("ipmb-vbus-0"), buses.get("ipmb-vbus-1")
    lib.true(a is not None and b is not None, f"vbus adapters missing: {buses}")
    return a, b


def set_param(name, value):
    with open(f"{PARAMS}/{name}", "w") as f:
        f.write(f"{value}\n")


def get_param(name):
    return lib.read(f"{PARAMS}/{name}")


def wait_for(path, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def new_target(bus, addr=TARGET):
    """Instantiates ipmb-dev as a target at `addr` on `bus`; returns its /dev/ipmb-N."""
    with open(f"/sys/bus/i2c/devices/i2c-{bus}/new_device", "w") as f:
        f.write(f"ipmb-dev {I2C_OWN_SLAVE_ADDRESS | addr:#x}\n")
    dev = f"/dev/ipmb-{bus}"
    lib.true(wait_for(dev), f"{dev} did not appear")
    return dev


def delete_target(bus, addr=TARGET):
    with open(f"/sys/bus/i2c/devices/i2c-{bus}/delete_device", "w") as f:
        f.write(f"{I2C_OWN_SLAVE_ADDRESS | addr:#x}\n")


def transfer(bus, msgs):
    """Runs one I2C_RDWR transfer of (addr, data-or-read-length) tuples; returns read data.

    A bytes value is a write message; an int is a read of that many bytes. Raises OSError.
    """
    bufs, arr = [], (I2cMsg * len(msgs))()
    for i, (addr, what) in enumerate(msgs):
        if isinstance(what, int):
            buf, flags, n = (ctypes.c_uint8 * max(what, 1))(), I2C_M_RD, what
        else:
            buf, flags, n = (ctypes.c_uint8 * max(len(what), 1))(*what), 0, len(what)
        bufs.append((buf, isinstance(what, int), n))
        arr[i] = I2cMsg(addr, flags, n, ctypes.cast(buf, ctypes.POINTER(ctypes.c_uint8)))
    data = I2cRdwr(ctypes.cast(arr, ctypes.POINTER(I2cMsg)), len(msgs))
    fd = os.open(f"/dev/i2c-{bus}", os.O_RDWR)
    try:
        fcntl.ioctl(fd, I2C_RDWR, data)
    finally:
        os.close(fd)
    return [bytes(buf[:n]) for buf, rd, n in bufs if rd]


def expect_errno(code, fn, what):
    try:
        fn()
    except OSError as e:
        lib.eq(errno.errorcode.get(e.errno), errno.errorcode[code], what)
        return
    raise AssertionError(f"{what}: expected {errno.errorcode[code]}, it succeeded")


def read_frame(dev, timeout=5.0):
    """Reads one request from /dev/ipmb-N (blocking, with a time limit)."""
    fd = os.open(dev, os.O_RDONLY | os.O_NONBLOCK)
    try:
        end = time.time() + timeout
        while True:
            try:
                return os.read(fd, 256)
            except BlockingIOError:
                if time.time() > end:
                    raise AssertionError(f"no frame on {dev} within {timeout} s")
                time.sleep(0.02)
    finally:
        os.close(fd)


def expect_no_frame(dev, what):
    time.sleep(0.1)
    fd = os.open(dev, os.O_RDONLY | os.O_NONBLOCK)
    try:
        got = os.read(fd, 256)
    except BlockingIOError:
        return
    finally:
        os.close(fd)
    raise AssertionError(f"{what}: unexpected frame {got.hex()}")


def expected(msg, rs_sa=RS_SA):
    """What ipmb_dev_int's read() returns for a frame: [len][rs_sa][bytes...]."""
    return bytes([len(msg) + 1, rs_sa]) + msg


class Target:
    """ipmb_dev_int target on adapter `a`, deleted on exit."""

    def __init__(self, a):
        self.a = a

    def __enter__(self):
        lib.insmod("ipmb_dev_int")
        self.dev = new_target(self.a)
        return self.dev

    def __exit__(self, *exc):
        delete_target(self.a)
        return False


def test_adapters_and_functionality():
    a, b = load_vbus()
    lib.eq(get_param("nr_adapters"), "2", "nr_adapters")
    lib.true("ipmb-vbus-2" not in adapters(), "a third adapter appeared")
    funcs = ctypes.c_ulong()
    fd = os.open(f"/dev/i2c-{a}", os.O_RDWR)
    try:
        fcntl.ioctl(fd, I2C_FUNCS, funcs)
    finally:
        os.close(fd)
    lib.true(funcs.value & I2C_FUNC_I2C, f"I2C_FUNC_I2C missing: {funcs.value:#x}")
    lib.true(funcs.value & I2C_FUNC_SLAVE, f"I2C_FUNC_SLAVE missing: {funcs.value:#x}")


def test_nr_adapters_param():
    lib.insmod("i2c_vbus", "nr_adapters=3")
    names = adapters()
    for i in range(3):
        lib.true(f"ipmb-vbus-{i}" in names, f"ipmb-vbus-{i} missing: {names}")
    lib.true("ipmb-vbus-3" not in names, "a fourth adapter appeared")
    lib.rmmod("i2c_vbus")
    try:
        lib.insmod("i2c_vbus", "nr_adapters=9")
        result = "loaded"
    except AssertionError as e:
        result = str(e)
    # The parameter's range check refuses the value: finit_module() fails with EINVAL.
    lib.eq(result, f"insmod i2c_vbus failed: {os.strerror(errno.EINVAL)}", "insmod nr_adapters=9")


def test_delivery():
    a, b = load_vbus()
    with Target(a) as dev:
        msg = frame(seq=1, data=b"\x11\x22")
        transfer(b, [(TARGET, msg)])
        lib.eq(read_frame(dev), expected(msg), "frame read from /dev/ipmb")
        expect_no_frame(dev, "second read")


def test_write_then_read_repeated_start():
    # No STOP between the messages: the C driver keeps the frame and queues it at the STOP
    # that ends the transfer; its read events return 0.
    a, b = load_vbus()
    with Target(a) as dev:
        msg = frame(seq=2)
        got = transfer(b, [(TARGET, msg), (TARGET, 3)])
        lib.eq(got, [b"\x00\x00\x00"], "bytes read from the target")
        lib.eq(read_frame(dev), expected(msg), "frame after a repeated start")


def test_no_target_enxio():
    a, b = load_vbus()
    with Target(a) as dev:
        expect_errno(errno.ENXIO, lambda: transfer(b, [(TARGET + 1, frame())]),
                     "address without a target")
        # A target does not answer its own adapter.
        expect_errno(errno.ENXIO, lambda: transfer(a, [(TARGET, frame())]),
                     "target on the sending adapter")
        expect_no_frame(dev, "after ENXIO")


def test_nak_next():
    a, b = load_vbus()
    with Target(a) as dev:
        set_param("nak_next", 2)
        for i in range(2):
            expect_errno(errno.ENXIO, lambda: transfer(b, [(TARGET, frame())]), f"NAK {i}")
        lib.eq(get_param("nak_next"), "0", "nak_next after use")
        expect_no_frame(dev, "NAKed transfers")
        msg = frame(seq=3)
        transfer(b, [(TARGET, msg)])
        lib.eq(read_frame(dev), expected(msg), "frame after the NAKs")


def test_arb_lost_next():
    a, b = load_vbus()
    with Target(a) as dev:
        set_param("arb_lost_next", 1)
        expect_errno(errno.EAGAIN, lambda: transfer(b, [(TARGET, frame())]), "arbitration")
        lib.eq(get_param("arb_lost_next"), "0", "arb_lost_next after use")
        expect_no_frame(dev, "lost arbitration")
        msg = frame(seq=4)
        transfer(b, [(TARGET, msg)])
        lib.eq(read_frame(dev), expected(msg), "frame after the arbitration loss")


def test_corrupt_byte():
    a, b = load_vbus()
    with Target(a) as dev:
        set_param("corrupt_byte", 1)     # cs1: the C driver drops the frame
        transfer(b, [(TARGET, frame(seq=5))])
        lib.eq(get_param("corrupt_byte"), "-1", "corrupt_byte after use")
        expect_no_frame(dev, "corrupted header checksum")
        set_param("corrupt_byte", 5)     # cs2: not checked by the C driver
        msg = frame(seq=6)
        transfer(b, [(TARGET, msg)])
        bad = bytearray(msg)
        bad[5] ^= 0xFF
        lib.eq(read_frame(dev), expected(bytes(bad)), "frame with byte 5 inverted")
        msg = frame(seq=7)
        transfer(b, [(TARGET, msg)])
        lib.eq(read_frame(dev), expected(msg), "intact frame afterwards")


def test_drop_stop_next():
    a, b = load_vbus()
    with Target(a) as dev:
        set_param("drop_stop_next", 1)
        transfer(b, [(TARGET, frame(seq=8))])
        lib.eq(get_param("drop_stop_next"), "0", "drop_stop_next after use")
        expect_no_frame(dev, "no STOP: the C driver queues frames at STOP")
        msg = frame(seq=9)
        transfer(b, [(TARGET, msg)])
        lib.eq(read_frame(dev), expected(msg), "frame after the lost STOP")


def test_paced_and_delayed():
    a, b = load_vbus()
    with Target(a) as dev:
        set_param("speed_khz", 100)
        set_param("delay_us", 20000)
        msg = frame(seq=10, data=bytes(range(20)))
        start = time.monotonic()
        transfer(b, [(TARGET, msg)])
        elapsed = time.monotonic() - start
        # 20 ms delay + (address + 26 bytes + STOP) events at 90 us each.
        lib.true(elapsed >= 0.020 + 27 * 0.00009, f"transfer took only {elapsed * 1e3:.2f} ms")
        lib.eq(read_frame(dev), expected(msg), "paced frame")
        set_param("speed_khz", 0)
        set_param("delay_us", 0)


def test_param_validation():
    load_vbus()
    for name, value in (("speed_khz", 999999), ("delay_us", -1), ("nak_next", -1),
                        ("corrupt_byte", -2), ("nak_next", "x")):
        try:
            set_param(name, value)
        except OSError as e:
            lib.eq(e.errno, errno.EINVAL, f"{name}={value}")
        else:
            raise AssertionError(f"{name}={value} was accepted")
    lib.eq(get_param("speed_khz"), "0", "speed_khz unchanged")
    lib.eq(get_param("corrupt_byte"), "-1", "corrupt_byte unchanged")


def test_address_busy():
    a, b = load_vbus()
    with Target(a):
        # Same address on another adapter of the wire: reg_slave says EBUSY, probe fails.
        with open(f"/sys/bus/i2c/devices/i2c-{b}/new_device", "w") as f:
            f.write(f"ipmb-dev {I2C_OWN_SLAVE_ADDRESS | TARGET:#x}\n")
        try:
            time.sleep(0.2)
            lib.true(not os.path.exists(f"/dev/ipmb-{b}"), "second target at the same address")
        finally:
            delete_target(b)


def test_unload_with_target():
    # Deleting the adapters removes the client, whose driver unregisters its target.
    a, b = load_vbus()
    lib.insmod("ipmb_dev_int")
    dev = new_target(a)
    msg = frame(seq=11)
    transfer(b, [(TARGET, msg)])
    lib.eq(read_frame(dev), expected(msg), "frame before unload")
    lib.rmmod("i2c_vbus")
    lib.true(not os.path.exists(dev), f"{dev} still exists after the adapters went")


def tracefs():
    """Returns where tracefs is mounted, mounting it if needed."""
    path = "/sys/kernel/tracing"
    if not os.path.exists(os.path.join(path, "trace")):
        r = subprocess.run(["mount", "-t", "tracefs", "nodev", path], capture_output=True,
                           text=True)
        lib.true(r.returncode == 0, f"mount tracefs: {r.stderr.strip()}")
    lib.true(os.path.exists(os.path.join(path, "events", "i2c_slave")),
             f"no i2c_slave trace event in {path}: {sorted(os.listdir(path))[:40]}")
    return path


def test_events_in_hardirq_context():
    # The i2c_slave trace event records each target event with the context it ran in: the
    # flags column of the trace (e.g. "d.h1.") has 'h' (or 'H') for hard-IRQ context.
    trace = tracefs()
    a, b = load_vbus()
    with Target(a) as dev:
        with open(f"{trace}/trace", "w") as f:
            f.write("")
        with open(f"{trace}/events/i2c_slave/i2c_slave/enable", "w") as f:
            f.write("1\n")
        try:
            msg = frame(seq=12)
            transfer(b, [(TARGET, msg)])
        finally:
            with open(f"{trace}/events/i2c_slave/i2c_slave/enable", "w") as f:
                f.write("0\n")
        lib.eq(read_frame(dev), expected(msg), "frame")
        with open(f"{trace}/trace") as f:
            lines = [line for line in f if "i2c_slave:" in line]
        kinds = [line.split("ret=")[1].split()[1] for line in lines]
        lib.eq(kinds, ["WR_REQ"] + ["WR_RCV"] * len(msg) + ["STOP"], "traced events")
        for line in lines:
            flags = line.split("]", 1)[1].split()[0]
            lib.true(len(flags) >= 3 and flags[2] in "hH", f"not in hard-IRQ context: {line!r}")


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
