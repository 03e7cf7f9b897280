// SPDX-License-Identifier: GPL-2.0

//! Local abstractions over C APIs that the 7.2 `kernel` crate lacks.
//!
//! Every `unsafe` block and raw `kernel::bindings` call of the driver is in this folder. Each
//! file is shaped like the `kernel` crate's own API for its subsystem, with documented safety
//! requirements, so that it could be proposed upstream as one patch; the rest of the driver
//! reads as safe Rust on top of them. Do not call `bindings` from outside this folder.

pub(crate) mod i2c;
pub(crate) mod i2c_target;
pub(crate) mod irq_lock;
pub(crate) mod miscdev;
pub(crate) mod poll_queue;
pub(crate) mod stack_buf;
pub(crate) mod sysfs;
pub(crate) mod workqueue;

#[cfg(CONFIG_KUNIT)]
#[kernel::prelude::kunit_tests(ipmb_irq_lock)]
mod irq_lock_tests {
    use super::irq_lock::new_irq_spinlock;
    use kernel::prelude::*;

    #[test]
    fn try_lock_takes_a_free_lock() -> Result {
        let lock = KBox::pin_init(new_irq_spinlock!(0u32, c"irq_lock_tests::lock"), GFP_KERNEL)?;
        let taken = lock.try_lock().is_some();
        assert!(taken);
        Ok(())
    }

    #[test]
    fn try_lock_fails_on_a_held_lock() -> Result {
        let lock = KBox::pin_init(new_irq_spinlock!(0u32, c"irq_lock_tests::lock"), GFP_KERNEL)?;
        let held = lock.lock();
        let taken = lock.try_lock().is_some();
        drop(held);
        assert!(!taken);
        Ok(())
    }

    #[test]
    fn lock_after_try_lock_released() -> Result {
        let lock = KBox::pin_init(new_irq_spinlock!(0u32, c"irq_lock_tests::lock"), GFP_KERNEL)?;
        if let Some(mut g) = lock.try_lock() {
            *g = 7;
        }
        let value = *lock.lock();
        assert_eq!(value, 7);
        Ok(())
    }
}
