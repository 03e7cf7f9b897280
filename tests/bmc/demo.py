#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make demo MACHINE=<aspeed machine>`, inside the ARM guest: ipmb.ko on the AST2600's I2C.

The device tree instantiates an ipmb-dev client on the bus where QEMU's IPMB peer device sits
(tests/qemu/machines.py); loading ipmb.ko binds it and creates /dev/ipmb-N. samples/ipmb-raw
then asks the peer for its device ID and for an OEM echo through the request ioctl: the
frames cross the real i2c-aspeed driver (master writes out, target-mode interrupts in). The
instance's counters come from sysfs.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
import lib  # noqa: E402
import machines  # noqa: E402


def say(text=""):
    print(text, flush=True)


run = lib.run_sample


def main():
    lib.guest_main_args()
    machine = machines.get(os.environ["IPMB_MACHINE"])
    node = machine.nodes[0]
    peer_bus, peer_addr = machine.peer
    own, peer = node.addr << 1, peer_addr << 1
    model = lib.read("/proc/device-tree/model").rstrip("\0")

    say("=" * 72)
    say(f"ipmb demo on {model} (QEMU -M {machine.qemu}, Linux {os.uname().release}, "
        f"{os.uname().machine})")
    say("=" * 72)
    say(f"The device tree has an ipmb-dev node on i2c{node.bus} at 0x{node.addr:02x} "
        f"(IPMB 0x{own:02x}); QEMU's IPMB peer sits on the same bus at 0x{peer_addr:02x} "
        f"(IPMB 0x{peer:02x}).")
    say()
    say(f"$ insmod {lib.module_path('ipmb')}")
    lib.insmod("ipmb")
    inst = lib.Instance(node.bus, own, driver=None, new=False)
    lib.wait_for(lambda: os.path.exists(inst.dev), inst.dev)
    of_node = os.path.realpath(os.path.join(inst.path, "of_node"))
    say(f"  {inst.client} bound to '{inst.driver()}' -> {inst.dev} "
        f"(DT node {of_node.replace('/sys/firmware/devicetree/base', '') or '/'})")
    say()

    say("1. Get Device ID: the kernel builds the request (rqSA, seq, checksums), the")
    say("   i2c-aspeed controller masters it to the peer, the peer masters its response")
    say("   back to our target address, and the kernel matches it to the request.")
    run(["ipmb-raw", "-t", "2000", inst.dev, f"0x{peer:02x}", "0x06", "0x01"],
        "NetFn App, Get Device ID")
    say()
    say("2. An OEM command the peer echoes, and one it does not know:")
    run(["ipmb-raw", "-t", "2000", inst.dev, f"0x{peer:02x}", "0x30", "0x01",
         "0xde", "0xad", "0xbe", "0xef"], "NetFn OEM 0x30, echo")
    run(["ipmb-raw", "-t", "2000", inst.dev, f"0x{peer:02x}", "0x30", "0x7f"],
        "NetFn OEM 0x30, unknown command: 0xc1")
    say()

    c = inst.counters()
    say(f"3. The counters of the instance ({inst.path}/statistics/):")
    for k in sorted(c):
        say(f"    {k:18} {c[k]}")
    say()
    say("$ rmmod ipmb")
    lib.cleanup()
    say("Unloaded cleanly. Tests: make check.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
