// SPDX-License-Identifier: GPL-2.0

//! A workqueue the driver allocates and owns, and flushing one work item: neither is in the 7.2
//! `kernel::workqueue`, which offers only the system workqueues (and `system_wq` is deprecated:
//! queueing on it warns).
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use core::{
    ops::Deref,
    ptr::NonNull, //
};

use kernel::{
    bindings,
    prelude::*,
    workqueue::{
        Queue,
        Work, //
    },
};

/// A workqueue allocated with `alloc_workqueue`, destroyed (after it drained) when dropped.
///
/// It dereferences to [`Queue`], so work items are queued on it as on a system workqueue.
///
/// # Invariants
///
/// The pointer is a workqueue returned by `alloc_workqueue` and not yet destroyed.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: Every operation on a workqueue through `&Queue` is thread-safe.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates an unbound workqueue named `name` that runs at most `max_active` items at
    /// a time: its workers may sleep for long (I2C transfers) without holding up other users.
    ///
    /// It must not be dropped from one of its own work items (destroying waits for them).
    pub(crate) fn new_unbound(name: &CStr, max_active: i32) -> Result<Self> {
        // SAFETY: The format is a NUL-terminated string whose one conversion, `%s`, takes the
        // NUL-terminated `name`; `alloc_workqueue` copies the formatted name.
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"%s".as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND,
                max_active,
                name.as_char_ptr(),
            )
        };
        // INVARIANT: A non-null return is a new workqueue, destroyed only in `drop`.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: By the type invariant the workqueue is valid until `self` is dropped, which
        // the borrow outlives.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the workqueue is valid and not destroyed yet; nothing
        // uses it after `drop`.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// Waits until `work` is neither pending nor running (`flush_work`).
///
/// A pending work item runs first (it is never cancelled: its queued reference would leak), so
/// the caller must make sure it is not queued again if it is to stay idle afterwards.
pub(crate) fn flush_work<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is an initialised work item (a `Work` is only ever built in place,
    // pinned), so `raw_get` gives a valid `work_struct`.
    unsafe { bindings::flush_work(Work::raw_get(core::ptr::from_ref(work))) };
}
