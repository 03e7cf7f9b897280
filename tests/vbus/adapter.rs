// SPDX-License-Identifier: GPL-2.0

//! The I2C adapters of the virtual bus: registration and the `i2c_algorithm` callbacks.
//!
//! C header: [`include/linux/i2c.h`](srctree/include/linux/i2c.h).

use crate::{
    param::module_param_int,
    wire::{
        errno,
        Target,
        Wire,
        MAX_MSG_LEN, //
    },
};
use core::{
    ffi::c_void,
    pin::Pin, //
};
use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    time::{
        delay::fsleep,
        Delta, //
    },
    types::Opaque,
    ThisModule, //
};

module_param_int! {
    /// Adapters (a bit mask of indices) whose `reg_slave` fails with `-EOPNOTSUPP`.
    static REFUSE_TARGET: refuse_target = 0, 0, 0xff, perm: 0o644,
        "Bit mask of adapter indices that refuse target registration (-EOPNOTSUPP)",
}

module_param_int! {
    /// How long `reg_slave` sleeps before it registers or refuses a target, in ms.
    static REG_DELAY_MS: reg_delay_ms = 0, 0, 1000, perm: 0o644,
        "Delay in ms of every target registration, before it succeeds or is refused (0..1000)",
}

/// What the adapters can do: plain I2C, SMBus emulated on it, and target mode.
const FUNCTIONALITY: u32 =
    bindings::I2C_FUNC_I2C | bindings::I2C_FUNC_SMBUS_EMUL | bindings::I2C_FUNC_SLAVE;

/// Name prefix of the adapters; the index (one digit) follows.
const NAME_PREFIX: &[u8] = b"ipmb-vbus-";

/// A `struct i2c_adapter` of the virtual bus.
///
/// # Invariants
///
/// Once [`Adapter::add`] succeeded and until [`Adapter::del`] returns, the adapter is
/// registered and its `algo_data` points to the pinned [`Wire`] that owns it.
pub(crate) struct Adapter(Opaque<bindings::i2c_adapter>);

// SAFETY: Rust writes the adapter only before registration; afterwards only the I2C core uses
// it, with its own locking, from any thread.
unsafe impl Send for Adapter {}
// SAFETY: See `Send`: Rust keeps no references into a registered adapter.
unsafe impl Sync for Adapter {}

impl Adapter {
    /// An adapter that is all zeroes: not registered.
    pub(crate) const fn new() -> Self {
        Self(Opaque::zeroed())
    }

    /// Returns the raw pointer to the C adapter.
    pub(crate) fn as_raw(&self) -> *mut bindings::i2c_adapter {
        self.0.get()
    }

    /// Fills in the adapter and registers it as `ipmb-vbus-<index>`.
    ///
    /// # Safety
    ///
    /// - The adapter must not have been added before (it is still all zeroes), and must not
    ///   move until [`Adapter::del`] returns.
    /// - `wire` must point to the pinned [`Wire`] containing `self`, valid until
    ///   [`Adapter::del`] returns.
    pub(crate) unsafe fn add(
        &self,
        index: usize,
        owner: &'static ThisModule,
        wire: *mut c_void,
    ) -> Result {
        let digit = u8::try_from(index).ok().filter(|&i| i < 10).ok_or(EINVAL)?;
        let adap = self.as_raw();
        // SAFETY: The adapter is not registered (function requirements), so nothing else
        // accesses it; `adap` points to valid (zeroed) memory.
        let name = unsafe { &mut (*adap).name };
        let full = Iterator::chain(NAME_PREFIX.iter().copied(), [b'0' + digit]);
        for (dst, src) in name.iter_mut().zip(full) {
            *dst = src;
        }
        // SAFETY: As above, the adapter is ours until it is registered. The I2C core
        // initialises the remaining fields in `i2c_add_adapter`.
        unsafe {
            (*adap).owner = owner.as_ptr();
            (*adap).algo = &ALGORITHM;
            (*adap).algo_data = wire;
            (*adap).quirks = &QUIRKS;
        }
        // SAFETY: The adapter is filled in and will not move (function requirements).
        let ret = unsafe { bindings::i2c_add_adapter(adap) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Registered, with `algo_data` pointing to the wire (function requirements).
        Ok(())
    }

    /// Unregisters the adapter. Clients on it are removed first, and the call waits until
    /// the adapter's device is released.
    ///
    /// # Safety
    ///
    /// The adapter must have been added with [`Adapter::add`] and not deleted since.
    pub(crate) unsafe fn del(&self) {
        // SAFETY: The adapter is registered (function requirements).
        unsafe { bindings::i2c_del_adapter(self.as_raw()) }
    }
}

/// One message of a master transfer.
///
/// # Invariants
///
/// If `msg.len` is not zero, `msg.buf` is valid for reads and writes of `msg.len` bytes, and
/// nothing else accesses them, for `'a`.
pub(crate) struct Msg<'a>(&'a mut bindings::i2c_msg);

