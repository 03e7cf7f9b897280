# SPDX-License-Identifier: GPL-2.0
"""The firmware contract of the ipmb-dev binding, and the 32-byte IPMB limit as an opt-in.

A client described by firmware (here a software node the virtual bus makes: the properties a
device tree node would have) follows the binding: without `i2c-protocol`, write() sends SMBus
block writes; with it, plain I2C writes (IPMB on the wire). A client made through sysfs
`new_device` has no firmware description: it writes plain I2C. The wire is observed at an
ipmb.ko receiver on the other adapter: an SMBus block write puts a count byte where the
receiver expects the header checksum, so it drops the frame as rx_bad_cs1.
"""

import os

import ipmbabi as abi
import lib
from lib import BMC, SAT, eq, frame, with_len

RESPONSE = frame(SAT, 0x07, BMC, 1, 0x01, b"\x00\x11")


def fw_node(**props):
    """ipmb.ko bound to a client from firmware properties on adapter 0, and a receiver."""
    a0, a1 = lib.vbus(2, fw_client=0, **props)
    lib.insmod("ipmb")
    return lib.Instance(a0, BMC, driver=None, new=False), lib.Instance(a1, SAT)


def on_the_wire(inst, rx):
    """Writes RESPONSE on `inst`: (the SMBus flag of INFO, what `rx` read, its rx_bad_cs1)."""
    fd = inst.open()
    rfd = rx.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(fd, with_len(RESPONSE))
        return (abi.info(fd)["smbus_block_write"], lib.queued_frames(rfd),
                rx.counters()["rx_bad_cs1"])
    finally:
        os.close(fd)
        os.close(rfd)


def test_fw_node_without_i2c_protocol_sends_smbus_block_writes():
    inst, rx = fw_node(fw_i2c_protocol=0)
    eq(on_the_wire(inst, rx), (1, [], 1), "(INFO smbus_block_write, frames read, rx_bad_cs1)")


def test_fw_node_with_i2c_protocol_sends_plain_i2c():
    inst, rx = fw_node(fw_i2c_protocol=1)
    eq(on_the_wire(inst, rx), (0, [with_len(RESPONSE)], 0),
       "(INFO smbus_block_write, frames read, rx_bad_cs1)")


def test_new_device_sends_plain_i2c():
    inst, rx = lib.two_nodes()
    eq(on_the_wire(inst, rx), (0, [with_len(RESPONSE)], 0),
       "(INFO smbus_block_write, frames read, rx_bad_cs1)")


def ipmb_limit(inst, rx):
    """Sends a 32- and a 33-byte frame to `inst` from `rx`'s adapter: (max_frame_len, whether
    the 33-byte one was refused with a NAK, what read() got, the 32-byte frame)."""
    f32 = frame(BMC, 0x07, SAT, 1, 0x01, bytes(range(25)))
    f33 = frame(BMC, 0x07, SAT, 2, 0x01, bytes(range(26)))
    fd = inst.open(os.O_RDWR | os.O_NONBLOCK)
    try:
        lib.send_raw(rx.nr, f32)
        try:
            lib.send_raw(rx.nr, f33)
            nak = False
        except OSError:
            nak = True
        return abi.info(fd)["max_frame_len"], nak, lib.queued_frames(fd), f32
    finally:
        os.close(fd)


def test_max_frame_length_32_from_firmware():
    inst, rx = fw_node(fw_i2c_protocol=1, fw_max_frame_length=32)
    max_len, nak, got, f32 = ipmb_limit(inst, rx)
    eq((max_len, nak, got), (32, True, [with_len(f32)]),
       "(max_frame_len, 33-byte frame NAKed, frames read)")


def test_max_frame_len_32_parameter():
    inst, rx = lib.two_nodes("max_frame_len=32")
    max_len, nak, got, f32 = ipmb_limit(inst, rx)
    eq((max_len, nak, got), (32, True, [with_len(f32)]),
       "(max_frame_len, 33-byte frame NAKed, frames read)")
