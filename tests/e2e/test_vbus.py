# SPDX-License-Identifier: GPL-2.0
"""The virtual I2C bus (tests/vbus/i2c_vbus.ko): delivery to a target backend and faults.

The target backend is the in-tree C driver ipmb_dev_int, instantiated on one vbus adapter at
7-bit address 0x10; frames are sent from another adapter through i2c-dev (I2C_RDWR).
Helpers: vbuslib.py.
"""

import ctypes
import errno
import fcntl
import os
import time

import lib
from vbuslib import (I2C_FUNCS, I2C_FUNC_I2C, I2C_FUNC_SLAVE, I2C_OWN_SLAVE_ADDRESS, TARGET,
                     Target, adapters, delete_target, expect_errno, expect_no_frame, expected,
                     frame, get_param, load_vbus, new_target, read_frame, set_param, tracefs,
                     transfer)


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
