// SPDX-License-Identifier: GPL-2.0

//! The client places of an instance: their inboxes, the registered (netFn, cmd) routes, and the
//! inbox reservations of asynchronous requests.
//!
//! A client is an open file with a place (the first [`MAX_CLIENTS`] files open at a time). Its
//! inbox holds the messages waiting for `IPMB_IOC_RECEIVE`: routed requests and the completions
//! of its asynchronous requests. This file is the one owner of the reservation rule: every
//! asynchronous request in flight holds one inbox place ([`Clients::reserve`]), released when
//! its completion is delivered into it ([`Clients::complete`]), so completions always fit;
//! other messages ([`Clients::deliver_request`]) only take places nobody reserved.
//!
//! Everything here runs under `Instance::rx`, in any context: bounded work, no allocation
//! except [`Clients::new`] and [`Inbox::new`].

use kernel::prelude::*;

use super::{
    Storage,
    MAX_LEN_LIMIT, //
};
use crate::{
    proto::ring::FrameRing,
    uapi, //
};

/// Files per instance that can have an inbox (for asynchronous requests and registrations).
pub(crate) const MAX_CLIENTS: usize = 64;
/// Messages an inbox holds.
pub(crate) const INBOX_LEN: usize = 32;
/// Inbox record header: kind, flags, then the id (8 bytes, little endian).
pub(crate) const REC_HDR: usize = 10;
/// Registrable (netFn, cmd) pairs: 32 request netFns times 256 commands.
const ROUTES: usize = 32 * 256;

/// The messages waiting for `IPMB_IOC_RECEIVE` on one file.
///
/// Records are `[kind, flags, id (8 bytes LE), frame...]`. `outstanding` inbox places are
/// reserved for the file's asynchronous requests in flight, so their completions always fit.
pub(crate) struct Inbox {
    ring: FrameRing<Storage>,
    outstanding: usize,
}

impl Inbox {
    /// Allocates an inbox for frames of up to `max_len` bytes (process context).
    pub(crate) fn new(max_len: usize) -> Result<KBox<Self>> {
        let slot = max_len + REC_HDR;
        let storage = Storage::new(FrameRing::<Storage>::storage_len(INBOX_LEN, slot))?;
        let ring = FrameRing::new(storage, INBOX_LEN, slot).ok_or(EINVAL)?;
        Ok(KBox::new(
            Self {
                ring,
                outstanding: 0,
            },
            GFP_KERNEL,
        )?)
    }

    /// Room for a message that has no reservation.
    fn has_room(&self) -> bool {
        self.ring.len() + self.outstanding < self.ring.capacity()
    }

    fn push(&mut self, kind: u8, flags: u8, id: u64, f: &[u8]) -> bool {
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let Some(dst) = rec.get_mut(REC_HDR..REC_HDR + f.len()) else {
            return false;
        };
        dst.copy_from_slice(f);
        rec[0] = kind;
        rec[1] = flags;
        rec[2..REC_HDR].copy_from_slice(&id.to_le_bytes());
        self.ring.push(&rec[..REC_HDR + f.len()]).is_ok()
    }

    /// Takes the oldest record into `out`; returns its length.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<usize> {
        self.ring.pop_into(out)
    }

    /// True if no record waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// Index of the route of (`netfn`, `cmd`).
fn route_index(netfn: u8, cmd: u8) -> usize {
    usize::from(netfn >> 1) * 256 + usize::from(cmd)
}

/// The client places and the routes of an instance.
pub(crate) struct Clients {
    /// Per client place: its inbox, or `None` if the place is free.
    places: KVec<Option<KBox<Inbox>>>,
    /// Per (netFn / 2, cmd): the registered client's index + 1, or 0.
    routes: KVVec<u8>,
}

impl Clients {
    /// Allocates [`MAX_CLIENTS`] free places and an empty route table (process context).
    pub(crate) fn new() -> Result<Self> {
        let mut places = KVec::with_capacity(MAX_CLIENTS, GFP_KERNEL)?;
        for _ in 0..MAX_CLIENTS {
            places.push(None, GFP_KERNEL)?;
        }
        Ok(Self {
            places,
            routes: KVVec::from_elem(0u8, ROUTES, GFP_KERNEL)?,
        })
    }

