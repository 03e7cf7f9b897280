// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables local interrupts while held (`spin_lock_irqsave`).
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h).
//!
//! The 7.2 `kernel` crate offers only `SpinLock`, which leaves interrupts enabled: data shared
//! with a hard-IRQ handler (an I2C target callback) needs this variant, or the handler can
//! deadlock against the task it interrupted. It is shaped like the kernel crate's own
//! `SpinLockBackend`, so it drops in as `Lock<T, IrqSpinLockBackend>`.
//!
//! `spin_lock_irqsave()` and its relatives are macros over functions that some configurations
//! inline, so they are called through the C wrappers in `irq_lock_helpers.c` (built into the
//! module), as the kernel crate calls `spin_lock()` through `rust/helpers/spinlock.c`. Where
//! the configuration makes them plain calls of the exported `_raw_spin_lock_irqsave()` and
//! `_raw_spin_unlock_irqrestore()` on the lock's `raw_spinlock` (SMP, not `PREEMPT_RT`, not
//! inlined), those are called directly: the lock is taken for every byte of every frame in
//! the I2C target callback, and a wrapper is one more call there.

use kernel::{
    bindings,
    ffi::{
        c_int,
        c_ulong, //
    },
    sync::lock::{
        Backend,
        Lock, //
    }, //
};

extern "C" {
    /// `spin_lock_irqsave(lock, flags)`; returns `flags`.
    #[cfg(not(all(
        CONFIG_SMP,
        not(CONFIG_PREEMPT_RT),
        not(CONFIG_INLINE_SPIN_LOCK_IRQSAVE)
    )))]
    fn ipmb_spin_lock_irqsave(lock: *mut bindings::spinlock_t) -> c_ulong;
    /// `spin_unlock_irqrestore(lock, flags)`.
    #[cfg(not(all(
        CONFIG_SMP,
        not(CONFIG_PREEMPT_RT),
        not(CONFIG_INLINE_SPIN_UNLOCK_IRQRESTORE)
    )))]
    fn ipmb_spin_unlock_irqrestore(lock: *mut bindings::spinlock_t, flags: c_ulong);
    /// `spin_trylock_irqsave(lock, *flags)`: non-zero if it took the lock (and saved the
    /// interrupt state in `*flags`); otherwise interrupts are as they were.
    fn ipmb_spin_trylock_irqsave(lock: *mut bindings::spinlock_t, flags: *mut c_ulong) -> c_int;
}

/// A spinlock whose guard holds the saved interrupt state; see the module documentation.
pub(crate) type IrqSpinLock<T> = Lock<T, IrqSpinLockBackend>;

/// Creates an [`IrqSpinLock`] initialiser with the given name (a C string literal) and a new
/// lock class.
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal) => {
        $crate::abstractions::irq_lock::IrqSpinLock::new(
            $inner,
            $name,
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irq_spinlock;

/// The backend of [`IrqSpinLock`]: `spinlock_t` locked with interrupts saved and disabled.
pub(crate) struct IrqSpinLockBackend;

// SAFETY: The underlying `spinlock_t` ensures mutual exclusion, and interrupts stay disabled on
// this CPU while it is held, so an interrupt handler taking the same lock cannot interrupt the
// owner. `relock` uses the default implementation, which locks the same way.
unsafe impl Backend for IrqSpinLockBackend {
    type State = bindings::spinlock_t;
    type GuardState = c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller guarantees `ptr` is valid for writes and that `name` and `key`
        // stay valid for reads indefinitely.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // What `spin_lock_irqsave()` expands to on this configuration (see the module
        // documentation): `_raw_spin_lock_irqsave(&lock->rlock)`.
        #[cfg(all(
            CONFIG_SMP,
            not(CONFIG_PREEMPT_RT),
            not(CONFIG_INLINE_SPIN_LOCK_IRQSAVE)
        ))]
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`; without
        // `PREEMPT_RT` that is a `struct spinlock` whose first member is its `raw_spinlock`.
        return unsafe { bindings::_raw_spin_lock_irqsave(ptr.cast::<bindings::raw_spinlock_t>()) };
        #[cfg(not(all(
            CONFIG_SMP,
            not(CONFIG_PREEMPT_RT),
            not(CONFIG_INLINE_SPIN_LOCK_IRQSAVE)
        )))]
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`.
        return unsafe { ipmb_spin_lock_irqsave(ptr) };
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // What `spin_unlock_irqrestore()` expands to on this configuration (see the module
        // documentation): `_raw_spin_unlock_irqrestore(&lock->rlock, flags)`.
        #[cfg(all(
            CONFIG_SMP,
            not(CONFIG_PREEMPT_RT),
            not(CONFIG_INLINE_SPIN_UNLOCK_IRQRESTORE)
        ))]
        // SAFETY: The caller owns the lock; `guard_state` holds the flags its `lock` (or
        // `try_lock`) returned. Without `PREEMPT_RT` a `struct spinlock` begins with its
        // `raw_spinlock`.
        unsafe {
            bindings::_raw_spin_unlock_irqrestore(
                ptr.cast::<bindings::raw_spinlock_t>(),
                *guard_state,
            )
        };
        #[cfg(not(all(
            CONFIG_SMP,
            not(CONFIG_PREEMPT_RT),
            not(CONFIG_INLINE_SPIN_UNLOCK_IRQRESTORE)
        )))]
        // SAFETY: The caller owns the lock; `guard_state` holds the flags its `lock` (or
        // `try_lock`) returned.
        unsafe {
            ipmb_spin_unlock_irqrestore(ptr, *guard_state)
        };
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags: c_ulong = 0;
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`; `flags` is
        // a valid place for the saved interrupt state.
        let locked = unsafe { ipmb_spin_trylock_irqsave(ptr, &mut flags) };
        (locked != 0).then_some(flags)
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // `lockdep_assert_held()` is empty without lockdep: no call (`lock` asserts on every
        // byte the target callback takes).
        #[cfg(CONFIG_LOCKDEP)]
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`.
        unsafe {
            bindings::spin_assert_is_held(ptr)
        };
        #[cfg(not(CONFIG_LOCKDEP))]
        let _ = ptr;
    }
}
