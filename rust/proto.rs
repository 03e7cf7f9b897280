// SPDX-License-Identifier: GPL-2.0

//! The IPMB protocol, in `core` only: frames, the receive state machine, the frame queue, the
//! requester's seq table, the writers of `write()` requests and the counters.
//!
//! Nothing here sleeps, allocates or touches the kernel: the module compiles this folder with
//! its KUnit suites, and the host test crate (`tests/host`, `cargo test`, fuzzing) compiles
//! the same folder, with `rust/uapi.rs`, by path. Items refer to each other through
//! `crate::proto::...` or `super::...`, which both crates resolve.

/// An empty `$t` (a table too large for a kernel stack: 8 KiB on 32-bit ARM) on the heap, or
/// the end of the test, counted as a failure, without memory.
#[cfg(any(test, CONFIG_KUNIT))]
macro_rules! heap_table {
    ($t:ty) => {{
        #[cfg(CONFIG_KUNIT)]
        let t = {
            use ::kernel::init::InPlaceInit;
            ::kernel::alloc::KVBox::init(
                ::pin_init::zeroed::<$t>(),
                ::kernel::alloc::flags::GFP_KERNEL,
            )
            .ok()
        };
        #[cfg(not(CONFIG_KUNIT))]
        let t = Some(std::boxed::Box::new(<$t>::new()));
        assert!(t.is_some());
        match t {
            Some(t) => t,
            None => return,
        }
    }};
}

pub(crate) mod assembler;
pub(crate) mod frame;
pub(crate) mod ring;
pub(crate) mod seqtab;
pub(crate) mod stats;
pub(crate) mod writers;
