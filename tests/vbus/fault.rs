// SPDX-License-Identifier: GPL-2.0

//! Random fault injection, and the count of frames the wire delivered to each adapter's target.
//!
//! The one-shot parameters of [`crate::wire`] (`nak_next`, `corrupt_byte`...) hit the next
//! transfer, whoever makes it. For a soak, `fault_permille` makes the wire pick faults itself:
//! each transfer draws one fault with that probability, of a kind chosen at random:
//!
//! - a NAK of the address (`-ENXIO`) or a lost arbitration (`-EAGAIN`), before any target sees
//!   the transfer;
//! - the final `STOP` withheld (the receiver ends the frame at its next transfer);
//! - one byte of a write to one target inverted (never a general call, so that a broadcast
//!   stays a frame for the one responder it names, and the accounting below stays exact);
//! - a delay of up to `fault_delay_max_us` before the delivery starts.
//!
//! Each kind has a read-only counter (`faults_nak`...). The read-only `frames_to_<N>` counts
//! the write messages adapter N's target received at least one byte of: to its address, or to
//! the general-call address when the first byte (the responder address of an IPMB broadcast)
//! names it; and a general call naming another address that the target still held unfinished
//! (no `STOP` nor `START` since its first byte, e.g. after a withheld `STOP`) when it was
//! removed, since the target cannot tell that one from a frame of its own cut by the removal
//! (the soak found one). A target backend that counts every frame it gets accounts for
//! exactly these.
//! Deliveries happen only while a target is registered, so the difference of two readings
//! taken while the adapter has none is what one registration received.

use crate::param::{
    module_param_int,
    Param, //
};
use kernel::bindings;

module_param_int! {
    /// Probability in per mille that a transfer gets a random fault.
    static FAULT_PERMILLE: fault_permille = 0, 0, 1000, perm: 0o644,
        "Per mille of transfers that get a random fault (NAK, arbitration loss, no STOP, corrupted byte, delay)",
}

module_param_int! {
    /// Longest random delay in microseconds.
    static FAULT_DELAY_MAX_US: fault_delay_max_us = 2000, 0, 100_000, perm: 0o644,
        "Longest random delay fault in microseconds (0..100000)",
}

/// Declares the read-only counters of the random faults injected.
macro_rules! fault_counters {
    ($($ident:ident: $name:ident, $what:literal,)*) => {
        $(module_param_int! {
            /// Random faults injected of one kind.
            static $ident: $name = 0, 0, i32::MAX, perm: 0o444, $what,
        })*
    };
}

fault_counters! {
    FAULTS_NAK: faults_nak, "Random faults injected: address NAKs",
    FAULTS_ARB_LOST: faults_arb_lost, "Random faults injected: arbitration losses",
    FAULTS_DROP_STOP: faults_drop_stop, "Random faults injected: transfers without a final STOP",
    FAULTS_CORRUPT: faults_corrupt, "Random faults injected: inverted bytes",
    FAULTS_DELAY: faults_delay, "Random faults injected: delays",
}

macro_rules! frames_to {
    ($($ident:ident: $name:ident,)*) => {
        $(module_param_int! {
            /// Write messages the target on this adapter received.
            static $ident: $name = 0, 0, i32::MAX, perm: 0o444,
                "Write messages delivered to this adapter's target (general calls: those naming it)",
        })*

        /// The delivery counters, indexed by adapter.
        static FRAMES_TO: [&Param; crate::wire::MAX_ADAPTERS] = [$(&$ident,)*];
    };
}

frames_to! {
    FRAMES_TO_0: frames_to_0,
    FRAMES_TO_1: frames_to_1,
    FRAMES_TO_2: frames_to_2,
    FRAMES_TO_3: frames_to_3,
    FRAMES_TO_4: frames_to_4,
    FRAMES_TO_5: frames_to_5,
    FRAMES_TO_6: frames_to_6,
    FRAMES_TO_7: frames_to_7,
}

/// Adds one to a counter. Callers serialise the updates of each counter (the fault counters
/// are updated by the master that holds the wire's bus, the delivery counters under its state
/// lock).
fn bump(p: &Param) {
    p.replace(p.get().saturating_add(1));
}

/// A random number below `n` (`n > 0`).
fn below(n: u32) -> u32 {
    // SAFETY: `get_random_u32` has no requirements; it may be called from any context.
    let r = unsafe { bindings::get_random_u32() };
    // A multiply-shift keeps the arithmetic 32-bit friendly (no 64-bit division on ARM).
    ((u64::from(r) * u64::from(n)) >> 32) as u32
}

/// The random fault drawn for one transfer.
#[derive(Clone, Copy, Default)]
pub(crate) struct Fault {
    kind: Kind,
    /// For [`Kind::Delay`]: microseconds.
    delay_us: u32,
    /// For [`Kind::Corrupt`]: a random number the byte index is taken from.
    pick: u32,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    None,
    Nak,
    ArbLost,
    DropStop,
    Corrupt,
    Delay,
}

impl Fault {
    /// Draws the fault of the next transfer (none unless `fault_permille` says so).
    pub(crate) fn pick() -> Self {
        let permille = u32::try_from(FAULT_PERMILLE.get()).unwrap_or(0);
        if permille == 0 || below(1000) >= permille {
            return Self::default();
        }
        let kind = match below(5) {
            0 => Kind::Nak,
            1 => Kind::ArbLost,
            2 => Kind::DropStop,
            3 => Kind::Corrupt,
            _ => Kind::Delay,
        };
        let max = u32::try_from(FAULT_DELAY_MAX_US.get()).unwrap_or(0);
        Self {
            kind,
            delay_us: below(max.saturating_add(1)),
            pick: below(u32::MAX),
        }
    }

    /// Whether the transfer loses arbitration (counted).
    pub(crate) fn arb_lost(&self) -> bool {
        self.counted(Kind::ArbLost, &FAULTS_ARB_LOST)
    }

    /// Whether the transfer is NAKed at the address (counted).
    pub(crate) fn nak(&self) -> bool {
        self.counted(Kind::Nak, &FAULTS_NAK)
    }

    /// Whether the transfer's final STOP is withheld (counted).
    pub(crate) fn drop_stop(&self) -> bool {
        self.counted(Kind::DropStop, &FAULTS_DROP_STOP)
    }

    /// The delay before the delivery in microseconds (counted if not zero).
    pub(crate) fn delay_us(&self) -> i64 {
        if self.counted(Kind::Delay, &FAULTS_DELAY) {
            i64::from(self.delay_us)
        } else {
            0
        }
    }

    /// The index of the byte to invert in a write message of `len` bytes to 7-bit address
    /// `addr`, if this fault corrupts one (counted); never for the general call.
    pub(crate) fn corrupt(&self, addr: u16, len: usize) -> Option<usize> {
        let len = u32::try_from(len).ok().filter(|l| *l > 0)?;
        if addr == crate::wire::GENERAL_CALL || !self.counted(Kind::Corrupt, &FAULTS_CORRUPT) {
            return None;
        }
        usize::try_from(self.pick % len).ok()
    }

    fn counted(&self, kind: Kind, counter: &Param) -> bool {
        if self.kind != kind {
            return false;
        }
        bump(counter);
        true
    }
}

/// Counts a write message delivered to the target of adapter `port`.
pub(crate) fn count_delivery(port: usize) {
    if let Some(p) = FRAMES_TO.get(port) {
        bump(p);
    }
}
