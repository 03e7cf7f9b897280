// SPDX-License-Identifier: GPL-2.0

//! The receive state machine: assembles an IPMB frame from I2C target events, one byte at a time.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`.
//!
//! It runs in the I2C controller's interrupt context, so every method is O(1) (finalizing
//! validates the frame once, bounded by the maximum frame length), allocates nothing and
//! never sleeps. A frame ends on STOP, on a repeated START (a new write request) and on a read
//! request; after that the state is reset, so a later STOP or read can never deliver the same
//! frame twice.

use super::frame::{
    self,
    FrameError, //
};

/// The I2C target events, as `enum i2c_slave_event` delivers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A master addressed us for writing (START or repeated START).
    WriteRequested,
    /// A master wrote one byte.
    WriteReceived(u8),
    /// A master addressed us for reading and wants the first byte.
    ReadRequested,
    /// A master acknowledged a byte we sent and wants the next one.
    ReadProcessed,
    /// STOP.
    Stop,
}

/// What the caller must do after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// Nothing to do; acknowledge the byte.
    None,
    /// Nothing to do, but refuse (NAK) the byte: the frame is already too long.
    Nak,
    /// A byte to return to a reading master (we have nothing to say: 0xFF, the bus idle level).
    ReadByte(u8),
    /// A frame that passed every check, own address first.
    Frame(&'a [u8]),
    /// A broadcast frame that passed every check, as written to the general-call address:
    /// starting with the responder address it names (ours or not).
    Broadcast(&'a [u8]),
    /// A frame that failed a check, and why.
    Dropped(FrameError),
}

/// The byte a target returns on read events: IPMB targets are written to, never read.
pub(crate) const READ_FILL: u8 = 0xff;

/// Assembles frames for one target address.
///
/// # Invariants
///
/// - `1 <= max_len <= buf.len()` (for `CAP >= 1`: no assembler has less room than the address
///   byte).
/// - `limit` is `max_len` while a frame is active (since a write request or a data byte) and 0
///   otherwise, so a frame is active exactly when `limit != 0`.
/// - `1 <= len <= max_len` while a frame is active; `buf[0]` holds `own_addr`.
pub(crate) struct Assembler<const CAP: usize> {
    buf: [u8; CAP],
    len: usize,
    max_len: usize,
    /// What `len` must stay below for a data byte to be stored without more checks: one
    /// comparison in [`Self::byte`] covers both "a frame is active" and "it has room".
    limit: usize,
    overflow: bool,
}

impl<const CAP: usize> Assembler<CAP> {
    /// Creates an assembler for the target at 8-bit address `own_addr`, accepting frames of at
    /// most `max_len` bytes including the address byte (clamped to `CAP`).
    pub(crate) const fn new(own_addr: u8, max_len: usize) -> Self {
        let mut buf = [0u8; CAP];
        if CAP > 0 {
            buf[0] = own_addr;
        }
        // A frame always has its address byte: a smaller limit refuses the same frames as 1.
        let max_len = if max_len < 1 { 1 } else { max_len };
        // INVARIANT: `max_len` is clamped to the buffer; no frame is active; `buf[0]` holds
        // the address.
        Self {
            buf,
            len: 0,
            max_len: if max_len < CAP { max_len } else { CAP },
            limit: 0,
            overflow: false,
        }
    }

    /// Returns the maximum frame length this assembler accepts.
    // Only the tests and the fuzzer ask: a module built without KUnit has no caller.
    #[cfg_attr(not(CONFIG_KUNIT), allow(dead_code))]
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Returns true if a frame has data but has not ended yet (no STOP, repeated START or
    /// read request since its first byte).
    pub(crate) fn in_progress(&self) -> bool {
        self.limit != 0 && self.len > 1
    }

    /// Feeds one event; see [`Action`] for what the caller does next.
    pub(crate) fn event(&mut self, ev: Event) -> Action<'_> {
        match ev {
            Event::WriteRequested => {
                // A repeated START ends the frame in progress, if any, and starts a new one.
                let prev = self.finish_raw();
                self.start();
                Self::judge(prev, self.max_len, &self.buf)
            }
            Event::WriteReceived(byte) => {
                if self.byte(byte) {
                    Action::None
                } else {
                    Action::Nak
                }
            }
            Event::ReadRequested => {
                // A read request after a write (repeated START) ends that frame. The byte we
                // return is the fill value either way; the frame, if any, goes to the caller,
                // which still answers READ_FILL to the controller.
                let prev = self.finish_raw();
                match Self::judge(prev, self.max_len, &self.buf) {
                    Action::None => Action::ReadByte(READ_FILL),
                    other => other,
                }
            }
            Event::ReadProcessed => Action::ReadByte(READ_FILL),
            Event::Stop => {
                let prev = self.finish_raw();
                Self::judge(prev, self.max_len, &self.buf)
            }
        }
    }

    /// Takes a data byte (`Event::WriteReceived`), the event of every byte of every frame;
    /// false if it is refused (NAK): the frame is already `max_len` long. A data byte never
    /// ends a frame, so the caller has nothing more to do.
    ///
    /// The path of nearly every byte is one comparison (`len < limit`: a frame is active and
    /// has room), the buffer's bounds check and two stores; the rest is out of line.
    #[inline]
    pub(crate) fn byte(&mut self, byte: u8) -> bool {
        let len = self.len;
        if len < self.limit {
            if let Some(slot) = self.buf.get_mut(len) {
                *slot = byte;
                // INVARIANT: `len < limit == max_len`, so the frame stays within `max_len`
                // (and `len + 1` cannot overflow).
                self.len = len + 1;
                return true;
            }
        }
        self.byte_slow(byte)
    }

    /// [`Self::byte`] when no frame is active or it is full.
    #[inline(never)]
    fn byte_slow(&mut self, byte: u8) -> bool {
        if self.limit == 0 {
            // Some controllers deliver data without a write request after an error: treat it
            // as the start of a frame rather than losing it.
            self.start();
            if self.len < self.limit {
                // The frame just started has room (`max_len > 1`): the fast path stores it.
                return self.byte(byte);
            }
        }
        self.overflow = true;
        false
    }

    fn start(&mut self) {
        // INVARIANT: the frame is active; the address byte at `buf[0]` is the first byte of
        // every frame, and `1 <= max_len`.
        self.limit = self.max_len;
        self.overflow = false;
        self.len = 1;
    }

    /// Ends the frame in progress and returns its length and overflow flag, or `None` if no
    /// data byte was received since the write request.
    fn finish_raw(&mut self) -> Option<(usize, bool)> {
        let was_active = self.limit != 0;
        // INVARIANT: no frame is active.
        self.limit = 0;
        if !was_active || self.len <= 1 {
            // A write with no data (an address probe) carries nothing to deliver.
            return None;
        }
        Some((self.len, self.overflow))
    }

    fn judge(prev: Option<(usize, bool)>, max_len: usize, buf: &[u8]) -> Action<'_> {
        match prev {
            None => Action::None,
            Some((_, true)) => Action::Dropped(FrameError::TooLong),
            Some((len, false)) => {
                let f = &buf[..len];
                match frame::validate(f, max_len) {
                    Ok(()) => Action::Frame(f),
                    // A general-call write carries the whole frame, rsSA included, after the
                    // general-call address; the target API does not say which address a write
                    // was for. Such a stream fails as a frame for us (its first data byte is
                    // taken for the netFn), so a frame that fails is tried as a broadcast.
                    Err(e) => match f.get(1..) {
                        Some(b) if frame::validate(b, max_len).is_ok() => Action::Broadcast(b),
                        _ => Action::Dropped(e),
                    },
                }
            }
        }
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_assembler))]
mod tests {
    use super::*;
    use crate::proto::frame::{
        checksum,
        SPEC_MAX_LEN, //
    };

