// SPDX-License-Identifier: GPL-2.0

//! IPMB endpoint for a BMC: an I2C target backend with `/dev/ipmb-N` character devices.
//!
//! See `Documentation/ipmb.rst` for the user-facing description.

use kernel::prelude::*;

mod assembler;
mod frame;

module! {
    type: IpmbModule,
    name: "ipmb",
    authors: ["The ipmb developers"],
    description: "IPMB endpoint (I2C target backend, /dev/ipmb-N)",
    license: "GPL v2",
}

struct IpmbModule;

impl kernel::Module for IpmbModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "loaded: frames of {}..{} bytes\n",
            frame::MIN_REQUEST_LEN,
            frame::SPEC_MAX_LEN
        );
        Ok(IpmbModule)
    }
}
