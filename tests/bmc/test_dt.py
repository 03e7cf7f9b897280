# SPDX-License-Identifier: GPL-2.0
"""Instantiation from the device tree on the AST2600 machines, through the real i2c-aspeed.

On ast2600-evb, tests/bmc/dts/ast2600-evb-ipmb.dts adds an ipmb-dev node on the peer's bus
(i2c3, with i2c-protocol only, as every upstream board's node) and one node on each of a few
other buses, each differing from it in one property our driver reads (tests/qemu/machines.py
lists them). On bletchley-bmc the board's own node (ipmb13@10 on i2c13) is used unchanged.
"""

import os
import stat

import ipmbabi as abi
import lib
import peer
from lib import eq, true

# The ipmb_info field each u32 property of a node sets.
FIELDS = {"max-frame-length": "max_frame_len", "retry-time": "req_timeout_ms",
          "max-retries": "req_retries"}
# The binding's switch: without it a node is in SMBus block-write mode.
I2C_PROTOCOL = "i2c-protocol"

# What a node with i2c-protocol and nothing else gets with ipmb.ko's default parameters.
DEFAULTS = dict(abi_version=abi.ABI_VERSION, smbus_block_write=0,
                max_frame_len=239, queue_len=256, tx_retries=3, req_timeout_ms=250,
                req_retries=3)


def expected_info(props):
    """The ipmb_info fields a node with these properties gets (defaults for the rest)."""
    return dict(DEFAULTS, smbus_block_write=0 if props.get(I2C_PROTOCOL) else 1,
                **{FIELDS[p]: int(v) for p, v in props.items() if p in FIELDS})


def of_node(inst):
    """The device tree node of a client, or None if it was not made from one."""
    p = os.path.join(inst.path, "of_node")
    return os.path.realpath(p) if os.path.exists(p) else None


def of_prop(node, name):
    """A property of a device tree node: its raw bytes, or None if absent."""
    p = os.path.join(node, name)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()


def info_of(inst, fields):
    fd = os.open(f"/dev/ipmb-{inst.nr}", os.O_RDWR)
    try:
        i = abi.info(fd)
    finally:
        os.close(fd)
    return {k: i[k] for k in fields}


def check_bound_from_dt(inst, node_name):
    """The client came from DT node `node_name` and owns /dev/ipmb-N through ipmb.ko."""
    node = of_node(inst)
    true(node is not None, f"{inst.client} has no of_node: not instantiated from the DT")
    eq((os.path.basename(node), of_prop(node, "compatible")), (node_name, b"ipmb-dev\0"),
       f"DT node of {inst.client} (name, compatible)")
    eq(inst.driver(), "ipmb", f"driver of {inst.client}")
    dev = f"/dev/ipmb-{inst.nr}"
    true(os.path.exists(dev) and stat.S_ISCHR(os.stat(dev).st_mode), f"{dev} is a char device")
    eq(os.path.realpath(f"/sys/class/misc/ipmb-{inst.nr}/device"), os.path.realpath(inst.path),
       f"parent device of {dev}")
    eq(info_of(inst, ("adapter", "own_addr")), dict(adapter=inst.nr, own_addr=peer.OWN),
       f"IPMB_IOC_INFO adapter and own_addr of {dev}")


@lib.machines("ast2600-evb")
def test_evb_node_bound_from_dt():
    lib.insmod("ipmb")
    check_bound_from_dt(peer.node(driver=None), "ipmb@10")


test_evb_node_bound_from_dt.timeout = 30


@lib.machines("ast2600-evb")
def test_evb_info_shows_dt_properties():
    """Every ipmb-dev node of machines.py: IPMB_IOC_INFO gives its properties, else defaults;
    the node without i2c-protocol is in SMBus block-write mode, as the binding defines."""
    lib.insmod("ipmb")
    nodes = peer.machine().nodes
    eq(sorted({p for n in nodes for p in n.props}), sorted([*FIELDS, I2C_PROTOCOL]),
       "optional properties the nodes of machines.py cover")
    true(any(I2C_PROTOCOL not in n.props for n in nodes),
         "a node of machines.py without i2c-protocol")
    for n in nodes:
        inst = lib.Instance(n.bus, n.addr << 1, driver=None, new=False)
        node = of_node(inst)
        true(node is not None, f"{inst.client} not from the DT")
        live = {p: of_prop(node, p) for p in [*FIELDS, I2C_PROTOCOL]
                if of_prop(node, p) is not None}
        eq({p: True if v == b"" else int.from_bytes(v, "big") for p, v in live.items()},
           n.props, f"optional properties of {inst.client} in the live DT")
        eq(inst.driver(), "ipmb", f"driver of {inst.client}")
        expected = dict(expected_info(n.props), own_addr=n.addr << 1)
        eq(info_of(inst, expected), expected, f"IPMB_IOC_INFO of {inst.client} {n.props}")


test_evb_info_shows_dt_properties.timeout = 30


@lib.machines("bletchley-bmc")
def test_bletchley_board_node_bound():
    lib.insmod("ipmb")
    check_bound_from_dt(peer.node(driver=None), "ipmb13@10")


test_bletchley_board_node_bound.timeout = 30
