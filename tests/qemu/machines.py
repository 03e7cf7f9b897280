# SPDX-License-Identifier: GPL-2.0
"""The machines tests/qemu/run.py boots, and what the harness and the tests need to know of them.

x86_64 is the test guest with the virtual I2C bus (tests/vbus); the Aspeed machines are QEMU's
AST2600 boards, where the driver runs on the real i2c-aspeed controller and the QEMU IPMB peer
(tests/bmc/qemu, "-device ipmb-peer") answers on one bus. Facts checked against QEMU 10.0.2
(hw/arm/aspeed.c) and the Linux 7.2 device trees:

  - the first -serial is the machine's default UART, uart5 on both boards (ttyS4: the DTs
    alias serial4 = &uart5; bletchley's chosen/bootargs say console=ttyS4,57600n8). A second
    -serial would be uart1, which both DTs leave disabled: the e2e results travel on the
    console instead, as records written to /dev/kmsg with the RESULTS_PREFIX (one record, one
    console line: no interleaving with kernel messages).
  - ast2600-evb (1 GiB by default): QEMU puts an EEPROM at 0x50 on bus 7 and a TMP105 at 0x4d
    on bus 8, nothing on buses 3, 4, 5, 6, 9, which the evb DT enables.
  - bletchley-bmc (2 GiB by default): the board's DT has one ipmb-dev node, ipmb13@10 on i2c13
    (multi-master, i2c-protocol), its "USB debug connector"; QEMU creates no device on bus 13.
"""

from collections import namedtuple

# One ipmb-dev node of the machine's device tree: I2C bus (adapter) number, 7-bit address,
# the optional properties it sets (True for a boolean property).
Node = namedtuple("Node", "bus addr props")

# name: what run.py --machine and the guest (IPMB_MACHINE, runner.py --machine) call it
# arch: kernel ARCH, and which $IPMB_CACHE/env* describes its kernel
# qemu: QEMU -M; console: the kernel console device
# dts: a DTS of ours to build (relative to the repository), or None
# dtb: a DTB of the kernel build (relative to arch/arm/boot/dts), or None
# peer: (bus, 7-bit address) of -device ipmb-peer, or None
# nodes: the ipmb-dev nodes of the device tree; the first is on the peer's bus
Machine = namedtuple("Machine", "name arch qemu console dts dtb peer nodes")

MACHINES = {
    "x86_64": Machine("x86_64", "x86", "pc", "ttyS0", None, None, None, ()),
    "ast2600-evb": Machine(
        "ast2600-evb", "arm", "ast2600-evb", "ttyS4",
        "tests/bmc/dts/ast2600-evb-ipmb.dts", None, (3, 0x40),
        (Node(3, 0x10, {"i2c-protocol": True}),
         Node(4, 0x11, {"i2c-protocol": True, "max-frame-length": 32}),
         Node(5, 0x12, {"i2c-protocol": True, "retry-time": 500}),
         Node(6, 0x13, {"i2c-protocol": True, "max-retries": 7}),
         Node(9, 0x14, {}))),
    "bletchley-bmc": Machine(
        "bletchley-bmc", "arm", "bletchley-bmc", "ttyS4",
        None, "aspeed/aspeed-bmc-facebook-bletchley.dtb", (13, 0x40),
        (Node(13, 0x10, {"i2c-protocol": True}),)),
}

# run.py --machine x86 is the x86_64 guest.
ALIASES = {"x86": "x86_64"}

# Prefix of the e2e results (KTAP) on the console of the Aspeed guests.
RESULTS_PREFIX = "IPMB-E2E: "


def get(name):
    return MACHINES[ALIASES.get(name, name)]
