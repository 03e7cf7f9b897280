# SPDX-License-Identifier: GPL-2.0
"""The QEMU IPMB peer device ("ipmb-peer") as the BMC tests see it, and where it sits.

tests/qemu/run.py attaches the peer to the machine's IPMB bus; the device tree gives that bus
an ipmb-dev node at 0x20 for our driver. The peer answers valid requests addressed to it:

  - App (0x06) Get Device ID (0x01): cc 0 and the 15 bytes of DEVICE_ID;
  - OEM (0x30) echo (0x01): cc 0 and the request's data;
  - OEM (0x30) burst (0x02), data [dest8, count (LE16), kind, dlen (LE16)]: cc 0, then
    `count` request frames to dest8 (burst_frame()), one I2C write each, back to back;
  - anything else: cc 0xC1.
Requests that arrive while it is still sending are answered after what it has queued, so the
answer to a request sent after a burst request arrives after the whole burst (sync()).
"""

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

# Timeout of the requests the tests make: TCG is slow, and the peer may have a burst queued.
TIMEOUT_MS = 10000


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


def burst(fd, count, kind=VALID, dlen=8, dest=OWN):
    """Asks the peer for a burst; returns once it has accepted (it sends afterwards)."""
    rsp = request(fd, OEM, BURST, burst_request_data(count, kind, dlen, dest))
    answered(rsp, CC_OK, b"", f"burst request ({count} frames, kind {kind}, dlen {dlen})")


def sync(fd):
    """Returns once the peer has sent everything queued before: its answer comes last."""
    marker = os.urandom(4)
    answered(request(fd, OEM, ECHO, marker), CC_OK, marker, "echo after the burst")


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
