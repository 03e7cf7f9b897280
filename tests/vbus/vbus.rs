// SPDX-License-Identifier: GPL-2.0

//! A virtual I2C bus with target (slave) mode, for testing I2C target backends such as IPMB.
//!
//! At load it registers `nr_adapters` I2C adapters named `ipmb-vbus-<N>`, all joined to one
//! shared wire. A target (`i2c_slave_register`) on one adapter receives, in hard-IRQ context,
//! the events of the master transfers that other adapters address to it, and of their
//! general-call writes (to address 0), which reach every target on the other adapters (see
//! [`wire`]). Module parameters,
//! writable at run time, inject faults (NAK, arbitration loss, lost STOP, corrupted byte),
//! delay the delivery, and pace it at a wire clock rate; [`fault`] injects them at random and
//! counts the frames each target received. Others make an adapter refuse target
//! registration, and, at load, make one `ipmb-dev` client described by firmware properties
//! ([`fwnode`]).

/// The module's own local abstractions, by path: only the IRQ-saving spinlock.
#[path = "../../rust/abstractions"]
mod abstractions {
    pub(crate) mod irq_lock;
}

mod adapter;
mod fault;
mod fwnode;
mod load;
mod param;
mod wire;

use fwnode::{
    FwClient,
    Props, //
};
use kernel::prelude::*;
use param::module_param_int;
use wire::{
    Wire,
    NR_ADAPTERS, //
};

module! {
    type: VBus,
    name: "i2c_vbus",
    authors: ["The ipmb developers"],
    description: "Virtual I2C bus with target mode and fault injection, for tests",
    license: "GPL v2",
}

module_param_int! {
    /// Index of the adapter that gets the firmware-described `ipmb-dev` client, or -1.
    static FW_CLIENT: fw_client = -1, -1, 7, perm: 0o444,
        "At load: make an ipmb-dev client at 0x10 (0x20 in IPMB) on adapter N (0..7) from a software node; -1: none",
}

module_param_int! {
    /// Whether the software node of that client has the boolean `i2c-protocol`.
    static FW_I2C_PROTOCOL: fw_i2c_protocol = 0, 0, 1, perm: 0o444,
        "1: the fw_client node has the i2c-protocol property",
}

module_param_int! {
    /// The `max-frame-length` of that client's software node, or 0 for none.
    static FW_MAX_FRAME_LENGTH: fw_max_frame_length = 0, 0, 255, perm: 0o444,
        "If not 0: the fw_client node has max-frame-length = <N>",
}

/// The module: a wire, its registered adapters, and the firmware-described client.
///
/// # Invariants
///
/// Adapters `0..registered` of `wire` are registered with the I2C core, and `fw` is on one of
/// them.
struct VBus {
    /// The load source's debugfs files (`load`), removed before anything else.
    load: Option<load::Load>,
    wire: Pin<KBox<Wire>>,
    registered: usize,
    fw: Option<FwClient>,
}

impl kernel::Module for VBus {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let count = usize::try_from(NR_ADAPTERS.get()).map_err(|_| EINVAL)?;
        let wire = KBox::pin_init(Wire::new(), GFP_KERNEL)?;
        // INVARIANT: No adapter is registered yet.
        let mut this = Self {
            load: None,
            wire,
            registered: 0,
            fw: None,
        };
        for index in 0..count {
            // SAFETY: Adapter `index` was never added; `Drop` deletes it before the wire is
            // freed.
            unsafe { this.wire.as_ref().add_adapter(index, module) }?;
            // INVARIANT: Adapter `index` is now registered, after `0..index`.
            this.registered = index + 1;
        }
        if let Ok(index) = usize::try_from(FW_CLIENT.get()) {
            if index >= count {
                return Err(EINVAL);
            }
            let adap = this.wire.adapter(index).ok_or(EINVAL)?;
            let props = Props {
                i2c_protocol: FW_I2C_PROTOCOL.get() != 0,
                max_frame_length: u32::try_from(FW_MAX_FRAME_LENGTH.get()).unwrap_or(0),
            };
            // SAFETY: Adapter `index` is registered; `Drop` unregisters the client before it
            // deletes the adapters.
            // INVARIANT: the client is on adapter `index < registered`.
            this.fw = Some(unsafe { FwClient::new(adap, &props) }?);
        }
        // SAFETY: The wire is pinned in `this`, whose `Drop` drops `load` first.
        this.load = Some(unsafe { load::Load::new(this.wire.as_ref()) }?);
        pr_info!("{} adapters on one wire\n", count);
        Ok(this)
    }
}

impl Drop for VBus {
    fn drop(&mut self) {
        // No load runs once its files are gone.
        drop(self.load.take());
        // Before its adapter goes, which would unregister it too.
        drop(self.fw.take());
        // Newest first. Deleting an adapter removes its clients, whose drivers unregister
        // their targets: no delivery reaches them afterwards.
        for index in (0..self.registered).rev() {
            // SAFETY: By the type invariants adapter `index` is registered; it is deleted once.
            unsafe { self.wire.del_adapter(index) };
        }
    }
}
