// SPDX-License-Identifier: GPL-2.0

//! I2C target (slave) mode: registering a backend on a client and receiving its events.
//!
//! C header: [`include/linux/i2c.h`](srctree/include/linux/i2c.h).
//!
//! The 7.2 `kernel` crate has no target-mode abstraction; this is the smallest one the driver
//! needs. The controller calls the backend from its interrupt handler, so [`Target::event`]
//! must not sleep or allocate.

use core::{
    marker::PhantomData,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
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

/// A target-mode backend: the driver data of the clients it is registered on.
pub(crate) trait Target: Sync {
    /// Handles one bus event in interrupt context.
    ///
    /// Returns the byte to send for read events (ignored otherwise), or an error to refuse
    /// (NAK) the byte.
    fn event(&self, ev: Event) -> Result<u8>;
}

/// A registered target backend; unregistered by [`Self::unregister`] or on drop, whichever
/// comes first.
///
/// The callback finds its `T` in the client's driver data, which the kernel crate's driver
/// core stores once probe has initialised it, and clears before dropping it. This
/// registration never writes the driver data: until the driver core has stored it, and after
/// it is cleared, the callback sees null and refuses (NAKs) the byte.
///
/// # Invariants
///
/// `client` is a valid `i2c_client`. While `registered` is true, a target backend is
/// registered on it by [`Self::register`].
pub(crate) struct Registration<T: Target> {
    client: *mut bindings::i2c_client,
    registered: AtomicBool,
    _t: PhantomData<T>,
}

// SAFETY: The registration only holds the client pointer and a flag, and
// `i2c_slave_unregister` may be called from any thread.
unsafe impl<T: Target> Send for Registration<T> {}
// SAFETY: The only `&self` method, `unregister`, is made idempotent and race-free by the
// atomic flag.
unsafe impl<T: Target> Sync for Registration<T> {}

impl<T: Target> Registration<T> {
    /// Registers `callback::<T>` as the target backend of `client`.
    ///
    /// # Safety
    ///
    /// - `client` must stay valid until the registration is dropped.
    /// - The client's driver data must be null or a `T` stored by the kernel crate's driver
    ///   core (the `Data` of the bound driver), and `T` must not be dropped or borrowed
    ///   mutably while the backend is registered: the driver unregisters it (from its
    ///   `unbind`, or by dropping the registration) first.
    pub(crate) unsafe fn register<Ctx: DeviceContext>(client: &I2cClient<Ctx>) -> Result<Self> {
        let client = raw_client(client);
        // SAFETY: `client` is valid by the caller's guarantee; `callback::<T>` has the
        // `i2c_slave_cb_t` signature and reads the driver data as the caller guarantees.
        to_result(unsafe { bindings::i2c_slave_register(client, Some(callback::<T>)) })?;
        // INVARIANT: the backend is registered on a client that outlives `self`.
        Ok(Self {
            client,
            registered: AtomicBool::new(true),
            _t: PhantomData,
        })
    }

    /// Unregisters the backend, if it still is registered. On return the controller has
    /// stopped calling it for this client.
    pub(crate) fn unregister(&self) {
        if self.registered.swap(false, Ordering::AcqRel) {
            // SAFETY: By the type invariants the backend was registered on this valid client,
            // and the flag lets only one caller get here.
            unsafe { bindings::i2c_slave_unregister(self.client) };
        }
    }
}

impl<T: Target> Drop for Registration<T> {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// The `i2c_slave_cb_t` trampoline: finds the `T` in the client's driver data.
///
/// A received byte, the event of every byte of every frame, is handled here; the other events
/// go to [`other_event`], out of line, so that the byte's path is as short as the C drivers'.
///
/// # Safety
///
/// Called by the I2C core with a valid client registered through [`Registration::register`]
/// (so its driver data is null or a valid `T`, see there) and a valid `val`.
unsafe extern "C" fn callback<T: Target>(
    client: *mut bindings::i2c_client,
    event: bindings::i2c_slave_event,
    val: *mut u8,
) -> c_int {
    // `dev_get_drvdata()`, read in place: this runs for every byte, and the helper would be one
    // more call.
    // SAFETY: `client` is valid for the duration of the callback; the driver core writes the
    // field only before the backend is registered and after it is unregistered (see
    // `register`).
    let data = unsafe { (*client).dev.driver_data };
    if data.is_null() {
        // Probe has not finished, or the data is being dropped (the driver unregisters the
        // backend first): refuse the byte rather than lose it silently.
        return EBUSY.to_errno();
    }
    // SAFETY: By `register`'s safety requirements, non-null driver data is a `T` stored by the
    // driver core, fully initialised, and neither dropped nor mutably borrowed while the
    // backend is registered.
    let target = unsafe { &*data.cast::<T>() };
    if event != bindings::i2c_slave_event_I2C_SLAVE_WRITE_RECEIVED {
        // SAFETY: `val` is valid for the duration of the callback.
        return unsafe { other_event(target, event, val) };
    }
    // SAFETY: The controller passes the received byte in `*val`.
    match target.event(Event::WriteReceived(unsafe { *val })) {
        Ok(_) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The events other than a received byte: a (repeated) START, a read, STOP.
///
/// # Safety
///
/// `val` must be valid for reads and writes.
#[inline(never)]
unsafe fn other_event<T: Target>(
    target: &T,
    event: bindings::i2c_slave_event,
    val: *mut u8,
) -> c_int {
    let ev = match event {
        bindings::i2c_slave_event_I2C_SLAVE_WRITE_REQUESTED => Event::WriteRequested,
        bindings::i2c_slave_event_I2C_SLAVE_READ_REQUESTED => Event::ReadRequested,
        bindings::i2c_slave_event_I2C_SLAVE_READ_PROCESSED => Event::ReadProcessed,
        bindings::i2c_slave_event_I2C_SLAVE_STOP => Event::Stop,
        _ => return 0,
    };
    match target.event(ev) {
        Ok(byte) => {
            if matches!(ev, Event::ReadRequested | Event::ReadProcessed) {
                // SAFETY: For read events the controller sends the byte left in `*val`, which
                // the caller guarantees is valid.
                unsafe { *val = byte };
            }
            0
        }
        Err(e) => e.to_errno(),
    }
}