    /// Moves `inbox` into the first free place, if there is one, and returns that place.
    pub(crate) fn open(&mut self, inbox: &mut Option<KBox<Inbox>>) -> Option<usize> {
        let free = self.places.iter().position(Option::is_none);
        if let Some(place) = free.and_then(|c| self.places.get_mut(c)) {
            *place = inbox.take();
        }
        free
    }

    /// Frees place `c` and returns its inbox, to be dropped outside the IRQ-disabling lock.
    pub(crate) fn release(&mut self, c: usize) -> Option<KBox<Inbox>> {
        self.places.get_mut(c).and_then(Option::take)
    }

    /// The inbox of place `c`, if the place is taken.
    pub(crate) fn inbox(&mut self, c: usize) -> Option<&mut Inbox> {
        self.places.get_mut(c)?.as_deref_mut()
    }

    /// The client that registered (`netfn`, `cmd`), if any.
    pub(crate) fn route(&self, netfn: u8, cmd: u8) -> Option<usize> {
        match self.routes.get(route_index(netfn, cmd)) {
            Some(&c) if c != 0 => Some(usize::from(c) - 1),
            _ => None,
        }
    }

    /// Registers (`add`) or unregisters (`netfn`, `cmd`) for client `c`: `EBUSY` if another
    /// client has it, `ENOENT` to unregister a pair `c` does not have.
    pub(crate) fn register(&mut self, c: usize, netfn: u8, cmd: u8, add: bool) -> Result {
        let slot = self.routes.get_mut(route_index(netfn, cmd)).ok_or(EINVAL)?;
        // At most `MAX_CLIENTS` (64).
        let tag = c as u8 + 1;
        match (add, *slot) {
            (true, 0) => *slot = tag,
            (true, t) if t == tag => {}
            (true, _) => return Err(EBUSY),
            (false, t) if t == tag => *slot = 0,
            (false, _) => return Err(ENOENT),
        }
        Ok(())
    }

    /// Removes every route of client `c`.
    pub(crate) fn unroute(&mut self, c: usize) {
        // At most `MAX_CLIENTS` (64).
        let tag = c as u8 + 1;
        for r in self.routes.iter_mut().filter(|r| **r == tag) {
            *r = 0;
        }
    }

    /// Checks that client `c` can reserve an inbox place for an asynchronous request: `EMFILE`
    /// without an inbox, `EAGAIN` if it is full.
    pub(crate) fn can_reserve(&mut self, c: usize) -> Result {
        match self.inbox(c) {
            Some(inbox) if inbox.has_room() => Ok(()),
            Some(_) => Err(EAGAIN),
            None => Err(EMFILE),
        }
    }

    /// Reserves an inbox place of client `c` for an asynchronous request, once
    /// [`Self::can_reserve`] said it can.
    pub(crate) fn reserve(&mut self, c: usize) {
        if let Some(inbox) = self.inbox(c) {
            inbox.outstanding += 1;
        }
    }

    /// Delivers a routed request to client `c`'s inbox, in a place nobody reserved; false if
    /// there is none.
    pub(crate) fn deliver_request(&mut self, c: usize, flags: u8, f: &[u8]) -> bool {
        match self.inbox(c) {
            Some(inbox) if inbox.has_room() => inbox.push(uapi::KIND_REQUEST, flags, 0, f),
            _ => false,
        }
    }

    /// Delivers the completion of client `c`'s asynchronous request `id` into the place
    /// reserved for it; false if `c` has no inbox (or, which cannot happen, it is full).
    pub(crate) fn complete(&mut self, c: usize, id: u64, flags: u8, f: &[u8]) -> bool {
        let Some(inbox) = self.inbox(c) else {
            return false;
        };
        inbox.outstanding = inbox.outstanding.saturating_sub(1);
        inbox.push(uapi::KIND_RESPONSE, flags, id, f)
    }

    /// Puts record `rec` back at the head of client `c`'s inbox (a receive that could not copy
    /// it out); false if it no longer fits.
    pub(crate) fn requeue(&mut self, c: usize, rec: &[u8]) -> bool {
        self.inbox(c)
            .is_some_and(|inbox| inbox.ring.push_front(rec).is_ok())
    }
}
