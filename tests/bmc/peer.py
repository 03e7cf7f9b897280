# SPDX-License-Identifier: GPL-2.0
"""The QEMU IPMB peer device ("ipmb-peer") as the BMC tests see it, and where it sits.

tests/qemu/run.py attaches the peer to the machine's IPMB bus; the device tree gives that bus
an ipmb-dev node at 0x20 for our driver. The peer answers valid requests addressed to it:

  - App (0x06) Get Device ID (0x01): cc 0 and the 15 bytes of DEVICE_ID;
  - OEM (0x30) echo (0x01): cc 0 and the request's data;
  - OEM (0x30) burst (0x02), data [dest8, count (LE16), kind, dlen (LE16)]: cc 0, then
    `count` request frames to dest8 (burst_frame()), one I2C write each, back to back;
  - anything else: cc 0xC1.

QEMU's Aspeed I2C model has no bus arbitration: the guest must not master the bus while the
peer is sending (see bus_timeout()). So the tests send nothing while a burst is on the wire:
burst() returns once our driver has counted every frame of it.
"""

import contextlib
import fcntl
import os
import struct
import sys

import ipmbabi as abi
import lib
from lib import eq, frame

sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qemu"))
import machines  # noqa: E402 - tests/qemu/machines.py: where the peer and the nodes are

PEER = 0x80     # the peer's 8-bit IPMB address (machines.py: peer at 7-bit 0x40)
OWN = 0x20      # ours (machines.py: the first node, at 7-bit 0x10)

APP, OEM = 0x06, 0x30               # request netFns
GET_DEVICE_ID = 0x01                # App
ECHO, BURST, BURST_FRAME = 0x01, 0x02, 0x03   # OEM
CC_OK, CC_INVALID_CMD = 0x00, 0xC1

# Get Device ID: device 0x42, revision 1, firmware 2.10, IPMI 2.0, support 0x21,
# manufacturer 0x001A5A, product 0x1234, auxiliary revision 0.
DEVICE_ID = bytes([0x42, 0x01, 0x02, 0x10, 0x02, 0x21, 0x5A, 0x1A, 0x00, 0x34, 0x12,
                   0x00, 0x00, 0x00, 0x00])

# Burst frame kinds.
VALID, BAD_CS1, BAD_CS2 = 0, 1, 2

# Timeout of the requests the tests make: TCG is slow, and a transfer that finds the bus busy
# waits for the adapter timeout (bus_timeout()).
TIMEOUT_MS = 10000

I2C_TIMEOUT = 0x0702    # i2c-dev: set the adapter's timeout, in units of 10 ms
DEFAULT_BUS_TIMEOUT_MS = 1000   # what the I2C core gives an adapter that sets none (HZ)


@contextlib.contextmanager
def bus_timeout(ms):
    """Sets the timeout of the peer's I2C adapter for the block, then puts back the default.

    When the guest masters the bus while the peer is sending, i2c-aspeed (single master) finds
    it busy and tries a bus recovery, which QEMU's Aspeed model does not carry out: the
    transfer waits for the adapter timeout, the controller is reset, and the transfer goes
    ahead. Where many transfers contend, a shorter timeout keeps those stalls short.
    """
    def set_timeout(value_ms):
        fd = os.open(f"/dev/i2c-{machine().peer[0]}", os.O_RDWR)
        try:
            fcntl.ioctl(fd, I2C_TIMEOUT, value_ms // 10)
        finally:
            os.close(fd)

    set_timeout(ms)
    try:
        yield
    finally:
        set_timeout(DEFAULT_BUS_TIMEOUT_MS)


def machine():
    """The machine of the guest as tests/qemu/machines.py describes it."""
    return machines.get(lib.MACHINE)


def node(driver="ipmb"):
    """Our DT-instantiated client on the peer's bus, checked to be bound to `driver`."""
    m = machine()
    eq((m.peer[1] << 1, m.nodes[0].bus, m.nodes[0].addr << 1), (PEER, m.peer[0], OWN),
       f"machines.py for {m.name}: (peer address, bus of the first node, its address)")
    inst = lib.Instance(m.peer[0], OWN, driver=None, new=False)
    if driver:
        eq(inst.driver(), driver, f"driver of {inst.client}")
    return inst


def setup(*params):
    """Loads ipmb.ko (with `params`); returns the DT client it bound on the peer's bus."""
    lib.insmod("ipmb", *params)
    return node()


def request(fd, netfn, cmd, data=b"", **kw):
    """IPMB_IOC_REQUEST to the peer, one try with a long timeout."""
    kw.setdefault("timeout_ms", TIMEOUT_MS)
    kw.setdefault("retries", 0)
    return abi.request(fd, PEER, netfn, cmd, data, **kw)


def answered(rsp, cc, data, what):
    """Requires a real response (not synthesized) with completion code `cc` and `data`."""
    eq((rsp["cc"], rsp["flags"] & abi.MSG_SYNTHESIZED, rsp["data"]), (cc, 0, bytes(data)),
       f"{what}: (cc, IPMB_MSG_SYNTHESIZED, data)")


def burst_request_data(count, kind=VALID, dlen=8, dest=OWN):
    return struct.pack("<BHBH", dest, count, kind, dlen)


# Every frame the driver finalizes lands in exactly one of these counters.
FRAME_COUNTERS = ("rx_frames", "rx_short", "rx_too_long", "rx_bad_cs1", "rx_bad_cs2",
                  "rx_bad_addr", "rx_overflow")


def frames_counted(inst):
    c = inst.counters()
    return sum(c[n] for n in FRAME_COUNTERS)


def burst(inst, fd, count, kind=VALID, dlen=8, dest=OWN):
    """Has the peer send a burst to `inst`; returns once the driver has counted all of it."""
    before = frames_counted(inst)
    rsp = request(fd, OEM, BURST, burst_request_data(count, kind, dlen, dest))
    answered(rsp, CC_OK, b"", f"burst request ({count} frames, kind {kind}, dlen {dlen})")
    # The response to the burst request is counted too.
    lib.wait_for(lambda: frames_counted(inst) - before >= count + 1,
                 f"{count} burst frames counted", timeout=5 + count * 0.1)


def burst_data(i, dlen):
    """Data bytes of burst frame i: d_j = (i + j) & 0xFF, d_1 = i >> 8."""
    d = bytearray((i + j) & 0xFF for j in range(dlen))
    if dlen >= 2:
        d[1] = (i >> 8) & 0xFF
    return bytes(d)


def burst_frame(i, dlen=8, kind=VALID, dest=OWN):
    """Frame i of a burst as the peer puts it on the wire, address byte first."""
    f = bytearray(frame(dest, OEM, PEER, i & 0x3F, BURST_FRAME, burst_data(i, dlen)))
    if kind == BAD_CS1:
        f[2] ^= 0x01
    elif kind == BAD_CS2:
        f[-1] ^= 0x01
    return bytes(f)
