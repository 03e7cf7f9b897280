// SPDX-License-Identifier: GPL-2.0

//! I2C target (slave) mode: registering a backend on a client and receiving its events.
//!
//! C header: [`include/linux/i2c.h`](srctree/include/linux/i2c.h).
//!
//! The 7.2 `kernel` crate has no target-mode abstraction; this is the smallest one the driver
//! needs. The controller calls the backend from its interrupt handler, so [`Target::event`]
//! must not sleep or allocate.

use core::marker::PhantomData;
use kernel::{
    bindings,
    device::DeviceContext,
    error::to_result,
    ffi::c_int,
    i2c::I2cClient,
    prelude::*, //
};

use super::i2c::raw_client;
use crate::proto::assembler::Event;

/// A target-mode backend whose per-client state is the client's driver data.
pub(crate) trait Target: Sync {
    /// Handles one bus event in interrupt context.
    ///
    /// Returns the byte to send for read events (ignored otherwise), or an error to refuse
    /// (NAK) the byte.
    fn event(&self, ev: Event) -> Result<u8>;
}

/// A registered target backend; unregistered on drop.
///
/// # Invariants
///
/// `client` is a valid `i2c_client` with a target backend registered by [`Self::register`],
/// which stays registered until `drop`.
pub(crate) struct Registration<T: Target> {
    client: *mut bindings::i2c_client,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds the client pointer, and `i2c_slave_unregister` may be
// called from any thread.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: No `&self` method exists.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Sets `data` as the driver data of `client` and registers `callback::<T>` as its target
    /// backend, which finds `data` there.
    ///
    /// The driver data is set here, before the backend goes live, because the driver core
    /// stores it only after probe returns: `data` must be the address the driver core will
    /// store (the driver data being initialised in place), so the two agree.
    ///
    /// # Safety
    ///
    /// - `client` must stay valid until the registration is dropped.
    /// - Until then, the client's driver data must be null or point to a valid `T`; `data`
    ///   must be valid (or be null) once this returns.
    pub(crate) unsafe fn register<Ctx: DeviceContext>(
        client: &I2cClient<Ctx>,
        data: *const T,
    ) -> Result<Self> {
        let client = raw_client(client);
        // SAFETY: `client` is valid by the caller's guarantee.
        unsafe { bindings::dev_set_drvdata(&raw mut (*client).dev, data.cast_mut().cast()) };
        // SAFETY: `client` is valid by the caller's guarantee; `callback::<T>` has the
        // `i2c_slave_cb_t` signature.
        let ret = to_result(unsafe { bindings::i2c_slave_register(client, Some(callback::<T>)) });
        if let Err(e) = ret {
            // SAFETY: `client` is valid; probe fails, so no driver data may remain.
            unsafe { bindings::dev_set_drvdata(&raw mut (*client).dev, core::ptr::null_mut()) };
            return Err(e);
        }
        // INVARIANT: the backend is registered on a client that outlives `self`.
        Ok(Self {
            client,
            _t: PhantomData,
        })
    }
}

impl<T: Target> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the backend is registered on a valid client. On
        // return, the controller has stopped calling the callback for this client.
        unsafe { bindings::i2c_slave_unregister(self.client) };
    }
}

/// The `i2c_slave_cb_t` trampoline: finds the `T` in the client's driver data.
///
/// # Safety
///
/// Called by the I2C core with a valid client registered through [`Registration::register`]
/// (so its driver data is null or a valid `T`) and a valid `val`.
unsafe extern "C" fn callback<T: Target>(
    client: *mut bindings::i2c_client,
    event: bindings::i2c_slave_event,
    val: *mut u8,
) -> c_int {
    // SAFETY: `client` is valid for the duration of the callback.
    let data = unsafe { bindings::dev_get_drvdata(&raw mut (*client).dev) };
    if data.is_null() {
        // Not bound yet or being unbound: refuse the byte rather than lose it silently.
        return EBUSY.to_errno();
    }
    // SAFETY: By `register`'s safety requirements, non-null driver data points to a valid `T`
    // while the backend is registered.
    let target = unsafe { &*data.cast::<T>() };
    let ev = match event {
        bindings::i2c_slave_event_I2C_SLAVE_WRITE_REQUESTED => Event::WriteRequested,
        // SAFETY: The controller passes the received byte in `*val`.
        bindings::i2c_slave_event_I2C_SLAVE_WRITE_RECEIVED => Event::WriteReceived(unsafe { *val }),
        bindings::i2c_slave_event_I2C_SLAVE_READ_REQUESTED => Event::ReadRequested,
        bindings::i2c_slave_event_I2C_SLAVE_READ_PROCESSED => Event::ReadProcessed,
        bindings::i2c_slave_event_I2C_SLAVE_STOP => Event::Stop,
        _ => return 0,
    };
    match target.event(ev) {
        Ok(byte) => {
            if matches!(ev, Event::ReadRequested | Event::ReadProcessed) {
                // SAFETY: For read events the controller sends the byte left in `*val`.
                unsafe { *val = byte };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}
