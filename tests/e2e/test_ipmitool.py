# SPDX-License-Identifier: GPL-2.0
"""ipmitool (Debian), a client nobody on this project wrote, through the kernel's own IPMI stack.

ipmi_msghandler (built in), ipmi_devintf (/dev/ipmiN) and ipmi_ipmb, an `ipmi-ipmb` client at
0x72 on adapter 0; the BMC it talks to is ipmb.ko at 0x20 on adapter 1 with
samples/ipmb-responder. The commands are the ones README.md gives under "Using it with ...".
"""

import glob
import re
import subprocess
import time

import lib
from clients import Responder, diag
from lib import BMC, SAT, eq


class IpmiIpmb:
    """An `ipmi-ipmb` client at 8-bit address `addr` on adapter `nr` (deleted by cleanup)."""

    def __init__(self, nr, addr):
        self.nr, self.addr = nr, addr
        self.client = f"{nr}-{lib.OWN_SLAVE | (addr >> 1):04x}"
        before = set(glob.glob("/dev/ipmi[0-9]*"))
        start = time.monotonic()
        with open(f"/sys/bus/i2c/devices/i2c-{nr}/new_device", "w") as f:
            f.write(f"ipmi-ipmb 0x{lib.OWN_SLAVE | (addr >> 1):x}")
        lib._instances.append(self)
        new = lib.wait_for(lambda: set(glob.glob("/dev/ipmi[0-9]*")) - before, "/dev/ipmiN",
                           timeout=30)
        self.probe_secs = round(time.monotonic() - start, 1)
        self.num = int(min(new)[len("/dev/ipmi"):])

    def delete(self):
        with open(f"/sys/bus/i2c/devices/i2c-{self.nr}/delete_device", "w") as f:
            f.write(f"0x{lib.OWN_SLAVE | (self.addr >> 1):x}")


def ipmitool_bus():
    """ipmb.ko at 0x20 on adapter 1 (the BMC), ipmi_ipmb's client at 0x72 on adapter 0."""
    a0, a1 = lib.vbus(2)
    lib.insmod("ipmb")
    bmc = lib.Instance(a1, BMC)
    return a0, bmc


def ipmitool(host, *args):
    """ipmitool -I open -d N ARGS: (exit status, stdout, stderr, seconds)."""
    start = time.monotonic()
    p = subprocess.run(["ipmitool", "-I", "open", "-d", str(host.num), *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - start


def with_ipmitool(*args):
    """Runs one ipmitool command against samples/ipmb-responder behind ipmb.ko.

    ipmi_msghandler's probe and ipmitool's own start (PICMG and VITA discovery) send commands
    the responder may not implement: each one it leaves unanswered costs ipmi_ipmb's timeout
    and retries, so the run is slow unless the responder answers 0xc1 to those (hence the
    tests' time limits)."""
    a0, bmc = ipmitool_bus()
    with Responder(bmc):
        lib.insmod("ipmi_devintf")
        lib.insmod("ipmi_ipmb")
        host = IpmiIpmb(a0, SAT)
        rc, out, err, secs = ipmitool(host, *args)
        diag(f"ipmi_ipmb probe (new_device to /dev/ipmi{host.num}) {host.probe_secs} s, "
             f"ipmitool {' '.join(args)} {secs:.1f} s")
        return rc, out, err, secs


def test_mc_info():
    rc, out, err, _ = with_ipmitool("mc", "info")
    eq(rc, 0, f"ipmitool mc info exit status ({err.strip()})")
    fields = dict(re.findall(r"^(Device ID|Firmware Revision|IPMI Version|Manufacturer ID|"
                             r"Product ID)\s*: (\S+)", out, re.M))
    eq(fields, {"Device ID": "32", "Firmware Revision": "1.23", "IPMI Version": "2.0",
                "Manufacturer ID": "674", "Product ID": "1"}, "ipmitool mc info fields")


test_mc_info.timeout = 150


def test_raw_get_device_id():
    rc, out, err, _ = with_ipmitool("raw", "0x06", "0x01")
    eq((rc, out.split()), (0, "20 01 01 23 02 00 a2 02 00 01 00".split()),
       f"ipmitool raw 0x06 0x01 ({err.strip()})")


test_raw_get_device_id.timeout = 150


def test_mc_selftest():
    rc, out, err, _ = with_ipmitool("mc", "selftest")
    eq((rc, out.strip()), (0, "Selftest: passed"), f"ipmitool mc selftest ({err.strip()})")


test_mc_selftest.timeout = 150


def test_unimplemented_command_0xc1_promptly():
    """Get System GUID (App 0x37), which samples/ipmb-responder does not implement: answered
    0xc1 (invalid command) by the responder, not left to ipmi_ipmb's timeout (0xc3). The time
    is printed, not asserted: ipmitool's own run (start, PICMG/VITA discovery) takes 20 s and
    more in a loaded TCG guest, far more than either completion code."""
    rc, out, err, secs = with_ipmitool("raw", "0x06", "0x37")
    diag(f"ipmitool raw 0x06 0x37: exit status {rc}, {secs:.2f} s: {err.strip()}")
    eq((rc, re.findall(r"rsp=(0x[0-9a-f]+)", err)), (1, ["0xc1"]),
       "ipmitool raw 0x06 0x37: (exit status, completion code)")


test_unimplemented_command_0xc1_promptly.timeout = 150
