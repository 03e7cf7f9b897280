// SPDX-License-Identifier: GPL-2.0

//! IPMB endpoint for a BMC: an I2C target backend with `/dev/ipmb-N` character devices.
//!
//! See `Documentation/ipmb.rst` for the user-facing description.

mod assembler;
mod driver;
mod frame;
mod irq_lock;
mod miscdev;
mod ring;
mod stats;
mod sysfs;
mod target;
mod uapi;

kernel::module_i2c_driver! {
    type: driver::IpmbDriver,
    name: "ipmb",
    authors: ["The ipmb developers"],
    description: "IPMB endpoint (I2C target backend, /dev/ipmb-N)",
    license: "GPL v2",
    params: {
        max_frame_len: u32 {
            default: 32,
            description: "Longest accepted frame in bytes, address included (8..240; IPMB: 32)",
        },
        queue_len: u32 {
            default: 256,
            description: "Receive queue capacity in frames per device (1..4096)",
        },
        smbus_block_write: u32 {
            default: 0,
            description: "1: send SMBus block writes like ipmb_dev_int without i2c-protocol (not IPMB on the wire)",
        },
        tx_retries: u32 {
            default: 3,
            description: "Retries of a write() after a NAK or an arbitration loss",
        },
    },
}