impl<'a> Msg<'a> {
    /// Wraps a message the I2C core passed to `xfer`.
    ///
    /// # Safety
    ///
    /// If `msg.len` is not zero, `msg.buf` must be valid for reads and writes of `msg.len`
    /// bytes, and not accessed otherwise, for `'a`.
    pub(crate) unsafe fn from_raw(msg: &'a mut bindings::i2c_msg) -> Self {
        // INVARIANT: Guaranteed by the function requirements.
        Self(msg)
    }

    /// The 7-bit target address.
    pub(crate) fn addr(&self) -> u16 {
        self.0.addr
    }

    /// The `I2C_M_*` flags.
    pub(crate) fn flags(&self) -> u32 {
        u32::from(self.0.flags)
    }

    /// Whether the message is a read (`I2C_M_RD`).
    pub(crate) fn is_read(&self) -> bool {
        self.flags() & bindings::I2C_M_RD != 0
    }

    /// The length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.0.len)
    }

    /// The message's bytes.
    pub(crate) fn data(&self) -> &[u8] {
        if self.0.len == 0 {
            return &[];
        }
        // SAFETY: By the type invariants `buf` is valid for reads of `len` bytes.
        unsafe { core::slice::from_raw_parts(self.0.buf, self.len()) }
    }

    /// The message's bytes, to fill in for a read.
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        if self.0.len == 0 {
            return &mut [];
        }
        // SAFETY: By the type invariants `buf` is valid for writes of `len` bytes and nothing
        // else accesses it.
        unsafe { core::slice::from_raw_parts_mut(self.0.buf, self.len()) }
    }
}

/// Returns the wire that owns `adap`, and the adapter's index on it.
///
/// # Safety
///
/// `adap` must be an adapter registered by [`Adapter::add`] and not yet deleted; the returned
/// reference must not be used after it is deleted.
unsafe fn wire_of<'a>(adap: *mut bindings::i2c_adapter) -> Option<(Pin<&'a Wire>, usize)> {
    // SAFETY: `adap` is registered (function requirements), so by the invariants of `Adapter`
    // its `algo_data` points to the pinned wire that owns it, valid while it is registered.
    let wire = unsafe { Pin::new_unchecked(&*(*adap).algo_data.cast::<Wire>()) };
    let index = wire.port_index(adap)?;
    Some((wire, index))
}

/// `master_xfer`: performs a transfer of `num` messages.
///
/// # Safety
///
/// Called only by the I2C core, in process context, with `adap` one of our registered adapters
/// and `msgs` an array of `num` valid messages whose buffers it owns during the call.
unsafe extern "C" fn vbus_xfer(
    adap: *mut bindings::i2c_adapter,
    msgs: *mut bindings::i2c_msg,
    num: c_int,
) -> c_int {
    // SAFETY: `adap` is one of our adapters, registered during the call (function
    // requirements); the wire is not used after this function returns.
    let Some((wire, port)) = (unsafe { wire_of(adap) }) else {
        return ENODEV.to_errno();
    };
    let msgs: &mut [bindings::i2c_msg] = match usize::try_from(num) {
        Ok(0) | Err(_) => &mut [],
        // SAFETY: `msgs` points to `num` valid messages, which the I2C core does not access
        // during the call (function requirements).
        Ok(n) => unsafe { core::slice::from_raw_parts_mut(msgs, n) },
    };
    let msgs = msgs.iter_mut().map(|m| {
        // SAFETY: The I2C core passes messages whose buffers are valid for `len` bytes and
        // owned by the transfer until this function returns (function requirements).
        unsafe { Msg::from_raw(m) }
    });
    match wire.transfer(port, msgs) {
        Ok(n) => c_int::try_from(n).unwrap_or(num),
        Err(e) => e.to_errno(),
    }
}

