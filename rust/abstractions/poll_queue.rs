// SPDX-License-Identifier: GPL-2.0

//! Wait queues for `poll()` that are freed one RCU grace period after they are dropped, without
//! waiting for it.
//!
//! epoll may still look at a wait queue under `rcu_read_lock()` after `wake_up_pollfree()`
//! emptied it, so the queue's memory must outlive a grace period. The 7.2
//! `kernel::sync::poll::PollCondVar` waits for one (`synchronize_rcu()`) in its destructor: a
//! device with one per file place paid one grace period per place ever used when it was freed,
//! seconds in all for an unbind or an unload. [`PollQueues`] keeps its queues in one
//! allocation, empties them all when dropped, and hands the allocation to `kvfree_rcu()`, which
//! frees it after a grace period: dropping one sleeps on nothing.
//!
//! A [`PollQueue`] only wakes pollers; tasks that block (`read()`) wait on a `CondVar` of their
//! own, which the owner notifies together with the queue.
//!
//! C headers: [`include/linux/wait.h`](srctree/include/linux/wait.h),
//! [`include/linux/poll.h`](srctree/include/linux/poll.h),
//! [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h).

use core::{
    marker::PhantomData,
    mem::MaybeUninit,
    ptr::{
        self,
        NonNull, //
    },
};

use kernel::{
    bindings,
    fs::File,
    prelude::*,
    sync::{
        barrier::smp_mb,
        LockClassKey, //
    },
    task::TASK_NORMAL,
    types::Opaque, //
};

/// A wait queue that `poll()` registers on.
#[repr(transparent)]
pub(crate) struct PollQueue(Opaque<bindings::wait_queue_head>);

impl PollQueue {
    /// Wakes every task polling on the queue (any context), if there is one.
    ///
    /// This is `wq_has_sleeper()` and `wake_up()`: a full barrier, then a lockless look at the
    /// list, so that a frame nobody polls for (a reader blocked in `read()`, or none) costs no
    /// wait queue lock in the interrupt handler. The caller changed what pollers wait for
    /// under its own lock and released it before calling this; a poller registers on the queue
    /// before it takes that lock to look. So either the poller sees the change, or its entry,
    /// added and released before the caller took the lock, is seen here.
    pub(crate) fn notify(&self) {
        let q = self.0.get();
        smp_mb();
        // SAFETY: The queue was initialised by `PollQueues::new` and is valid while `self` is;
        // its list head is read once, without the lock, as `waitqueue_active()` does.
        let empty = unsafe {
            let head = &raw mut (*q).head;
            ptr::read_volatile(&raw const (*head).next) == head
        };
        if !empty {
            // SAFETY: As above.
            unsafe { bindings::__wake_up(q, TASK_NORMAL, 0, ptr::null_mut()) };
        }
    }
}

/// The allocation of a [`PollQueues`]: the RCU head `kvfree_rcu()` uses, then the queues.
#[repr(C)]
struct Block<const N: usize> {
    rcu: Opaque<bindings::callback_head>,
    queues: [PollQueue; N],
}

/// `N` poll wait queues in one allocation, emptied when dropped and freed a grace period later.
///
/// # Invariants
///
/// `block` points to a `Block<N>` allocated by `KBox` (kmalloc) whose `N` queues are
/// initialised; it is valid until `drop`, which hands it to `kvfree_rcu()`.
pub(crate) struct PollQueues<const N: usize> {
    block: NonNull<Block<N>>,
    _owns: PhantomData<Block<N>>,
}

// SAFETY: Wait queues may be woken, registered on and emptied from any thread; the block is
// freed by RCU, not by the thread that drops it.
unsafe impl<const N: usize> Send for PollQueues<N> {}
// SAFETY: Every operation through `&PollQueues` (`get`, then `PollQueue::notify` and
// `PollTable::register_wait`) takes the queue's own lock.
unsafe impl<const N: usize> Sync for PollQueues<N> {}

