// SPDX-License-Identifier: GPL-2.0

//! Responses to the requests files send with `write()`: the note of each request's writer, and
//! the two queues `read()` takes frames from.
//!
//! A child of `instance`, under the rules of `rust/instance.rs`. `write()` of a request notes
//! its writer (`proto/writers.rs`) under `Instance::tx`, just before the first try, so that
//! the notes are in wire order; a request that is not sent takes its note back. The target
//! callback (`instance/irq.rs`) gives a response that no request of the kernel's own matched to
//! the oldest live note of its exchange and seq: into that file's reply box
//! (`instance/clients.rs`), else, as before, to the shared `read()` queue.
//!
//! `read()` takes from both in arrival order: each reply carries a stamp, the number of frames
//! the shared queue had taken in when it arrived, and goes first once the shared queue has
//! given out that many. So a file that is the only reader sees every frame in the order it
//! arrived, as with one queue.

use core::sync::atomic::{
    AtomicUsize,
    Ordering, //
};
use kernel::{
    prelude::*,
    sync::Arc, //
};

use super::{
    clients::{
        Inbox,
        Queue,
        Reply,
        REPLY_HDR, //
    },
    Instance,
    State,
    Wake,
    MAX_LEN_LIMIT, //
};
use crate::proto::{
    frame::Header,
    seqtab::Key, //
};

/// A `read()` buffer: a frame at `REPLY_HDR..`, after room for a reply record's stamp.
pub(crate) type ReadBuf = [u8; REPLY_HDR + MAX_LEN_LIMIT];

/// The records a `read()` can take, counted under `Instance::rx` and read without it: the
/// frames of the shared queue and the responses in the reply boxes, plus [`Pending::DEAD`] once
/// the instance is dead. At zero a `read()` finds nothing, so one with `O_NONBLOCK` returns
/// `EAGAIN` without taking `rx` (`chardev.rs`).
///
/// # Invariants
///
/// The count changes only in `State`'s methods, under `rx`: plain loads and stores, no atomic
/// read-modify-write in the interrupt path. A reader without the lock sees a count at least as
/// new as the last `rx` section it is ordered after: a task that saw a frame under `rx` (in
/// `poll()`) then finds it counted.
#[derive(Clone)]
pub(crate) struct Pending(Arc<AtomicUsize>);

impl Pending {
    /// Added when the instance dies: the count is never zero again, so `read()` takes `rx` and
    /// sees `dead`.
    const DEAD: usize = usize::MAX / 2;

    /// A count of zero (process context: it allocates).
    pub(crate) fn new() -> Result<Self> {
        Ok(Self(Arc::new(AtomicUsize::new(0), GFP_KERNEL)?))
    }

    /// True if a `read()` finds nothing and the instance is alive (any context, no lock).
    #[inline]
    pub(crate) fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }

    /// Adds `n` (under `rx`: only through `&mut State`).
    fn add(&self, n: usize) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }

    /// Subtracts `n` (under `rx`: only through `&mut State`).
    fn sub(&self, n: usize) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_sub(n), Ordering::Relaxed);
    }
}

/// Where the frame `read()` took came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The shared queue.
    Shared,
    /// The reply box of this client place.
    Replies(usize),
}

impl State {
    /// Has the frames' readers woken once `rx` is released: `poll()`, and the callers blocked
    /// in `read()` if there are any now (they count themselves under `rx` before they wait).
    #[inline]
    pub(super) fn for_readers(&self, wake: &mut Wake) {
        wake.read = true;
        wake.read_blocked |= self.blocked_readers != 0;
    }

    /// Queues `f` for every reader (interrupt context); counted as a drop if the queue is full.
    /// The slots of frames that `read()` is copying out count as full.
    pub(super) fn queue_shared(&mut self, f: &[u8], wake: &mut Wake) {
        if self.ring.len() + self.shared_taken >= self.ring.capacity() {
            self.counters.rx_overflow += 1;
            return;
        }
        match self.ring.push(f) {
            Ok(()) => {
                self.shared_in += 1;
                self.pending.add(1);
                self.counters.rx_frames += 1;
                self.for_readers(wake);
            }
            Err(_) => self.counters.rx_overflow += 1,
        }
    }

    /// Gives a response that no kernel request matched to the file that wrote its request, if
    /// a live note names one; true if it went into that file's reply box (interrupt context).
    pub(super) fn deliver_to_writer(&mut self, key: Key, seq: u8, f: &[u8], now: u64) -> bool {
        let Some(w) = self.notes.take(key, seq, now) else {
            return false;
        };
        match self.clients.deliver_reply(w, self.shared_in, f) {
            Reply::Delivered(_) => {
                self.pending.add(1);
                self.counters.rx_frames += 1;
                self.counters.rsp_to_writer += 1;
                return true;
            }
            Reply::Gone => self.counters.rsp_writer_gone += 1,
            Reply::Full => self.counters.rsp_writer_full += 1,
        }
        false
    }

    /// Where the frame a `read()` of client `c` (or of a file without a place) takes now comes
    /// from: its reply box or the shared queue, whichever arrived first; `None` if neither
    /// has one.
    #[inline]
    pub(crate) fn read_source(&mut self, c: Option<usize>) -> Option<Source> {
        if let Some(c) = c {
            if let Some(stamp) = self.clients.reply_stamp(c) {
                if self.ring.is_empty() || stamp <= self.shared_out {
                    return Some(Source::Replies(c));
                }
            }
        }
        (!self.ring.is_empty()).then_some(Source::Shared)
    }

