// SPDX-License-Identifier: GPL-2.0

//! A byte buffer on the stack that is initialised only as far as it is used.
//!
//! `read()` copies a frame out through a buffer of the largest frame a device can take (248
//! bytes with its header), but most frames are IPMB's 32 bytes or less, and a `read()` that
//! finds nothing uses none of it. Zeroing the whole buffer on every call cost more than the
//! rest of the path; [`zeroed_prefix`] zeroes only the part a frame fills.

use core::mem::MaybeUninit;

/// Zeroes the first `len` bytes of `buf` (all of it if `len` is longer) and returns them.
///
/// At least `MIN` bytes are zeroed, a fixed count the compiler writes in line: short lengths,
/// the common case, then cost no call to `memset()`.
pub(crate) fn zeroed_prefix<const N: usize, const MIN: usize>(
    buf: &mut MaybeUninit<[u8; N]>,
    len: usize,
) -> &mut [u8] {
    const { assert!(MIN <= N) };
    let len = len.min(N);
    let p = buf.as_mut_ptr().cast::<u8>();
    if len <= MIN {
        // SAFETY: `p` points to `buf`, valid for writes of `N` bytes (`size_of::<[u8; N]>()`),
        // at least `MIN` (asserted above).
        unsafe { core::ptr::write_bytes(p, 0, MIN) };
    } else {
        // SAFETY: As above, and `len` is at most `N`.
        unsafe { core::ptr::write_bytes(p, 0, len) };
    }
    // SAFETY: The first `len` bytes of `buf` were initialised just above, and the slice
    // borrows `buf` mutably for as long as it lives, so nothing else accesses them.
    unsafe { core::slice::from_raw_parts_mut(p, len) }
}
