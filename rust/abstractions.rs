// SPDX-License-Identifier: GPL-2.0

//! Local abstractions over C APIs that the 7.2 `kernel` crate lacks.
//!
//! Every `unsafe` block and raw `kernel::bindings` call of the driver is in this folder. Each
//! file is shaped like the `kernel` crate's own API for its subsystem, with documented safety
//! requirements, so that it could be proposed upstream as one patch; the rest of the driver
//! reads as safe Rust on top of them. Do not call `bindings` from outside this folder.

pub(crate) mod i2c;
pub(crate) mod i2c_target;
pub(crate) mod irq_lock;
pub(crate) mod miscdev;
pub(crate) mod sysfs;
pub(crate) mod workqueue;
