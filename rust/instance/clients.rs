// SPDX-License-Identifier: GPL-2.0

//! The client places of an instance: their inboxes and reply boxes, the registered routes
//! (with the default route), and the reservations of their places.
//!
//! A client is an open file with a place (the first [`MAX_CLIENTS`] files open at a time). Each
//! place has two mailboxes (`instance/clients/mailbox.rs`), allocated when the file is opened:
//! the inbox holds the messages waiting for `IPMB_IOC_RECEIVE` (routed requests and the
//! completions of its asynchronous requests), the reply box the responses to the requests the
//! file sent with `write()`, waiting for its `read()`.
//!
//! This file is the one owner of the reservation rule: every asynchronous request in flight
//! holds one inbox place ([`Clients::reserve`]), released when its completion is delivered into
//! it ([`Clients::complete`]), and every record being copied out to userspace holds its place
//! ([`Clients::take`]) until the copy is done ([`Clients::delivered`]) or has failed and the
//! record is back at the head ([`Clients::put_back`]), in either mailbox. So completions and
//! put-back records always fit; other records ([`Clients::deliver_request`],
//! [`Clients::deliver_reply`]) only take places nobody reserved.
//!
//! Each client also keeps the list of the routes it registered (at most
//! [`MAX_REGISTRATIONS`]), so that releasing its place clears exactly those instead of
//! scanning the whole route table with interrupts off. A place's generation changes whenever
//! a file takes it, so that a note naming a closed file ([`Writer`]) never reaches the next.
//!
//! Everything here runs under `Instance::rx`, in any context: bounded work, no allocation
//! except [`Clients::new`] and [`Inbox::new`]. A closing file's mailboxes are emptied and kept
//! for the next file that opens ([`Clients::release`], [`Clients::reopen`]).

use kernel::prelude::*;

use super::{
    Wake,
    MAX_LEN_LIMIT, //
};
use crate::{
    proto::writers::Writer,
    uapi, //
};

mod mailbox;

use mailbox::Mailbox;

/// Files per instance that can have an inbox (for asynchronous requests and registrations).
pub(crate) const MAX_CLIENTS: usize = 64;
/// Messages an inbox holds.
pub(crate) const INBOX_LEN: usize = 32;
/// Inbox record header: kind, flags, then the id (8 bytes, little endian).
pub(crate) const REC_HDR: usize = 10;
/// Responses a reply box holds: the responses to the file's `write()` requests that it has
/// not read yet.
pub(crate) const REPLY_LEN: usize = 16;
/// Reply record header: the arrival stamp (8 bytes, little endian), see [`Clients::deliver_reply`].
pub(crate) const REPLY_HDR: usize = 8;
/// Registrable (netFn, cmd) pairs: 32 request netFns times 256 commands.
const ROUTES: usize = 32 * 256;
/// (netFn, cmd) pairs one client may hold (`IPMB_IOC_REGISTER` gives `ENOSPC` beyond): every
/// command of one netFn.
pub(crate) const MAX_REGISTRATIONS: usize = 256;

/// Which mailbox of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    /// The inbox, for `IPMB_IOC_RECEIVE`.
    Inbox,
    /// The reply box, for `read()`.
    Replies,
}

/// The mailboxes of one file, and the routes it registered.
///
/// Inbox records are `[kind, flags, id (8 bytes LE), frame...]`; reply records are
/// `[stamp (8 bytes LE), frame...]`.
pub(crate) struct Inbox {
    inbox: Mailbox,
    replies: Mailbox,
    /// The route indices this file registered, in `routes[..registered]`.
    routes: [u16; MAX_REGISTRATIONS],
    registered: usize,
}

impl Inbox {
    /// Allocates the mailboxes for frames of up to `max_len` bytes (process context).
    pub(crate) fn new(max_len: usize) -> Result<KBox<Self>> {
        Ok(KBox::new(
            Self {
                inbox: Mailbox::new(INBOX_LEN, max_len + REC_HDR)?,
                replies: Mailbox::new(REPLY_LEN, max_len + REPLY_HDR)?,
                routes: [0; MAX_REGISTRATIONS],
                registered: 0,
            },
            GFP_KERNEL,
        )?)
    }

    fn mailbox(&mut self, which: Queue) -> &mut Mailbox {
        match which {
            Queue::Inbox => &mut self.inbox,
            Queue::Replies => &mut self.replies,
        }
    }

    /// The route indices this file registered.
    fn registrations(&self) -> &[u16] {
        self.routes.get(..self.registered).unwrap_or(&[])
    }

    /// Empties the mailboxes and forgets the routes, for the next file that opens.
    fn reset(&mut self) {
        self.inbox.clear();
        self.replies.clear();
        self.registered = 0;
    }