impl<const N: usize> PollQueues<N> {
    /// Allocates `N` empty queues (process context), all of lock class `key`.
    pub(crate) fn new(name: &'static CStr, key: Pin<&'static LockClassKey>) -> Result<Self> {
        let mut block = KBox::<Block<N>>::new_uninit(GFP_KERNEL)?;
        let p: *mut Block<N> = MaybeUninit::as_mut_ptr(&mut block);
        for i in 0..N {
            // SAFETY: `p` points to the allocation and `i < N`, so the pointer is to the `i`th
            // queue; `Opaque` is `repr(transparent)`, so it is a `wait_queue_head` to
            // initialise. `name` and `key` are static.
            unsafe {
                let q = Opaque::cast_into(ptr::addr_of!((*p).queues[i].0));
                bindings::__init_waitqueue_head(q, name.as_char_ptr(), key.as_ptr());
            }
        }
        // SAFETY: Every queue was initialised above; the RCU head is `Opaque` (any bytes), and
        // only `kvfree_rcu()` writes it.
        let block = unsafe { block.assume_init() };
        // INVARIANT: The block is a kmalloc'ed `Block<N>` with initialised queues, released
        // only by `drop`.
        Ok(Self {
            // SAFETY: `KBox::into_raw` never returns null.
            block: unsafe { NonNull::new_unchecked(KBox::into_raw(block)) },
            _owns: PhantomData,
        })
    }

    /// Queue `i`, if `i < N`.
    pub(crate) fn get(&self, i: usize) -> Option<&PollQueue> {
        // SAFETY: By the type invariant the block is valid while `self` is.
        unsafe { self.block.as_ref() }.queues.get(i)
    }
}

impl<const N: usize> Drop for PollQueues<N> {
    fn drop(&mut self) {
        let p = self.block.as_ptr();
        for i in 0..N {
            // SAFETY: By the type invariant the queue is initialised; this removes every entry
            // (with `POLLFREE`), so nothing registers on it through the dropped `self`.
            unsafe {
                bindings::__wake_up_pollfree(Opaque::cast_into(ptr::addr_of!((*p).queues[i].0)))
            };
        }
        // SAFETY: The block came from `KBox` (kmalloc) and `self` was its only owner; nothing
        // can reach it through `self` again, and RCU readers that found a queue before it was
        // emptied see it until `kvfree_rcu()` frees it after their grace period. The RCU head
        // is inside the block, as `kvfree_rcu()` requires.
        unsafe { bindings::kvfree_call_rcu(Opaque::cast_into(ptr::addr_of!((*p).rcu)), p.cast()) };
    }
}

/// Wraps the kernel's `poll_table`, like `kernel::sync::poll::PollTable`, for [`PollQueue`]s.
///
/// # Invariants
///
/// `table` is null or points to a `poll_table` valid for `'a`.
pub(crate) struct PollTable<'a> {
    table: *mut bindings::poll_table,
    _lifetime: PhantomData<&'a bindings::poll_table>,
}

impl PollTable<'_> {
    /// Wraps `table`.
    ///
    /// # Safety
    ///
    /// `table` must be null or point to a `poll_table` valid for the returned lifetime.
    pub(crate) unsafe fn from_raw(table: *mut bindings::poll_table) -> Self {
        // INVARIANT: The requirements are the type's invariant.
        Self {
            table,
            _lifetime: PhantomData,
        }
    }

    /// Registers the poll of `file` on `queue`.
    pub(crate) fn register_wait(&self, file: &File, queue: &PollQueue) {
        // What `poll_wait()` tests before it calls the table's function, in line: a `poll()`
        // that does not wait (timeout 0, or not the first pass) registers nowhere.
        // SAFETY: `self.table` is null or valid (type invariant); `_qproc` is only read.
        if self.table.is_null() || unsafe { (*self.table)._qproc }.is_none() {
            return;
        }
        // SAFETY: `file` is valid for the call and `self.table` is null or valid (type
        // invariant). The queue's memory stays valid for a grace period after its last entry
        // is removed: the `PollQueues` that owns it empties it when dropped and frees it with
        // `kvfree_rcu()`.
        unsafe { bindings::poll_wait(file.as_ptr(), queue.0.get(), self.table) }
    }
}
