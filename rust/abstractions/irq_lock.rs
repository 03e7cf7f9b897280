// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables local interrupts while held (`spin_lock_irqsave`).
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h).
//!
//! The 7.2 `kernel` crate offers only `SpinLock`, which leaves interrupts enabled: data shared
//! with a hard-IRQ handler (an I2C target callback) needs this variant, or the handler can
//! deadlock against the task it interrupted. It is shaped like the kernel crate's own
//! `SpinLockBackend`, so it drops in as `Lock<T, IrqSpinLockBackend>`.

use kernel::{
    bindings,
    ffi::c_ulong,
    sync::lock::{
        Backend,
        Lock, //
    }, //
};

#[cfg(CONFIG_PREEMPT_RT)]
compile_error!(
    "irq_lock: PREEMPT_RT kernels are not supported (spinlock_t is not a raw lock there)"
);

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

/// Returns the `raw_spinlock_t` inside a `spinlock_t`.
///
/// # Safety
///
/// `ptr` must point to a `spinlock_t`.
unsafe fn raw(ptr: *mut bindings::spinlock_t) -> *mut bindings::raw_spinlock_t {
    // On kernels without PREEMPT_RT (enforced above), `spinlock_t` is a union whose `rlock`
    // member, a `raw_spinlock_t`, sits at offset 0: this is what the C `spinlock_check()` returns.
    ptr.cast()
}

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

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`, so `raw`
        // gives its valid `raw_spinlock_t`.
        unsafe { bindings::_raw_spin_lock_irqsave(raw(ptr)) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The caller owns the lock; `guard_state` holds the flags its `lock` returned.
        unsafe { bindings::_raw_spin_unlock_irqrestore(raw(ptr), *guard_state) }
    }

    unsafe fn try_lock(_ptr: *mut Self::State) -> Option<Self::GuardState> {
        // The kernel exports no function that saves interrupts around a trylock, and this
        // driver never try-locks: failing is always a correct answer for a trylock.
        None
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees `ptr` points to an initialised `spinlock_t`.
        unsafe { bindings::spin_assert_is_held(ptr) }
    }
}