    /// True if no message waits for `IPMB_IOC_RECEIVE`.
    pub(crate) fn is_empty(&self) -> bool {
        self.inbox.is_empty()
    }
}

/// Builds the inbox record of frame `f` in `buf`; `None` if it does not fit.
fn record<'a>(
    buf: &'a mut [u8; MAX_LEN_LIMIT + REC_HDR],
    kind: u8,
    flags: u8,
    id: u64,
    f: &[u8],
) -> Option<&'a [u8]> {
    buf.get_mut(REC_HDR..REC_HDR + f.len())?.copy_from_slice(f);
    buf[0] = kind;
    buf[1] = flags;
    buf[2..REC_HDR].copy_from_slice(&id.to_le_bytes());
    buf.get(..REC_HDR + f.len())
}

/// Index of the route of (`netfn`, `cmd`).
fn route_index(netfn: u8, cmd: u8) -> usize {
    usize::from(netfn >> 1) * 256 + usize::from(cmd)
}

/// Where a response to a `write()` request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Into the reply box of this place.
    Delivered(usize),
    /// Nowhere: the file that wrote the request was closed.
    Gone,
    /// Nowhere: the file's reply box is full.
    Full,
}

/// Where a file being opened goes without allocating ([`Clients::reopen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reopen {
    /// Into this place, with the mailboxes a closed file left.
    Place(usize),
    /// Nowhere: every place is taken.
    NoPlace,
    /// A place is free, but no mailboxes are spare: [`Clients::open`] with new ones.
    NoSpare,
}

