// SPDX-License-Identifier: GPL-2.0

//! Flushing a delayed work item, which the 7.2 `kernel::workqueue` does not offer.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use kernel::{
    bindings,
    workqueue::DelayedWork, //
};

/// Waits until `work` is neither pending nor running (`flush_delayed_work`).
///
/// A pending work item is queued at once and waited for, so the caller must make sure it does
/// not re-arm itself if it is to stay idle afterwards.
pub(crate) fn flush_delayed_work<T: ?Sized, const ID: u64>(work: &DelayedWork<T, ID>) {
    // SAFETY: `work` is an initialised delayed work item (a `DelayedWork` is only ever built
    // in place, pinned). `raw_as_work` returns the address of its `work`, the first member of
    // `struct delayed_work`, so the cast gives the `delayed_work` itself.
    unsafe {
        let work = DelayedWork::raw_as_work(core::ptr::from_ref(work));
        bindings::flush_delayed_work(work.cast::<bindings::delayed_work>());
    }
}
