// SPDX-License-Identifier: GPL-2.0

//! Transmission: one frame at a time on the instance's I2C client, with retries and back-off.
//!
//! [`Instance::send`] runs in process context (a `write()`, an ioctl or the transmit work, on
//! the instance's own workqueue). It holds `Instance::tx` across the transfer and its retries,
//! which serialises transmissions and lets unbind wait for the one in flight; `Instance::rx` is
//! taken only briefly, to count and to see whether the instance died: retrying stops then, so
//! unbind waits for one transfer at most.

use core::mem::MaybeUninit;
use kernel::{
    prelude::*,
    time::{
        delay::fsleep,
        Delta, //
    },
};

use super::{
    Instance,
    MAX_LEN_LIMIT, //
};
use crate::{
    abstractions::{
        i2c::Client,
        stack_buf::zeroed_prefix, //
    },
    proto::{
        frame,
        stats::Counters, //
    },
};

/// The transmission side of an instance, under `Instance::tx`.
pub(crate) struct TxState {
    /// The client to send on; `None` once unbound (and in tests).
    pub(crate) client: Option<Client>,
}

/// Sends `bytes` to the 7-bit address `addr` as one plain I2C write.
///
/// The message's buffer is a copy in a buffer of the largest frame, of which only the part the
/// frame fills is initialised: zeroing all of it cost more than the copy (a byte per
/// instruction under the bench's instruction counting).
fn write(client: &Client, addr: u8, bytes: &[u8]) -> Result {
    if bytes.len() > MAX_LEN_LIMIT {
        return Err(EINVAL);
    }
    let mut buf = MaybeUninit::<[u8; MAX_LEN_LIMIT]>::uninit();
    // At least IPMB's 32 bytes are zeroed, in line ([`zeroed_prefix`]).
    let data = zeroed_prefix::<_, { frame::SPEC_MAX_LEN }>(&mut buf, bytes.len());
    data.copy_from_slice(bytes);
    client.write(addr, data)
}

/// Sends a frame (destination address first) as an SMBus block write: the netFn/LUN byte is
/// the command, then a count byte, then the rest of the frame. This is the in-tree C driver's
/// default, and not IPMB on the wire (the count byte is extra); only for peers that expect it.
/// Frames whose block would exceed 32 bytes are refused, not truncated.
fn smbus_block_write(client: &Client, frame: &[u8]) -> Result {
    let block = frame.get(frame::CS1..).ok_or(EINVAL)?;
    client.smbus_block_write(frame[frame::DEST_SA] >> 1, frame[frame::NETFN_LUN], block)
}

/// NAK (address or data) and arbitration loss: the conditions worth another try.
fn is_retryable(e: Error) -> bool {
    e == ENXIO || e == EIO || e == EAGAIN
}

impl Instance {
    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.rx.lock().st.counters);
    }

    fn dead(&self) -> bool {
        self.rx.lock().st.dead
    }

    /// Sends one frame (destination address first), retrying NAKs and arbitration losses; a
    /// broadcast goes once, whole, to the general-call address. `ENODEV` once the instance is
    /// dead, also between tries.
    pub(crate) fn send(&self, frame: &[u8], broadcast: bool) -> Result {
        self.send_ordered(frame, broadcast, || Ok(()))
            .and_then(|((), sent)| sent)
    }

    /// Sends like [`Self::send`], calling `first` once the transmitter is this caller's, before
    /// the first try: what `first` records is in the order the frames go on the wire. An error
    /// from `first` (or `ENODEV`) sends nothing; otherwise returns what `first` returned and
    /// the result of the send.
    pub(crate) fn send_ordered<T>(
        &self,
        frame: &[u8],
        broadcast: bool,
        first: impl FnOnce() -> Result<T>,
    ) -> Result<(T, Result)> {
        let tx = self.tx.lock();
        let client = tx.client.as_ref().ok_or(ENODEV)?;
        let t = first()?;
        Ok((t, self.transfer(client, frame, broadcast)))
    }

    /// Sends `frame` on `client` with the retries of [`Self::send`] (under `tx`).
    fn transfer(&self, client: &Client, frame: &[u8], broadcast: bool) -> Result {
        let mut attempt = 0;
        loop {
            let sent = if broadcast {
                write(client, 0, frame)
            } else if self.smbus {
                smbus_block_write(client, frame)
            } else {
                write(client, frame[frame::DEST_SA] >> 1, &frame[1..])
            };
            match sent {
                Ok(()) => {
                    self.count(|c| {
                        c.tx_frames += 1;
                        if broadcast {
                            c.tx_broadcast += 1;
                        }
                    });
                    return Ok(());
                }
                Err(e) if !broadcast && is_retryable(e) && attempt < self.retries => {
                    if self.dead() {
                        return Err(ENODEV);
                    }
                    attempt += 1;
                    self.count(|c| c.tx_retries += 1);
                    // Back off 0.5, 1, 2, ... ms: a busy bus or a responder that is not ready.
                    fsleep(Delta::from_micros(250 << attempt.min(6)));
                    if self.dead() {
                        return Err(ENODEV);
                    }
                }
                Err(e) => {
                    self.count(|c| c.tx_errors += 1);
                    return Err(e);
                }
            }
        }
    }

    /// Counts a malformed message from userspace and returns `EINVAL` for it.
    pub(crate) fn invalid(&self) -> Error {
        self.count(|c| c.tx_invalid += 1);
        EINVAL
    }
}