/// The client places and the routes of an instance.
pub(crate) struct Clients {
    /// Per client place: its mailboxes, or `None` if the place is free.
    places: KVec<Option<KBox<Inbox>>>,
    /// The mailboxes of closed files, emptied, for the next files that open: closing a file
    /// frees nothing, and opening one allocates only past the most files that had a place at
    /// the same time so far. There is room for [`MAX_CLIENTS`], so it never allocates; freed
    /// with the instance.
    spare: KVec<KBox<Inbox>>,
    /// Per client place: its generation, changed whenever a file takes the place.
    gens: [u32; MAX_CLIENTS],
    /// Per (netFn / 2, cmd): the registered client's index + 1, or 0.
    routes: KVVec<u8>,
    /// The default route: its client's index + 1, or 0.
    default: u8,
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
            spare: KVec::with_capacity(MAX_CLIENTS, GFP_KERNEL)?,
            gens: [0; MAX_CLIENTS],
            routes: KVVec::from_elem(0u8, ROUTES, GFP_KERNEL)?,
            default: 0,
        })
    }

    /// Moves `inbox` into the first free place, if there is one, and returns that place.
    pub(crate) fn open(&mut self, inbox: &mut Option<KBox<Inbox>>) -> Option<usize> {
        let free = self.places.iter().position(Option::is_none)?;
        self.take_place(free, inbox.take())
    }

    /// Takes the first free place with spare mailboxes, if there are both.
    pub(crate) fn reopen(&mut self) -> Reopen {
        let Some(free) = self.places.iter().position(Option::is_none) else {
            return Reopen::NoPlace;
        };
        let Some(inbox) = self.spare.pop() else {
            return Reopen::NoSpare;
        };
        match self.take_place(free, Some(inbox)) {
            Some(c) => Reopen::Place(c),
            None => Reopen::NoPlace,
        }
    }

    /// Puts `inbox` into the free place `free` for a new file.
    fn take_place(&mut self, free: usize, inbox: Option<KBox<Inbox>>) -> Option<usize> {
        let place = self.places.get_mut(free)?;
        *place = inbox;
        if let Some(gen) = self.gens.get_mut(free) {
            *gen = gen.wrapping_add(1);
        }
        Some(free)
    }

    /// True if client `c`'s inbox has places reserved: for its asynchronous requests in
    /// flight, or for a record being copied out. Without, it has no request in flight.
    pub(crate) fn has_reservations(&self, c: usize) -> bool {
        matches!(self.places.get(c), Some(Some(i)) if i.inbox.has_reservations())
    }

    /// Frees place `c`, with the routes it registered, and keeps its mailboxes, emptied, for
    /// the next file ([`Self::reopen`]). At most [`MAX_REGISTRATIONS`] steps. Returns the
    /// mailboxes if there was no room to keep them (which does not happen), to be dropped
    /// outside the IRQ-disabling lock.
    pub(crate) fn release(&mut self, c: usize) -> Option<KBox<Inbox>> {
        let mut inbox = self.places.get_mut(c).and_then(Option::take)?;
        for &r in inbox.registrations() {
            if let Some(slot) = self.routes.get_mut(usize::from(r)) {
                *slot = 0;
            }
        }
        if usize::from(self.default) == c + 1 {
            self.default = 0;
        }
        inbox.reset();
        // There is room: every set of mailboxes is in a place or here, and there are
        // `MAX_CLIENTS` places.
        self.spare.push_within_capacity(inbox).err().map(|e| e.0)
    }

    /// The places taken, as bits (place `c` is bit `c`).
    pub(crate) fn taken(&self) -> u64 {
        const { assert!(MAX_CLIENTS <= 64) };
        self.places
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .fold(0, |bits, (c, _)| bits | 1u64 << c)
    }

    /// The mailboxes of place `c`, if the place is taken.
    #[inline]
    pub(crate) fn inbox(&mut self, c: usize) -> Option<&mut Inbox> {
        self.places.get_mut(c)?.as_deref_mut()
    }

    /// The number of responses waiting in client `c`'s reply box.
    pub(crate) fn replies_queued(&self, c: usize) -> usize {
        match self.places.get(c) {
            Some(Some(i)) => i.replies.len(),
            _ => 0,
        }
    }

    /// The number of records waiting in all mailboxes (inboxes and reply boxes).
    pub(crate) fn queued(&self) -> usize {
        self.places
            .iter()
            .flatten()
            .map(|i| i.inbox.len() + i.replies.len())
            .sum()
    }

    /// The client a request for (`netfn`, `cmd`) goes to: the one that registered the pair,
    /// else the one that holds the default route, if any.
    pub(crate) fn route(&self, netfn: u8, cmd: u8) -> Option<usize> {
        match self.routes.get(route_index(netfn, cmd)) {
            Some(&c) if c != 0 => Some(usize::from(c) - 1),
            _ => usize::from(self.default).checked_sub(1),
        }
    }

    /// Registers (`add`) or unregisters (`netfn`, `cmd`) for client `c`: `EBUSY` if another
    /// client has it, `ENOSPC` if `c` holds [`MAX_REGISTRATIONS`] pairs already, `ENOENT` to
    /// unregister a pair `c` does not have, `EMFILE` if `c` has no place.
    pub(crate) fn register(&mut self, c: usize, netfn: u8, cmd: u8, add: bool) -> Result {
        let index = route_index(netfn, cmd);
        let slot = self.routes.get_mut(index).ok_or(EINVAL)?;
        let inbox = self.places.get_mut(c).and_then(|p| p.as_deref_mut());
        let inbox = inbox.ok_or(EMFILE)?;
        // At most `MAX_CLIENTS` (64) and `ROUTES` (8192).
        let (tag, index) = (c as u8 + 1, index as u16);
        match (add, *slot) {
            (true, 0) => {
                let free = inbox.routes.get_mut(inbox.registered).ok_or(ENOSPC)?;
                *free = index;
                inbox.registered += 1;
                *slot = tag;
            }
            (true, t) if t == tag => {}
            (true, _) => return Err(EBUSY),
            (false, t) if t == tag => {
                let held = inbox.registrations().iter().position(|&r| r == index);
                if let Some(i) = held {
                    inbox.registered -= 1;
                    inbox.routes.swap(i, inbox.registered);
                }
                *slot = 0;
            }
            (false, _) => return Err(ENOENT),
        }
        Ok(())
    }

    /// Takes (`add`) or gives up the default route for client `c`: `EBUSY` if another client
    /// has it, `ENOENT` to give up a default route `c` does not have, `EMFILE` if `c` has no
    /// place.
    pub(crate) fn register_default(&mut self, c: usize, add: bool) -> Result {
        if self.inbox(c).is_none() {
            return Err(EMFILE);
        }
        // At most `MAX_CLIENTS` (64).
        let tag = c as u8 + 1;
        match (add, self.default) {
            (true, 0) => self.default = tag,
            (true, t) if t == tag => {}
            (true, _) => return Err(EBUSY),
            (false, t) if t == tag => self.default = 0,
            (false, _) => return Err(ENOENT),
        }
        Ok(())
    }

    /// Checks that client `c` can reserve an inbox place for an asynchronous request: `EMFILE`
    /// without an inbox, `EAGAIN` if it is full.
    pub(crate) fn can_reserve(&mut self, c: usize) -> Result {
        match self.inbox(c) {
            Some(inbox) if inbox.inbox.has_room() => Ok(()),
            Some(_) => Err(EAGAIN),
            None => Err(EMFILE),
        }
    }

    /// Reserves an inbox place of client `c` for an asynchronous request, once
    /// [`Self::can_reserve`] said it can.
    pub(crate) fn reserve(&mut self, c: usize) {
        if let Some(inbox) = self.inbox(c) {
            inbox.inbox.reserve();
        }
    }

    /// Delivers a routed request to client `c`'s inbox, in a place nobody reserved; false if
    /// there is none.
    pub(crate) fn deliver_request(&mut self, c: usize, flags: u8, f: &[u8]) -> bool {
        let mut buf = [0u8; MAX_LEN_LIMIT + REC_HDR];
        match (
            self.inbox(c),
            record(&mut buf, uapi::KIND_REQUEST, flags, 0, f),
        ) {
            (Some(inbox), Some(rec)) => inbox.inbox.deliver(rec),
            _ => false,
        }
    }

    /// Delivers the completion of client `c`'s asynchronous request `id` into the place
    /// reserved for it; false if `c` has no inbox (or, which cannot happen, it is full).
    pub(crate) fn complete(&mut self, c: usize, id: u64, flags: u8, f: &[u8]) -> bool {
        let mut buf = [0u8; MAX_LEN_LIMIT + REC_HDR];
        match (
            self.inbox(c),
            record(&mut buf, uapi::KIND_RESPONSE, flags, id, f),
        ) {
            (Some(inbox), Some(rec)) => inbox.inbox.complete(rec),
            (Some(inbox), None) => {
                // Give the reservation back all the same.
                inbox.inbox.delivered();
                false
            }
            _ => false,
        }
    }

    /// The file that holds place `c` now, as a note of its `write()` requests names it.
    pub(crate) fn writer(&self, c: usize) -> Option<Writer> {
        self.places.get(c)?.as_ref()?;
        Some(Writer {
            // At most `MAX_CLIENTS` (64).
            place: c as u8,
            gen: *self.gens.get(c)?,
        })
    }

    /// Delivers the response `f` to a `write()` request of `w` into its reply box, in a place
    /// nobody reserved, stamped with `stamp` (the number of frames the `read()` queue had taken
    /// in when it arrived, so that `read()` returns both in arrival order).
    pub(crate) fn deliver_reply(&mut self, w: Writer, stamp: u64, f: &[u8]) -> Reply {
        let c = usize::from(w.place);
        if self.gens.get(c) != Some(&w.gen) {
            return Reply::Gone;
        }
        let Some(inbox) = self.inbox(c) else {
            return Reply::Gone;
        };
        let mut buf = [0u8; MAX_LEN_LIMIT + REPLY_HDR];
        let Some(dst) = buf.get_mut(REPLY_HDR..REPLY_HDR + f.len()) else {
            return Reply::Full;
        };
        dst.copy_from_slice(f);
        buf[..REPLY_HDR].copy_from_slice(&stamp.to_le_bytes());
        if inbox.replies.deliver(&buf[..REPLY_HDR + f.len()]) {
            Reply::Delivered(c)
        } else {
            Reply::Full
        }
    }

    /// The stamp of the oldest response in client `c`'s reply box, if one waits.
    #[inline]
    pub(crate) fn reply_stamp(&mut self, c: usize) -> Option<u64> {
        let rec = self.inbox(c)?.replies.peek()?;
        let mut stamp = [0u8; REPLY_HDR];
        stamp.copy_from_slice(rec.get(..REPLY_HDR)?);
        Some(u64::from_le_bytes(stamp))
    }

    /// The length of the oldest record in client `c`'s reply box (its stamp included), if one
    /// waits.
    pub(crate) fn reply_len(&mut self, c: usize) -> Option<usize> {
        Some(self.inbox(c)?.replies.peek()?.len())
    }

    /// Takes the oldest record of mailbox `which` of client `c` into `out`; returns its
    /// length. Its place stays reserved until [`Self::delivered`] or [`Self::put_back`],
    /// whichever the copy to userspace calls for.
    pub(crate) fn take(&mut self, c: usize, which: Queue, out: &mut [u8]) -> Option<usize> {
        self.inbox(c)?.mailbox(which).take(out)
    }

    /// Ends a [`Self::take`] whose record reached userspace: frees its place.
    pub(crate) fn delivered(&mut self, c: usize, which: Queue) {
        if let Some(inbox) = self.inbox(c) {
            inbox.mailbox(which).delivered();
        }
    }

    /// Ends a [`Self::take`] whose copy to userspace failed: puts record `rec` back at the head
    /// of mailbox `which` of client `c`, in the place kept for it, and has the file's waiters
    /// woken (one may have found the mailbox empty meanwhile). False if it could not: `c` has
    /// no mailboxes (a file that took a record has them) or no room (the kept place rules that
    /// out).
    pub(crate) fn put_back(&mut self, c: usize, which: Queue, rec: &[u8], wake: &mut Wake) -> bool {
        let Some(inbox) = self.inbox(c) else {
            return false;
        };
        match which {
            Queue::Inbox => wake.client = Some(c),
            // No access to the count of blocked readers here: wake them too (a failed copy
            // to userspace, rare).
            Queue::Replies => {
                wake.read = true;
                wake.read_blocked = true;
            }
        }
        inbox.mailbox(which).put_back(rec)
    }
}

#[cfg(CONFIG_KUNIT)]
mod tests;
