// SPDX-License-Identifier: GPL-2.0

//! The client places of an instance: their inboxes, the registered (netFn, cmd) routes, and the
//! inbox reservations of asynchronous requests.
//!
//! A client is an open file with a place (the first [`MAX_CLIENTS`] files open at a time). Its
//! inbox holds the messages waiting for `IPMB_IOC_RECEIVE`: routed requests and the completions
//! of its asynchronous requests. This file is the one owner of the reservation rule: every
//! asynchronous request in flight holds one inbox place ([`Clients::reserve`]), released when
//! its completion is delivered into it ([`Clients::complete`]), and so does every message
//! being copied out to userspace ([`Clients::take`]), until the copy is done
//! ([`Clients::delivered`]) or has failed and the message is back at the head
//! ([`Clients::put_back`]). So completions and put-back messages always fit; other messages
//! ([`Clients::deliver_request`]) only take places nobody reserved.
//!
//! Each client also keeps the list of the routes it registered (at most
//! [`MAX_REGISTRATIONS`]), so that releasing its place clears exactly those instead of
//! scanning the whole route table with interrupts off.
//!
//! Everything here runs under `Instance::rx`, in any context: bounded work, no allocation
//! except [`Clients::new`] and [`Inbox::new`].

use kernel::prelude::*;

