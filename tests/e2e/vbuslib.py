# SPDX-License-Identifier: GPL-2.0
"""Helpers of the virtual I2C bus tests (test_vbus*.py): adapters, targets, transfers, tracefs.

The target backend is the in-tree C driver ipmb_dev_int, instantiated on a vbus adapter;
frames are sent from another adapter through i2c-dev (I2C_RDWR).
"""

import ctypes
import errno
import fcntl
import glob
import os
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
