// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/ipmb-N`: Rust mirrors of `include/uapi/linux/ipmb.h`.
//!
//! This file uses only `core`: the host test crate compiles it too, and checks every size,
//! offset and ioctl number against the C header compiled by the C compiler (64- and 32-bit).
//! The compile-time assertions below pin the layouts: no implicit padding anywhere.

use core::mem::{
    offset_of,
    size_of, //
};

/// `IPMB_ABI_VERSION`.
pub(crate) const ABI_VERSION: u32 = 1;
/// `IPMB_IOC_MAGIC`.
pub(crate) const IOC_MAGIC: u32 = 0xBB;

/// `_IOC_READ`, as in `include/uapi/asm-generic/ioctl.h` (x86, arm, arm64, riscv).
const IOC_READ: u32 = 2;

/// `_IOR(type, nr, size)`.
const fn ior(nr: u32, size: usize) -> u32 {
    (IOC_READ << 30) | ((size as u32) << 16) | (IOC_MAGIC << 8) | nr
}

/// `struct ipmb_info`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Info {
    pub(crate) abi_version: u32,
    pub(crate) adapter: u32,
    pub(crate) own_addr: u8,
    pub(crate) smbus_block_write: u8,
    pub(crate) max_frame_len: u16,
    pub(crate) queue_len: u32,
    pub(crate) tx_retries: u32,
    pub(crate) reserved: [u32; 5],
}

/// `struct ipmb_stats`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Stats {
    /// The counters, in the order of [`crate::stats::NAMES`].
    pub(crate) counters: [u64; 11],
    pub(crate) rx_queued: u64,
    pub(crate) reserved: [u64; 4],
}

/// `IPMB_IOC_INFO`.
pub(crate) const IOC_INFO: u32 = ior(0x00, size_of::<Info>());
/// `IPMB_IOC_STATS`.
pub(crate) const IOC_STATS: u32 = ior(0x01, size_of::<Stats>());

// The layouts, field by field: the sum of the field sizes equals the size, so there is no
// padding, and the offsets are those of the C header.
const _: () = {
    assert!(size_of::<Info>() == 40);
    assert!(offset_of!(Info, adapter) == 4);
    assert!(offset_of!(Info, own_addr) == 8);
    assert!(offset_of!(Info, smbus_block_write) == 9);
    assert!(offset_of!(Info, max_frame_len) == 10);
    assert!(offset_of!(Info, queue_len) == 12);
    assert!(offset_of!(Info, tx_retries) == 16);
    assert!(offset_of!(Info, reserved) == 20);
    assert!(size_of::<Stats>() == 16 * 8);
    assert!(offset_of!(Stats, rx_queued) == 11 * 8);
    assert!(offset_of!(Stats, reserved) == 12 * 8);
    assert!(crate::stats::NAMES.len() == 11);
};