use super::{
    Storage,
    Wake,
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
/// (netFn, cmd) pairs one client may hold (`IPMB_IOC_REGISTER` gives `ENOSPC` beyond): every
/// command of one netFn.
pub(crate) const MAX_REGISTRATIONS: usize = 256;

/// The messages waiting for `IPMB_IOC_RECEIVE` on one file, and the routes it registered.
///
/// Records are `[kind, flags, id (8 bytes LE), frame...]`. `outstanding` inbox places are
/// reserved: for the file's asynchronous requests in flight, so their completions always fit,
/// and for the messages being copied out to userspace, so they can go back if the copy fails.
pub(crate) struct Inbox {
    ring: FrameRing<Storage>,
    outstanding: usize,
    /// The route indices this file registered, in `routes[..registered]`.
    routes: [u16; MAX_REGISTRATIONS],
    registered: usize,
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
                routes: [0; MAX_REGISTRATIONS],
                registered: 0,
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

    /// The route indices this file registered.
    fn registrations(&self) -> &[u16] {
        self.routes.get(..self.registered).unwrap_or(&[])
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

    /// Frees place `c`, with the routes it registered, and returns its inbox, to be dropped
    /// outside the IRQ-disabling lock. At most [`MAX_REGISTRATIONS`] steps.
    pub(crate) fn release(&mut self, c: usize) -> Option<KBox<Inbox>> {
        let inbox = self.places.get_mut(c).and_then(Option::take)?;
        for &r in inbox.registrations() {
            if let Some(slot) = self.routes.get_mut(usize::from(r)) {
                *slot = 0;
            }
        }
        Some(inbox)
    }

    /// The inbox of place `c`, if the place is taken.
    pub(crate) fn inbox(&mut self, c: usize) -> Option<&mut Inbox> {
        self.places.get_mut(c)?.as_deref_mut()
    }

    /// The number of records waiting in all inboxes.
    pub(crate) fn queued(&self) -> usize {
        self.places.iter().flatten().map(|i| i.ring.len()).sum()
    }

    /// The client that registered (`netfn`, `cmd`), if any.
    pub(crate) fn route(&self, netfn: u8, cmd: u8) -> Option<usize> {
        match self.routes.get(route_index(netfn, cmd)) {
            Some(&c) if c != 0 => Some(usize::from(c) - 1),
            _ => None,
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

    /// Takes the oldest record of client `c`'s inbox into `out` for `IPMB_IOC_RECEIVE`;
    /// returns its length. Its place stays reserved until [`Self::delivered`] or
    /// [`Self::put_back`], whichever the copy to userspace calls for.
    pub(crate) fn take(&mut self, c: usize, out: &mut [u8]) -> Option<usize> {
        let inbox = self.inbox(c)?;
        let n = inbox.ring.pop_into(out)?;
        inbox.outstanding += 1;
        Some(n)
    }

    /// Ends a [`Self::take`] whose record reached userspace: frees its place.
    pub(crate) fn delivered(&mut self, c: usize) {
        if let Some(inbox) = self.inbox(c) {
            inbox.outstanding = inbox.outstanding.saturating_sub(1);
        }
    }

    /// Ends a [`Self::take`] whose copy to userspace failed: puts record `rec` back at the head
    /// of client `c`'s inbox, in the place kept for it, and has the file's waiters woken (one
    /// may have found the inbox empty meanwhile). False if it could not: `c` has no inbox (a
    /// file that took a record has one) or no room (the kept place rules that out).
    pub(crate) fn put_back(&mut self, c: usize, rec: &[u8], wake: &mut Wake) -> bool {
        let Some(inbox) = self.inbox(c) else {
            return false;
        };
        inbox.outstanding = inbox.outstanding.saturating_sub(1);
        wake.client = Some(c);
        inbox.ring.push_front(rec).is_ok()
    }
}

#[cfg(CONFIG_KUNIT)]
#[kunit_tests(ipmb_clients)]
mod tests {
    use super::*;
    use crate::proto::frame::{
        self,
        Header, //
    };

    const APP: u8 = 0x06;

    /// Clients with `n` places taken; returns them and the places.
    fn clients(n: usize) -> Result<(Clients, KVec<usize>)> {
        let mut clients = Clients::new()?;
        let mut places = KVec::new();
        for _ in 0..n {
            let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
            let c = clients.open(&mut inbox).ok_or(ENOSPC)?;
            places.push(c, GFP_KERNEL)?;
        }
        Ok((clients, places))
    }

    /// A request from 0x72 to 0x20 for NetFn App, `cmd`.
    fn request(cmd: u8) -> Result<([u8; 7], usize)> {
        let hdr = Header {
            dest: 0x20,
            netfn: APP,
            dest_lun: 0,
            src: 0x72,
            seq: 1,
            src_lun: 0,
            cmd,
        };
        let mut f = [0u8; 7];
        let n = frame::build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    #[test]
    fn release_clears_only_its_routes() -> Result {
        let (mut cl, p) = clients(2)?;
        cl.register(p[0], APP, 1, true)?;
        cl.register(p[0], APP, 2, true)?;
        cl.register(p[1], APP, 3, true)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        let routes = [cl.route(APP, 1), cl.route(APP, 2), cl.route(APP, 3)];
        assert_eq!(routes, [None, None, Some(p[1])]);
        Ok(())
    }

    #[test]
    fn unregistered_route_not_cleared_by_release() -> Result {
        // A pair the file gave up and another file took stays the other file's.
        let (mut cl, p) = clients(2)?;
        cl.register(p[0], APP, 1, true)?;
        cl.register(p[0], APP, 1, false)?;
        cl.register(p[1], APP, 1, true)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        assert_eq!(cl.route(APP, 1), Some(p[1]));
        Ok(())
    }

    #[test]
    fn registrations_bounded() -> Result {
        let (mut cl, p) = clients(1)?;
        for i in 0..MAX_REGISTRATIONS {
            cl.register(p[0], APP, i as u8, true)?;
        }
        assert!(cl.register(p[0], 0x30, 0, true) == Err(ENOSPC));
        Ok(())
    }

    #[test]
    fn unregister_frees_a_registration() -> Result {
        let (mut cl, p) = clients(1)?;
        for i in 0..MAX_REGISTRATIONS {
            cl.register(p[0], APP, i as u8, true)?;
        }
        cl.register(p[0], APP, 7, false)?;
        assert!(cl.register(p[0], 0x30, 0, true).is_ok());
        Ok(())
    }

    /// Delivers `count` routed requests (App, cmd 1) to client `c`; returns the frame.
    fn fill(cl: &mut Clients, c: usize, count: usize) -> Result<([u8; 7], usize)> {
        let (f, n) = request(1)?;
        for _ in 0..count {
            cl.deliver_request(c, 0, &f[..n]);
        }
        Ok((f, n))
    }

    /// Takes the oldest record of client `c` as `IPMB_IOC_RECEIVE` does.
    fn take(cl: &mut Clients, c: usize) -> ([u8; MAX_LEN_LIMIT + REC_HDR], usize) {
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let len = cl.take(c, &mut rec).unwrap_or(0);
        (rec, len)
    }

    #[test]
    fn completion_fits_after_a_failed_receive() -> Result {
        // An inbox full of routed requests plus one place reserved for an asynchronous
        // request. A receive takes a request, a routed request arrives while it is copied
        // out, the copy fails and the request goes back: the completion still fits.
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        cl.can_reserve(c)?;
        cl.reserve(c);
        let (f, n) = fill(&mut cl, c, INBOX_LEN - 1)?;
        let (rec, len) = take(&mut cl, c);
        cl.deliver_request(c, 0, &f[..n]);
        cl.put_back(c, &rec[..len], &mut Wake::default());
        let completed = cl.complete(c, 1, 0, &f[..n]);
        assert!(completed);
        Ok(())
    }

    #[test]
    fn routed_request_refused_while_receive_holds_the_place() -> Result {
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        let (f, n) = fill(&mut cl, c, INBOX_LEN)?;
        let (rec, len) = take(&mut cl, c);
        let taken = cl.deliver_request(c, 0, &f[..n]);
        cl.put_back(c, &rec[..len], &mut Wake::default());
        assert!(!taken);
        Ok(())
    }

    #[test]
    fn put_back_wakes_the_file() -> Result {
        let (mut cl, p) = clients(2)?;
        let c = p[1];
        fill(&mut cl, c, 1)?;
        let (rec, len) = take(&mut cl, c);
        let mut wake = Wake::default();
        cl.put_back(c, &rec[..len], &mut wake);
        assert_eq!(wake.client, Some(c));
        Ok(())
    }

    #[test]
    fn delivered_frees_the_place() -> Result {
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        let (f, n) = fill(&mut cl, c, INBOX_LEN)?;
        take(&mut cl, c);
        cl.delivered(c);
        let taken = cl.deliver_request(c, 0, &f[..n]);
        assert!(taken);
        Ok(())
    }
}
