// SPDX-License-Identifier: GPL-2.0

//! I2C client operations the 7.2 `kernel::i2c` lacks: the client's address and adapter number,
//! and transfers outside probe.
//!
//! C header: [`include/linux/i2c.h`](srctree/include/linux/i2c.h).

use kernel::{
    bindings,
    device::DeviceContext,
    error::to_result,
    ffi::c_int,
    i2c::I2cClient,
    prelude::*, //
};

/// Returns the raw `struct i2c_client` of `client`.
pub(crate) fn raw_client<Ctx: DeviceContext>(client: &I2cClient<Ctx>) -> *mut bindings::i2c_client {
    // `I2cClient` is a `#[repr(transparent)]` wrapper of `Opaque<struct i2c_client>`, so a
    // pointer to it is a pointer to the C structure.
    core::ptr::from_ref(client).cast_mut().cast()
}

/// Returns the client's 7-bit (or 10-bit) address.
pub(crate) fn address<Ctx: DeviceContext>(client: &I2cClient<Ctx>) -> u16 {
    // SAFETY: `client` is a valid `i2c_client` for the lifetime of the reference.
    unsafe { (*raw_client(client)).addr }
}

/// Returns the number of the client's adapter (`N` in `i2c-N`).
pub(crate) fn adapter_nr<Ctx: DeviceContext>(client: &I2cClient<Ctx>) -> i32 {
    // SAFETY: `client` is a valid `i2c_client` for the lifetime of the reference, and a client
    // holds a valid adapter pointer.
    unsafe { (*(*raw_client(client)).adapter).nr }
}

/// An I2C client kept for transfers after probe.
///
/// # Invariants
///
/// Points to a valid, bound `i2c_client` whose adapter is registered, for as long as the value
/// exists (see [`Client::new`]).
pub(crate) struct Client(*mut bindings::i2c_client);

// SAFETY: The client may be used from any thread; transfers are serialised by the I2C core.
unsafe impl Send for Client {}

impl Client {
    /// Keeps `client` for transfers.
    ///
    /// # Safety
    ///
    /// The returned value must be dropped before `client` is unbound.
    pub(crate) unsafe fn new<Ctx: DeviceContext>(client: &I2cClient<Ctx>) -> Self {
        // INVARIANT: the client is bound now, and the caller drops `self` before unbind.
        Self(raw_client(client))
    }

    /// Returns the client's adapter and its PEC flag for transfers.
    fn adapter(&self) -> (*mut bindings::i2c_adapter, u16) {
        // SAFETY: By the type invariants the client is valid.
        let (adapter, flags) = unsafe { ((*self.0).adapter, (*self.0).flags) };
        (adapter, flags & bindings::I2C_CLIENT_PEC as u16)
    }

    /// Sends `buf` to the 7-bit address `addr` as one plain I2C write (`i2c_transfer` of one
    /// message).
    pub(crate) fn write(&self, addr: u8, buf: &mut [u8]) -> Result {
        let len = u16::try_from(buf.len()).map_err(|_| EINVAL)?;
        let (adapter, flags) = self.adapter();
        let mut msg = bindings::i2c_msg {
            addr: u16::from(addr),
            flags,
            len,
            buf: buf.as_mut_ptr(),
        };
        // SAFETY: By the type invariants `adapter` is the valid adapter of a bound client;
        // `msg` points to `len` bytes that live across the call.
        let ret = unsafe { bindings::i2c_transfer(adapter, &mut msg, 1) };
        match ret {
            1 => Ok(()),
            r if r < 0 => Err(Error::from_errno(r)),
            _ => Err(EIO),
        }
    }

    /// Sends an SMBus block write of `block` with command byte `command` to the 7-bit address
    /// `addr`; blocks over `I2C_SMBUS_BLOCK_MAX` (32) bytes are refused with `EINVAL`.
    pub(crate) fn smbus_block_write(&self, addr: u8, command: u8, block: &[u8]) -> Result {
        if block.len() > bindings::I2C_SMBUS_BLOCK_MAX as usize {
            return Err(EINVAL);
        }
        let mut data = bindings::i2c_smbus_data { block: [0; 34] };
        // SAFETY: `block` is the active field, just initialised.
        let buf = unsafe { &mut data.block };
        // At most 32.
        buf[0] = block.len() as u8;
        buf[1..=block.len()].copy_from_slice(block);
        let (adapter, flags) = self.adapter();
        // SAFETY: By the type invariants `adapter` is the valid adapter of a bound client;
        // `data` lives across the call.
        let ret = unsafe {
            bindings::i2c_smbus_xfer(
                adapter,
                u16::from(addr),
                flags,
                bindings::I2C_SMBUS_WRITE as u8,
                command,
                bindings::I2C_SMBUS_BLOCK_DATA as c_int,
                &mut data,
            )
        };
        to_result(ret)
    }
}