    const OWN: u8 = 0x20;
    // A response to Get Device ID, as 0x72 sends it to 0x20 (the address byte is not data).
    const RSP_WIRE: [u8; 8] = [0x1c, 0xc4, 0x72, 0x04, 0x01, 0x00, 0x00, 0x89];

    fn rsp_frame() -> [u8; 9] {
        let mut f = [0u8; 9];
        f[0] = OWN;
        f[1..].copy_from_slice(&RSP_WIRE);
        f[8] = checksum(&f[3..8]);
        f
    }

    fn feed(a: &mut Assembler<241>, bytes: &[u8]) -> bool {
        let mut ok = true;
        for b in bytes {
            ok &= a.event(Event::WriteReceived(*b)) == Action::None;
        }
        ok
    }

    #[test]
    fn stop_finalizes_frame() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        assert_eq!(a.event(Event::WriteRequested), Action::None);
        assert!(feed(&mut a, &f[1..]));
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
    }

    #[test]
    fn in_progress_from_first_byte_to_stop() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        let before = a.in_progress();
        feed(&mut a, &f[1..2]);
        let during = a.in_progress();
        a.event(Event::Stop);
        assert_eq!((before, during, a.in_progress()), (false, true, false));
    }

    #[test]
    fn second_stop_delivers_nothing() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
        assert_eq!(a.event(Event::Stop), Action::None);
    }

    #[test]
    fn repeated_start_finalizes_previous() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(a.event(Event::WriteRequested), Action::Frame(&f[..]));
        feed(&mut a, &f[1..]);
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
    }

    #[test]
    fn read_request_finalizes_and_reads_fill() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(a.event(Event::ReadRequested), Action::Frame(&f[..]));
        assert_eq!(a.event(Event::ReadProcessed), Action::ReadByte(READ_FILL));
        assert_eq!(a.event(Event::Stop), Action::None);
    }

    #[test]
    fn read_without_write_returns_fill() {
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        assert_eq!(a.event(Event::ReadRequested), Action::ReadByte(READ_FILL));
        assert_eq!(a.event(Event::ReadProcessed), Action::ReadByte(READ_FILL));
        assert_eq!(a.event(Event::Stop), Action::None);
    }

    #[test]
    fn empty_write_is_ignored() {
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        assert_eq!(a.event(Event::WriteRequested), Action::None);
        assert_eq!(a.event(Event::Stop), Action::None);
    }

    #[test]
    fn short_frame_dropped() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..5]);
        assert_eq!(a.event(Event::Stop), Action::Dropped(FrameError::TooShort));
    }

    #[test]
    fn bad_checksums_dropped() {
        let mut f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        f[8] ^= 0x40;
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(
            a.event(Event::Stop),
            Action::Dropped(FrameError::BadDataChecksum)
        );
        f[2] ^= 0x40;
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(
            a.event(Event::Stop),
            Action::Dropped(FrameError::BadHeaderChecksum)
        );
    }

    #[test]
    fn frame_for_other_address_fails_cs1() {
        // The same bytes addressed to 0x22 have a header checksum that does not cover us.
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(0x22, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(
            a.event(Event::Stop),
            Action::Dropped(FrameError::BadHeaderChecksum)
        );
    }

    #[test]
    fn overlong_frame_naks_and_drops() {
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        // 31 data bytes fill the 32-byte frame with the address byte; the 32nd is refused.
        assert!(feed(&mut a, &[0u8; SPEC_MAX_LEN - 1]));
        assert_eq!(a.event(Event::WriteReceived(0)), Action::Nak);
        assert_eq!(a.event(Event::WriteReceived(0)), Action::Nak);
        assert_eq!(a.event(Event::Stop), Action::Dropped(FrameError::TooLong));
        // The next frame starts clean.
        let f = rsp_frame();
        a.event(Event::WriteRequested);
        feed(&mut a, &f[1..]);
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
    }

    #[test]
    fn max_len_frame_accepted() {
        let mut f = [0u8; SPEC_MAX_LEN];
        let hdr = frame::Header {
            dest: OWN,
            netfn: 0x2e,
            dest_lun: 0,
            src: 0x72,
            seq: 9,
            src_lun: 1,
            cmd: 0x40,
        };
        assert_eq!(
            frame::build(&mut f, SPEC_MAX_LEN, &hdr, &[0x5a; 25]),
            Ok(SPEC_MAX_LEN)
        );
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        assert!(feed(&mut a, &f[1..]));
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
    }

    #[test]
    fn oem_max_len_is_clamped_to_capacity() {
        let a = Assembler::<16>::new(OWN, 240);
        assert_eq!(a.max_len(), 16);
        let b = Assembler::<241>::new(OWN, 240);
        assert_eq!(b.max_len(), 240);
    }

    #[test]
    fn data_without_write_request_starts_frame() {
        let f = rsp_frame();
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        assert!(feed(&mut a, &f[1..]));
        assert_eq!(a.event(Event::Stop), Action::Frame(&f[..]));
    }

    #[test]
    fn general_call_frame_is_broadcast() {
        // Broadcast Get Device ID for 0x20 from 0x72: the rsSA byte is data here.
        let wire = [0x20, 0x18, 0xc8, 0x72, 0x04, 0x01, 0x89];
        let mut a = Assembler::<241>::new(OWN, SPEC_MAX_LEN);
        a.event(Event::WriteRequested);
        assert!(feed(&mut a, &wire));
        assert_eq!(a.event(Event::Stop), Action::Broadcast(&wire[..]));
        // The same for another responder address is a broadcast too (the caller decides).
        let mut other = wire;
        other[0] = 0x72;
        other[2] = checksum(&other[..2]);
        other[6] = checksum(&other[3..6]);
        a.event(Event::WriteRequested);
        assert!(feed(&mut a, &other));
        assert_eq!(a.event(Event::Stop), Action::Broadcast(&other[..]));
        // A corrupted one is still a drop of a frame for us.
        let mut bad = wire;
        bad[6] ^= 1;
        a.event(Event::WriteRequested);
        assert!(feed(&mut a, &bad));
        assert!(matches!(a.event(Event::Stop), Action::Dropped(_)));
    }
}
