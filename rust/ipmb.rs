// SPDX-License-Identifier: GPL-2.0

//! IPMB endpoint for a BMC: an I2C target backend with `/dev/ipmb-N` character devices.
//!
//! See `Documentation/ipmb.rst` for the user-facing description, and `README.md` for where
//! each part of the driver lives.

mod abstractions;
mod chardev;
mod driver;
mod instance;
mod proto;
mod uapi;

kernel::module_i2c_driver! {
    type: driver::IpmbDriver,
    name: "ipmb",
    authors: ["The ipmb developers"],
    description: "IPMB endpoint (I2C target backend, /dev/ipmb-N)",
    license: "GPL v2",
    params: {
        max_frame_len: u32 {
            default: 239,
            description: "Longest frame in bytes, address included (8..240; default: ipmb_dev_int's write() limit; IPMB: 32)",
        },
        queue_len: u32 {
            default: 256,
            description: "Receive queue capacity in frames per device (1..4096)",
        },
        smbus_block_write: u32 {
            default: 0,
            description: "1: clients made through new_device send SMBus block writes, as ipmb_dev_int without i2c-protocol (not IPMB on the wire); firmware nodes follow i2c-protocol",
        },
        tx_retries: u32 {
            default: 3,
            description: "Resends of a frame after a NAK or an arbitration loss (0..15)",
        },
        req_timeout_ms: u32 {
            default: 250,
            description: "Default response timeout of a request per try, in ms (1..60000; DT: retry-time)",
        },
        req_retries: u32 {
            default: 3,
            description: "Default resends of a request after a response timeout (0..15; DT: max-retries)",
        },
    },
}