/// `functionality`: reports [`FUNCTIONALITY`].
///
/// # Safety
///
/// Called only by the I2C core; the adapter is not used.
unsafe extern "C" fn vbus_functionality(_adap: *mut bindings::i2c_adapter) -> u32 {
    FUNCTIONALITY
}

/// `reg_slave`: makes `client` the target of its adapter at its address on the wire.
///
/// # Safety
///
/// Called only by the I2C core (`i2c_slave_register`), with `client` a valid client on one of
/// our registered adapters whose `slave_cb` is set.
unsafe extern "C" fn vbus_reg_target(client: *mut bindings::i2c_client) -> c_int {
    // SAFETY: `client` is valid during the call (function requirements).
    let target = match unsafe { Target::from_raw(client) } {
        Ok(t) => t,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `client` is valid and on one of our registered adapters (function requirements).
    let Some((wire, port)) = (unsafe { wire_of((*client).adapter) }) else {
        return ENODEV.to_errno();
    };
    // The I2C core calls this in process context, with the adapter's bus lock (a mutex) held.
    let delay = REG_DELAY_MS.get();
    if delay > 0 {
        fsleep(Delta::from_millis(delay.into()));
    }
    if REFUSE_TARGET.get() & (1 << port) != 0 {
        // As an adapter without target support: the I2C core would refuse with this error.
        return errno(bindings::EOPNOTSUPP).to_errno();
    }
    match wire.register_target(port, target) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `unreg_slave`: removes the target `client`; no event reaches it once this returns.
///
/// # Safety
///
/// Called only by the I2C core (`i2c_slave_unregister`), with `client` a valid client on one
/// of our registered adapters.
unsafe extern "C" fn vbus_unreg_target(client: *mut bindings::i2c_client) -> c_int {
    // SAFETY: `client` is valid during the call (function requirements).
    let target = match unsafe { Target::from_raw(client) } {
        Ok(t) => t,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `client` is valid and on one of our registered adapters (function requirements).
    let Some((wire, port)) = (unsafe { wire_of((*client).adapter) }) else {
        return ENODEV.to_errno();
    };
    match wire.unregister_target(port, target) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The algorithm of every adapter of the virtual bus.
static ALGORITHM: bindings::i2c_algorithm = bindings::i2c_algorithm {
    __bindgen_anon_1: bindings::i2c_algorithm__bindgen_ty_1 {
        xfer: Some(vbus_xfer),
    },
    __bindgen_anon_2: bindings::i2c_algorithm__bindgen_ty_2 { xfer_atomic: None },
    smbus_xfer: None,
    smbus_xfer_atomic: None,
    functionality: Some(vbus_functionality),
    __bindgen_anon_3: bindings::i2c_algorithm__bindgen_ty_3 {
        reg_slave: Some(vbus_reg_target),
    },
    __bindgen_anon_4: bindings::i2c_algorithm__bindgen_ty_4 {
        unreg_slave: Some(vbus_unreg_target),
    },
};

/// Limits the I2C core enforces before calling `xfer`: messages fit the preallocated buffer.
static QUIRKS: bindings::i2c_adapter_quirks = bindings::i2c_adapter_quirks {
    flags: 0,
    max_num_msgs: 0,
    max_write_len: MAX_MSG_LEN as u16,
    max_read_len: MAX_MSG_LEN as u16,
    max_comb_1st_msg_len: 0,
    max_comb_2nd_msg_len: 0,
};
