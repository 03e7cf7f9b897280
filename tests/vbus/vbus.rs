// SPDX-License-Identifier: GPL-2.0

//! A virtual I2C bus with target (slave) mode, for testing I2C target backends such as IPMB.
//!
//! At load it registers `nr_adapters` I2C adapters named `ipmb-vbus-<N>`, all joined to one
//! shared wire. A target (`i2c_slave_register`) on one adapter receives, in hard-IRQ context,
//! the events of the master transfers that other adapters address to it, and of their
//! general-call writes (to address 0), which reach every target on the other adapters (see
//! [`wire`]). Module parameters,
//! writable at run time, inject faults (NAK, arbitration loss, lost STOP, corrupted byte),
//! delay the delivery, and pace it at a wire clock rate.

/// The module's own local abstractions, by path: only the IRQ-saving spinlock.
#[path = "../../rust/abstractions"]
mod abstractions {
    pub(crate) mod irq_lock;
}

mod adapter;
mod param;
mod wire;

use kernel::prelude::*;
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

/// The module: a wire and its registered adapters.
///
/// # Invariants
///
/// Adapters `0..registered` of `wire` are registered with the I2C core.
struct VBus {
    wire: Pin<KBox<Wire>>,
    registered: usize,
}

impl kernel::Module for VBus {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let count = usize::try_from(NR_ADAPTERS.get()).map_err(|_| EINVAL)?;
        let wire = KBox::pin_init(Wire::new(), GFP_KERNEL)?;
        // INVARIANT: No adapter is registered yet.
        let mut this = Self {
            wire,
            registered: 0,
        };
        for index in 0..count {
            // SAFETY: Adapter `index` was never added; `Drop` deletes it before the wire is
            // freed.
            unsafe { this.wire.as_ref().add_adapter(index, module) }?;
            // INVARIANT: Adapter `index` is now registered, after `0..index`.
            this.registered = index + 1;
        }
        pr_info!("{} adapters on one wire\n", count);
        Ok(this)
    }
}

impl Drop for VBus {
    fn drop(&mut self) {
        // Newest first. Deleting an adapter removes its clients, whose drivers unregister
        // their targets: no delivery reaches them afterwards.
        for index in (0..self.registered).rev() {
            // SAFETY: By the type invariants adapter `index` is registered; it is deleted once.
            unsafe { self.wire.del_adapter(index) };
        }
    }
}
