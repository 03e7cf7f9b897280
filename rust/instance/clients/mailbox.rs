// SPDX-License-Identifier: GPL-2.0

//! A mailbox of one client: a bounded FIFO of records in storage allocated at open, with the
//! reservation rule of `instance/clients.rs`.
//!
//! `outstanding` places are reserved: for records that must always fit when they come (the
//! completions of asynchronous requests), and for records being copied out to userspace, so
//! they can go back to the head if the copy fails. Other records only take places nobody
//! reserved. Everything here runs under `Instance::rx`: bounded work, no allocation except
//! [`Mailbox::new`].

use kernel::prelude::*;

use crate::{
    instance::Storage,
    proto::ring::FrameRing, //
};

/// A FIFO of up to `len` records with its reservations.
pub(crate) struct Mailbox {
    ring: FrameRing<Storage>,
    outstanding: usize,
}

impl Mailbox {
    /// Allocates a mailbox of `len` records of up to `slot` bytes (process context).
    pub(super) fn new(len: usize, slot: usize) -> Result<Self> {
        let storage = Storage::new(FrameRing::<Storage>::storage_len(len, slot))?;
        Ok(Self {
            ring: FrameRing::new(storage, len, slot).ok_or(EINVAL)?,
            outstanding: 0,
        })
    }

    /// True if places are reserved: for records that must fit when they come, or records being
    /// copied out.
    pub(super) fn has_reservations(&self) -> bool {
        self.outstanding != 0
    }

    /// Empties the mailbox and drops its reservations, for the next file that takes it.
    pub(super) fn clear(&mut self) {
        self.ring.clear();
        self.outstanding = 0;
    }

    /// Room for a record that has no reservation.
    pub(super) fn has_room(&self) -> bool {
        self.ring.len() + self.outstanding < self.ring.capacity()
    }

    /// Appends `rec` in a place nobody reserved; false if there is none.
    pub(super) fn deliver(&mut self, rec: &[u8]) -> bool {
        self.has_room() && self.ring.push(rec).is_ok()
    }

    /// Reserves a place for a record that must fit when it comes ([`Self::complete`]).
    pub(super) fn reserve(&mut self) {
        self.outstanding += 1;
    }

    /// Appends `rec` in the place reserved for it.
    pub(super) fn complete(&mut self, rec: &[u8]) -> bool {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.ring.push(rec).is_ok()
    }

    /// Takes the oldest record into `out`; returns its length. Its place stays reserved until
    /// [`Self::delivered`] or [`Self::put_back`].
    pub(super) fn take(&mut self, out: &mut [u8]) -> Option<usize> {
        let n = self.ring.pop_into(out)?;
        self.outstanding += 1;
        Some(n)
    }

    /// Ends a [`Self::take`] whose record reached userspace: frees its place.
    pub(super) fn delivered(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    /// Ends a [`Self::take`] whose copy failed: puts `rec` back at the head, in the place kept
    /// for it.
    pub(super) fn put_back(&mut self, rec: &[u8]) -> bool {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.ring.push_front(rec).is_ok()
    }

    /// The oldest record, without taking it.
    pub(super) fn peek(&self) -> Option<&[u8]> {
        self.ring.peek()
    }

    /// The number of records waiting.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// True if no record waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}
