# SPDX-License-Identifier: GPL-2.0
"""A probe that fails leaves nothing behind: ipmb on an adapter that refuses target mode.

The virtual bus's `refuse_target` makes adapter 0's `reg_slave` fail with EOPNOTSUPP, as an
adapter without target support would; `reg_delay_ms` makes each registration take that long
before it fails, so that whatever a probe made public before it registers the target stays
public for that long.
"""

import errno
import os
import re
import time

import lib
from lib import BMC, SAT, eq, frame, true, with_len

REG_DELAY_MS = 20


def refusing_bus(delay_ms=0):
    """Two adapters on the wire, the first refusing target registration; ipmb.ko loaded."""
    a0, a1 = lib.vbus(2)
    lib.vbus_param("refuse_target", 1)
    lib.vbus_param("reg_delay_ms", delay_ms)
    lib.insmod("ipmb")
    return a0, a1


class KernelLog:
    """The kernel log records written after it is made (read from /dev/kmsg)."""

    def __init__(self):
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def lines(self):
        out = []
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.EPIPE:  # records overwritten: go on with the next
                    continue
                raise
            # "prio,seq,usec,flags;message\n" followed by continuation lines.
            out.append(rec.decode(errors="replace").split(";", 1)[1].split("\n", 1)[0])

    def close(self):
        os.close(self.fd)


def test_refused_target_leaves_client_unbound_without_device():
    a0, _ = refusing_bus()
    # new_device succeeds whatever the probe does: the I2C core keeps the client, unbound.
    inst = lib.Instance(a0, BMC, driver=None)
    left = {
        "driver": inst.driver(),
        "device node": os.path.exists(inst.dev),
        "misc class device": os.path.exists(f"/sys/class/misc/ipmb-{a0}"),
        "statistics group": os.path.exists(os.path.join(inst.path, "statistics")),
    }
    eq(left, {"driver": None, "device node": False, "misc class device": False,
              "statistics group": False}, f"what the failed probe of {inst.client} left")


def test_refused_target_logged_by_the_driver():
    a0, _ = refusing_bus()
    log = KernelLog()
    try:
        inst = lib.Instance(a0, BMC, driver=None)
        lines = log.lines()
    finally:
        log.close()
    # The driver's own line, besides the I2C core's ("i2c_slave_register: adapter returned
    # error -95") and the driver core's ("probe with driver ipmb failed with error -95").
    ours = [line for line in lines
            if re.match(rf"ipmb {inst.client}: adapter {a0}: .*target.*-95\b", line)]
    true(len(ours) == 1, f"one line 'ipmb {inst.client}: adapter {a0}: ...target...-95' "
                         f"in the kernel log; got {lines}")


def test_no_open_while_probes_fail():
    """Probes on the refusing adapter, in a loop, while another process keeps opening
    /dev/ipmb-N: no open succeeds. A file opened while a probe fails would keep the client
    pointer of a device that is not bound (writes on it reach the bus), and after the client
    is deleted, a freed one (KASAN reports the writes at the end)."""
    a0, a1 = refusing_bus(REG_DELAY_MS)
    sat = lib.Instance(a1, SAT)
    dev = f"/dev/ipmb-{a0}"
    request = with_len(frame(SAT, 0x06, BMC, 1, 0x01))
    go, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        # The opener: opens until told to stop, writes once on each file it got, keeps them.
        code = 1
        try:
            os.close(go[1])
            os.close(done[0])
            fds = []
            sent = 0
            while not lib.poll_for(go[0], 1, 0):
                try:
                    fd = os.open(dev, os.O_RDWR | os.O_NONBLOCK)
                except OSError:
                    continue
                fds.append(fd)
                try:
                    os.write(fd, request)
                    sent += 1
                except OSError:
                    pass
            os.read(go[0], 1)
            os.write(done[1], f"{len(fds)} {sent}\n".encode())
            # The clients are gone now: write again on every file opened meanwhile.
            os.read(go[0], 1)
            for fd in fds:
                try:
                    os.write(fd, request)
                except OSError:
                    pass
            code = 0
        finally:
            os._exit(code)
    os.close(go[0])
    os.close(done[1])
    try:
        probes = 0
        end = time.monotonic() + 3
        while time.monotonic() < end:
            inst = lib.Instance(a0, BMC, driver=None)
            inst.delete()
            probes += 1
        os.write(go[1], b"s")
        opened, sent = map(int, os.read(done[0], 64).split())
        # Let the opener write on what it kept, now that every client it saw was deleted.
        os.write(go[1], b"w")
        _, status = os.waitpid(pid, 0)
        pid = None
        eq(status, 0, "opener process exit status")
        eq(opened, 0, f"opens of {dev} that succeeded during {probes} failing probes "
                      f"({sent} writes on them were sent)")
    finally:
        os.close(go[1])
        os.close(done[0])
        if pid is not None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)


test_no_open_while_probes_fail.timeout = 60
