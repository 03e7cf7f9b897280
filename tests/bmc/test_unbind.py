# SPDX-License-Identifier: GPL-2.0
"""Unbinding the DT client and unloading ipmb.ko with files open and a reader blocked.

The client stays (the device tree made it); unbinding goes through
/sys/bus/i2c/drivers/ipmb/unbind as an administrator would. Any warning, lockdep report or
leak this provokes fails the run through the harness's kernel log check.
"""

import errno
import os
import threading
import time

import lib
import peer
from lib import eq, true, with_len
from peer import APP, GET_DEVICE_ID


class Reader(threading.Thread):
    """A blocking read() on fd, in a thread: `result` is the bytes read or the errno."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd, self.result = fd, None

    def run(self):
        try:
            self.result = os.read(self.fd, 256)
        except OSError as e:
            self.result = e.errno

    def blocked(self):
        self.start()
        time.sleep(0.5)
        true(self.is_alive(), f"reader blocked in read() (returned {self.result!r})")
        return self


@lib.machines("ast2600-evb")
def test_unbind_wakes_blocked_reader_with_enodev():
    inst = peer.setup()
    fb, fp = inst.open(), inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        r = Reader(fb).blocked()
        inst.unbind()
        r.join(5)
        true(not r.is_alive(), "reader still blocked 5 s after unbind")
        eq(r.result, errno.ENODEV, "the blocked read() after unbind")
        true(not os.path.exists(inst.dev), f"{inst.dev} left after unbind")
        lib.raises(errno.ENODEV, os.read, fp, 256)
    finally:
        lib.closing(fb, fp)


test_unbind_wakes_blocked_reader_with_enodev.timeout = 30


@lib.machines("ast2600-evb")
def test_rmmod_refused_while_reader_blocked():
    inst = peer.setup()
    fb, fq = inst.open(), inst.open()
    try:
        r = Reader(fb).blocked()
        res = lib.rmmod("ipmb", check=False)
        eq((res.returncode, res.stderr), (1, os.strerror(errno.EAGAIN)),
           "rmmod with files open (returncode, error)")
        eq((lib.loaded("ipmb"), inst.driver()), (True, "ipmb"), "module loaded, client bound")
        # The reader is still served: the next frame from the peer reaches it.
        peer.burst(inst, fq, 1)
        r.join(peer.TIMEOUT_MS / 1000)
        eq(r.result, with_len(peer.burst_frame(0)), "what the blocked reader got")
    finally:
        lib.closing(fb, fq)
    lib.rmmod("ipmb")
    eq((os.path.exists(inst.dev), inst.driver()), (False, None),
       f"{inst.dev} and the client's driver after rmmod")


test_rmmod_refused_while_reader_blocked.timeout = 30


@lib.machines("ast2600-evb")
def test_rmmod_after_unbind_waits_for_last_close():
    inst = peer.setup()
    fd = inst.open()
    try:
        inst.unbind()
        eq(lib.rmmod("ipmb", check=False).returncode, 1, "rmmod with an unbound file open")
        lib.raises(errno.ENODEV, os.read, fd, 256)
    finally:
        os.close(fd)
    lib.rmmod("ipmb")
    true(not lib.loaded("ipmb"), "ipmb still loaded after the last close")


test_rmmod_after_unbind_waits_for_last_close.timeout = 30


@lib.machines("ast2600-evb")
def test_bind_again_after_unbind():
    inst = peer.setup()
    inst.unbind()
    inst.rebind("ipmb")
    fd = inst.open()
    try:
        rsp = peer.request(fd, APP, GET_DEVICE_ID)
        peer.answered(rsp, peer.CC_OK, peer.DEVICE_ID, "Get Device ID after bind")
    finally:
        os.close(fd)


test_bind_again_after_unbind.timeout = 30
