// SPDX-License-Identifier: GPL-2.0

//! Host build of the module's core-only protocol files.
//!
//! The files are the module's own (`rust/*.rs`), included by path: their `#[test]` cases run
//! here under `cargo test` and as KUnit suites inside the module.

#![no_std]
#![deny(warnings)]
// The items are `pub(crate)` for the module; outside tests nothing here calls them.
#![cfg_attr(not(test), allow(dead_code))]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/frame.rs"]
pub mod frame;

#[path = "../../../rust/assembler.rs"]
pub mod assembler;

#[path = "../../../rust/ring.rs"]
pub mod ring;

#[path = "../../../rust/stats.rs"]
pub mod stats;
