// SPDX-License-Identifier: GPL-2.0

//! Per-instance counters: every received frame, every drop by cause, every transmission.
//!
//! This file uses only `core`: it is compiled into the module and into the host test crate.

use super::frame::FrameError;

/// Declares the counters once: the struct, its field names (the sysfs file names) and values.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The counters of one instance; see `Documentation/ipmb.rst`.
        #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
        pub(crate) struct Counters {
            $($(#[doc = $doc])* pub(crate) $name: u64,)*
        }

        /// The counter names, in the order [`Counters::values`] returns them.
        pub(crate) const NAMES: &[&core::ffi::CStr] = &[$(
            match core::ffi::CStr::from_bytes_with_nul(concat!(stringify!($name), "\0").as_bytes()) {
                Ok(s) => s,
                Err(_) => c"?",
            },
        )*];

        impl Counters {
            /// Returns the counters as an array in the order of [`NAMES`].
            pub(crate) fn values(&self) -> [u64; NAMES.len()] {
                [$(self.$name,)*]
            }
        }
    };
}

counters! {
    /// Frames received, checked and queued for a reader.
    rx_frames,
    /// Frames dropped: shorter than a request (7 bytes) or a response (8 bytes).
    rx_short,
    /// Frames dropped: longer than the instance's maximum frame length.
    rx_too_long,
    /// Frames dropped: bad header checksum (cs1).
    rx_bad_cs1,
    /// Frames dropped: bad data checksum (cs2).
    rx_bad_cs2,
    /// Frames dropped: odd (invalid) requester address.
    rx_bad_addr,
    /// Frames dropped: the receive queue was full.
    rx_overflow,
    /// Frames sent.
    tx_frames,
    /// Frames that could not be sent after all retries.
    tx_errors,
    /// Retransmissions after a NAK or an arbitration loss.
    tx_retries,
    /// write() calls refused for a malformed frame (EINVAL).
    tx_invalid,
    /// Requests submitted through the request ioctls.
    req_sent,
    /// Requests resent after a response timeout.
    req_retries,
    /// Requests answered with the synthesized timeout completion code (0xC3).
    req_timeouts,
    /// Requests answered with the synthesized bus-error completion code (0x82).
    req_bus_errors,
    /// Requests abandoned by their caller: a signal, or the file closed.
    req_aborted,
    /// Responses delivered to the request they answer.
    rsp_matched,
    /// Responses to a request that had timed out or was abandoned: dropped.
    rsp_late,
    /// Second responses to a request already answered: dropped.
    rsp_duplicate,
    /// Requests delivered to the file that registered their netFn and cmd.
    rx_routed,
    /// Requests dropped: the registered file's inbox was full.
    rx_route_overflow,
    /// Broadcast (general-call) frames received for our address.
    rx_broadcast,
    /// Broadcast requests sent.
    tx_broadcast,
    /// Responses delivered to the `read()` of the file that wrote the request.
    rsp_to_writer,
    /// Responses to a `write()` request whose file was closed: queued for any reader.
    rsp_writer_gone,
    /// Responses to a `write()` request whose file had no room left: queued for any reader.
    rsp_writer_full,
    /// Requests sent with `write()` without a note of their writer (no client place, or the
    /// seq's notes all taken): their responses go to any reader.
    tx_unnoted,
}

impl Counters {
    /// Counts a received frame dropped for `err`.
    pub(crate) fn count_rx_drop(&mut self, err: FrameError) {
        let c = match err {
            FrameError::TooShort => &mut self.rx_short,
            FrameError::TooLong => &mut self.rx_too_long,
            FrameError::BadHeaderChecksum => &mut self.rx_bad_cs1,
            FrameError::BadDataChecksum => &mut self.rx_bad_cs2,
            FrameError::BadAddress => &mut self.rx_bad_addr,
        };
        *c = c.wrapping_add(1);
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_stats))]
mod tests {
    use super::*;

    #[test]
    fn names_match_values() {
        let c = Counters {
            rx_bad_cs2: 5,
            ..Counters::default()
        };
        assert_eq!(NAMES.len(), c.values().len());
        let i = NAMES.iter().position(|n| n.to_bytes() == b"rx_bad_cs2");
        assert_eq!(i.map(|i| c.values()[i]), Some(5));
    }

    #[test]
    fn drops_counted_by_cause() {
        let mut c = Counters::default();
        c.count_rx_drop(FrameError::TooShort);
        c.count_rx_drop(FrameError::BadDataChecksum);
        c.count_rx_drop(FrameError::BadDataChecksum);
        assert_eq!(c.rx_short, 1);
        assert_eq!(c.rx_bad_cs2, 2);
        assert_eq!(c.rx_frames, 0);
    }
}
