# SPDX-License-Identifier: GPL-2.0
"""ipmb.ko against the in-tree ipmb_dev_int.ko on the same DT client, with the same peer traffic.

The C driver has no ioctls, so the traffic is driven the way its users drive it: requests
written with write() (plain I2C writes: the node has i2c-protocol), and everything read back
with read(). The C driver's queue is LIFO (a known defect), so the comparison is of the
frames' bytes, not of their order.
"""

import os

import lib
import peer
from lib import eq, frame, with_len
from peer import BURST, ECHO, OEM

C_DRIVER = "ipmb-dev"


def traffic(inst, count, dlen):
    """A burst request by write() and every frame that follows, then an echo request by write()
    and its response: what read() returns, in the order it returns it.

    Nothing is written while the burst is on the wire (QEMU's bus has no arbitration).
    """
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, with_len(frame(peer.PEER, OEM, peer.OWN, 1, BURST,
                                    peer.burst_request_data(count, dlen=dlen))))
        got = [lib.read_wait(fd, peer.TIMEOUT_MS) for _ in range(count + 1)]
        os.write(fd, with_len(frame(peer.PEER, OEM, peer.OWN, 2, ECHO, b"end")))
        got.append(lib.read_wait(fd, peer.TIMEOUT_MS))
        eq(lib.queued_frames(fd), [], f"frames past the expected {count + 2}")
        return got
    finally:
        os.close(fd)


def swap(inst, old, new):
    """Unbinds the client from module `old`, unloads it, and loads `new`, which binds it."""
    inst.unbind()
    lib.rmmod(old)
    lib.insmod(new)
    eq(inst.driver(), {"ipmb": "ipmb", "ipmb_dev_int": C_DRIVER}[new],
       f"driver of {inst.client} after loading {new}")


@lib.machines("ast2600-evb")
def test_same_bytes_as_ipmb_dev_int():
    count, dlen = 40, 12
    inst = peer.setup()
    ours = traffic(inst, count, dlen)
    swap(inst, "ipmb", "ipmb_dev_int")
    theirs = traffic(inst, count, dlen)
    swap(inst, "ipmb_dev_int", "ipmb")
    again = traffic(inst, count, dlen)
    expected = ([with_len(frame(peer.OWN, OEM | 1, peer.PEER, 1, BURST, b"\x00"))]
                + [with_len(peer.burst_frame(i, dlen)) for i in range(count)]
                + [with_len(frame(peer.OWN, OEM | 1, peer.PEER, 2, ECHO, b"\x00end"))])
    eq(ours, expected, "ipmb.ko read(), in arrival order")
    eq(sorted(theirs), sorted(ours), "ipmb_dev_int read() against ipmb.ko, as sets of frames")
    eq(again, ours, "ipmb.ko read() after swapping back")


test_same_bytes_as_ipmb_dev_int.timeout = 60
