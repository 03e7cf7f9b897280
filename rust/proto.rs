// SPDX-License-Identifier: GPL-2.0

//! The IPMB protocol, in `core` only: frames, the receive state machine, the frame queue, the
//! requester's seq table, the writers of `write()` requests and the counters.
//!
//! Nothing here sleeps, allocates or touches the kernel: the module compiles this folder with
//! its KUnit suites, and the host test crate (`tests/host`, `cargo test`, fuzzing) compiles
//! the same folder, with `rust/uapi.rs`, by path. Items refer to each other through
//! `crate::proto::...` or `super::...`, which both crates resolve.

pub(crate) mod assembler;
pub(crate) mod frame;
pub(crate) mod ring;
pub(crate) mod seqtab;
pub(crate) mod stats;
pub(crate) mod writers;