    /// How much of a read buffer [`Self::take_read`] fills with the oldest frame of `from`
    /// (where it will end), so that `read()` initialises only that.
    pub(crate) fn read_end(&mut self, from: Source) -> Option<usize> {
        match from {
            Source::Replies(c) => self.clients.reply_len(c),
            Source::Shared => Some(REPLY_HDR + self.ring.peek()?.len()),
        }
    }

    /// Hands the oldest frame of the shared queue to `copy` as `read()` returns it
    /// (`[len, frame...]`), and takes it off the queue if `copy` returns `Some` (the count it
    /// copied). A `read()` that copies it to userspace right here, under `rx` and without a
    /// page fault, needs neither a buffer nor the slot reservation of [`Self::take_read`].
    #[inline]
    pub(crate) fn read_shared(
        &mut self,
        copy: impl FnOnce(&[u8]) -> Option<usize>,
    ) -> Option<usize> {
        let n = copy(self.ring.peek_record()?)?;
        self.ring.pop_into(&mut []);
        self.shared_out += 1;
        self.pending.sub(1);
        Some(n)
    }

    /// Takes the oldest frame for a `read()` of client `c` (or of a file without a place) into
    /// `buf` at `REPLY_HDR`: from its reply box or the shared queue, whichever arrived first.
    /// Returns where the frame ends in `buf` and where it came from; a reply's place stays
    /// reserved until [`Self::read_done`]. A frame longer than `buf` is cut to it. (`read()`
    /// itself calls [`Self::read_source`], [`Self::read_end`] and [`Self::take_read`], to size
    /// its buffer between.)
    #[cfg(CONFIG_KUNIT)]
    pub(crate) fn pop_read(&mut self, c: Option<usize>, buf: &mut [u8]) -> Option<(usize, Source)> {
        let from = self.read_source(c)?;
        Some((self.take_read(from, buf)?, from))
    }

    /// Takes the oldest frame of `from` (what [`Self::read_source`] found, under the same lock)
    /// into `buf` as [`Self::pop_read`] does; returns where it ends in `buf`.
    pub(crate) fn take_read(&mut self, from: Source, buf: &mut [u8]) -> Option<usize> {
        let end = match from {
            Source::Replies(c) => self.clients.take(c, Queue::Replies, buf)?,
            Source::Shared => {
                let n = self.ring.pop_into(buf.get_mut(REPLY_HDR..)?)?;
                self.shared_out += 1;
                self.shared_taken += 1;
                REPLY_HDR + n
            }
        };
        self.pending.sub(1);
        Some(end)
    }

    /// Ends a [`Self::pop_read`]: the frame `buf[..end]` reached userspace (`copied`), or goes
    /// back to the head of where it came from, into the place kept for it (so a frame counted
    /// in `rx_frames` is never also counted as a drop).
    pub(crate) fn read_done(&mut self, from: Source, buf: &[u8], copied: bool, wake: &mut Wake) {
        match (from, copied) {
            (Source::Replies(c), true) => self.clients.delivered(c, Queue::Replies),
            (Source::Replies(c), false) => {
                if self.clients.put_back(c, Queue::Replies, buf, wake) {
                    self.pending.add(1);
                } else {
                    // The place was kept for it, so this does not happen.
                    self.counters.rx_overflow += 1;
                }
            }
            (Source::Shared, true) => self.shared_taken = self.shared_taken.saturating_sub(1),
            (Source::Shared, false) => {
                self.shared_taken = self.shared_taken.saturating_sub(1);
                self.for_readers(wake);
                match self.ring.push_front(buf.get(REPLY_HDR..).unwrap_or(&[])) {
                    Ok(()) => {
                        self.shared_out -= 1;
                        self.pending.add(1);
                    }
                    // The slot was kept for it, so this does not happen.
                    Err(_) => self.counters.rx_overflow += 1,
                }
            }
        }
    }

    /// Frees client place `c` as `Clients::release` does; the responses left in its reply
    /// box are no longer pending.
    pub(crate) fn release_client(&mut self, c: usize) -> Option<KBox<Inbox>> {
        self.pending.sub(self.clients.replies_queued(c));
        self.clients.release(c)
    }

    /// Marks the instance dead; true if it already was.
    pub(super) fn mark_dead(&mut self) -> bool {
        if core::mem::replace(&mut self.dead, true) {
            return true;
        }
        self.pending.add(Pending::DEAD);
        false
    }

    /// True if a `read()` of client `c` (or of a file without a place) has a frame.
    pub(crate) fn readable(&mut self, c: Option<usize>) -> bool {
        !self.ring.is_empty() || c.and_then(|c| self.clients.reply_stamp(c)).is_some()
    }
}

impl Instance {
    /// Sends a request `frame` (header `h`) that client `c` (or a file without a place)
    /// wrote: notes its seq for the allocator and its writer for the response, then sends it.
    /// `EBUSY` if one of the kernel's requests in flight has the same exchange and seq
    /// (nothing is sent: the two responses could not be told apart).
    pub(crate) fn write_request(&self, c: Option<usize>, frame: &[u8], h: &Header) -> Result {
        let key = Key::of_request(h);
        let (note, sent) = self.send_ordered(frame, false, || {
            let mut g = self.rx.lock();
            let now = self.now();
            let st = &mut g.st;
            if !st.seqs.note_external(key, h.seq, now) {
                return Err(EBUSY);
            }
            let writer = c.and_then(|c| st.clients.writer(c));
            let note = writer.and_then(|w| st.notes.note(key, h.seq, w, now));
            if note.is_none() {
                st.counters.tx_unnoted += 1;
            }
            Ok(note)
        })?;
        if let (Err(_), Some(id)) = (sent, note) {
            self.rx.lock().st.notes.forget(id);
        }
        sent
    }
}
