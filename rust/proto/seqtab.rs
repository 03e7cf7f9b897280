// SPDX-License-Identifier: GPL-2.0

//! The requester's sequence table: seq allocation with quarantine, response matching,
//! deadlines and retries.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`. Times are nanoseconds on a monotonic clock, given by
//! the caller; nothing here sleeps, allocates or loops beyond the 64 slots.
//!
//! There is one slot per seq. A slot is `Free`, `InFlight` (waiting for its send, or sent and
//! waiting for a response or its deadline) or `Done` (a synchronous request's outcome, waiting
//! for its caller to collect it). A request's deadline starts when a try is on the wire
//! ([`SeqTable::sent`]), not when its seq is allocated: a frame may wait for the bus first.
//! Everything that reports on a request sent without the table's lock names it by seq and id,
//! because by then the request may have ended and its seq gone to another.
//! Besides its state, every slot remembers the exchanges that used its seq in the last 5 s (up
//! to [`RECORDS`] of them), because a seq stays out of use for the same responder, netFn and
//! cmd for the IPMB seq expiration interval. The records also tell a late or duplicate
//! response from one nobody asked for, and keep seqs that `write()` callers used away from the
//! allocator. A seq whose records are all live takes no new exchange until one expires, so
//! no record is ever dropped early.
//!
//! All-zero bytes are a valid, empty table (every slot `Free`, every record empty): the
//! module allocates it zeroed, in place, instead of building its 20 KiB on the stack.

use super::frame::{
    Header,
    CC_TIMEOUT, //
};

/// Number of seqs (6 bits).
pub(crate) const SEQ_COUNT: usize = 64;
/// How long a seq stays out of use for the same exchange after it finished, in ms.
pub(crate) const SEQ_EXPIRY_MS: u64 = 5000;
const SEQ_EXPIRY_NS: u64 = SEQ_EXPIRY_MS * 1_000_000;
/// The deadline of a request whose current try is not on the wire yet.
const UNSENT: u64 = u64::MAX;
/// Exchanges remembered per seq: each seq serves at most this many distinct exchanges per
/// 5 s, so the table sustains 64 * 16 / 5 s = 204 requests per second to distinct
/// exchanges (IPMB at 100 kHz carries about 300 short exchanges per second).
pub(crate) const RECORDS: usize = 16;

/// Everything that identifies a request's exchange except its seq.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Key {
    /// Responder's slave address.
    pub(crate) rs_sa: u8,
    /// The request's netFn (even).
    pub(crate) netfn: u8,
    /// Responder's LUN.
    pub(crate) rs_lun: u8,
    /// Requester's LUN.
    pub(crate) rq_lun: u8,
    /// Command.
    pub(crate) cmd: u8,
}

impl Key {
    /// The exchange of a request, from its header.
    pub(crate) fn of_request(h: &Header) -> Key {
        Key {
            rs_sa: h.dest,
            netfn: h.netfn,
            rs_lun: h.dest_lun,
            rq_lun: h.src_lun,
            cmd: h.cmd,
        }
    }

    /// The exchange a response answers, from its header.
    pub(crate) fn of_response(h: &Header) -> Key {
        Key {
            rs_sa: h.src,
            netfn: h.netfn & !1,
            rs_lun: h.src_lun,
            rq_lun: h.dest_lun,
            cmd: h.cmd,
        }
    }

    /// The spec's quarantine scope: same responder, netFn and cmd (the requester is us).
    fn same_exchange(&self, other: &Key) -> bool {
        self.rs_sa == other.rs_sa && self.netfn == other.netfn && self.cmd == other.cmd
    }
}

/// Who waits for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Owner {
    /// A caller blocked in the synchronous request ioctl, on the slot's own wait queue.
    Sync,
    /// An asynchronous request of the client (open file) with this index.
    Async(u8),
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Outcome {
    /// A response of this many bytes arrived (stored by the caller, indexed by seq).
    Response(u8),
    /// No response: the kernel's completion code.
    Synthesized(u8),
}

/// Why a seq was last used, for telling late and duplicate responses apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Finish {
    Answered = 0,
    TimedOut,
    Abandoned,
    /// A request a `write()` caller sent with this seq: its response belongs to `read()`.
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum State {
    Free = 0,
    /// `deadline` is [`UNSENT`] until the current try is on the wire; `queued` while the
    /// transmit context is to send it.
    InFlight {
        owner: Owner,
        id: u64,
        deadline: u64,
        timeout: u64,
        tries_left: u8,
        queued: bool,
    },
    Done {
        id: u64,
        outcome: Outcome,
    },
}

/// An exchange that used a seq, until when it keeps it (0: an empty record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    until: u64,
    key: Key,
    finish: Finish,
}

impl Record {
    fn live(&self, now: u64) -> bool {
        self.until > now
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    state: State,
    key: Key,
    records: [Record; RECORDS],
}

impl Slot {
    /// Returns the live record of `key`'s exchange, if any.
    fn record_of(&self, key: &Key, now: u64) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.live(now) && r.key.same_exchange(key))
    }

    /// When this free seq can take a request of `key`'s exchange: `now` if it can at once.
    fn usable_at(&self, key: &Key, now: u64) -> u64 {
        if let Some(r) = self.record_of(key, now) {
            return r.until;
        }
        // Room for the record the request will leave: the earliest record to expire.
        self.records
            .iter()
            .map(|r| if r.live(now) { r.until } else { now })
            .min()
            .unwrap_or(now)
    }

    /// Stores a record for `key`, replacing its exchange's live record if there is one (a
    /// seq keeps one record per exchange), else an expired one, else the oldest record (which
    /// `alloc` avoids).
    fn remember(&mut self, key: Key, until: u64, finish: Finish, now: u64) {
        let i = self
            .records
            .iter()
            .position(|r| r.live(now) && r.key.same_exchange(&key))
            .or_else(|| self.records.iter().position(|r| !r.live(now)))
            .or_else(|| (0..RECORDS).min_by_key(|&i| self.records[i].until))
            .unwrap_or(0);
        self.records[i] = Record { until, key, finish };
    }
}

/// What a received response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// It answers the request in flight on this seq, owned by `owner`, with this id. A `Sync`
    /// slot is now `Done`; an `Async` slot is already free again (the caller delivers it).
    Matched { owner: Owner, id: u64 },
    /// It answers a request that timed out or was abandoned.
    Late,
    /// It answers a request that was already answered.
    Duplicate,
    /// Nobody here asked for it.
    Unmatched,
}

/// A request whose deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Send request `id` again, same seq; its deadline starts when it is sent
    /// ([`SeqTable::sent`]).
    Retry { seq: u8, id: u64 },
    /// Out of tries: the slot is `Done` (sync) or free again (async: the caller delivers the
    /// timeout completion).
    TimedOut {
        seq: u8,
        owner: Owner,
        id: u64,
        key: Key,
    },
}

/// The seq table of one instance.
///
/// # Invariants
///
/// `next < SEQ_COUNT`.
pub(crate) struct SeqTable {
    slots: [Slot; SEQ_COUNT],
    next: usize,
}

impl Default for SeqTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SeqTable {
    /// Creates a table with every seq free.
    pub(crate) const fn new() -> Self {
        const NONE: Key = Key {
            rs_sa: 0,
            netfn: 0,
            rs_lun: 0,
            rq_lun: 0,
            cmd: 0,
        };
        const FREE: Slot = Slot {
            state: State::Free,
            key: NONE,
            records: [Record {
                until: 0,
                key: NONE,
                finish: Finish::Answered,
            }; RECORDS],
        };
        Self {
            slots: [FREE; SEQ_COUNT],
            next: 0,
        }
    }

    fn slot(&self, seq: u8) -> Option<&Slot> {
        self.slots.get(usize::from(seq))
    }

    fn slot_mut(&mut self, seq: u8) -> Option<&mut Slot> {
        self.slots.get_mut(usize::from(seq))
    }

    /// Allocates a seq for a request of exchange `key` and marks it in flight, not yet sent;
    /// each try waits `timeout` from when it is sent, and `retries` resends follow. Returns
    /// `None` if no free seq is usable for this exchange now (see [`SeqTable::usable_at`]).
    /// Seqs go round-robin.
    pub(crate) fn alloc(
        &mut self,
        key: Key,
        owner: Owner,
        id: u64,
        now: u64,
        timeout: u64,
        retries: u8,
    ) -> Option<u8> {
        let mut fallback = None;
        for i in 0..SEQ_COUNT {
            let mut idx = self.next + i;
            if idx >= SEQ_COUNT {
                idx -= SEQ_COUNT;
            }
            let slot = &self.slots[idx];
            if slot.state == State::Free && slot.usable_at(&key, now) <= now {
                fallback = Some(idx);
                break;
            }
        }
        let idx = fallback?;
        let slot = &mut self.slots[idx];
        slot.key = key;
        slot.state = State::InFlight {
            owner,
            id,
            deadline: UNSENT,
            timeout,
            tries_left: retries,
            queued: false,
        };
        // INVARIANT: `idx < SEQ_COUNT`, so the successor wraps below it.
        self.next = if idx + 1 == SEQ_COUNT { 0 } else { idx + 1 };
        // `idx < 64`.
        Some(idx as u8)
    }

    /// Ends the request on `seq`, whatever its state, and quarantines the seq for its exchange.
    fn finish(&mut self, seq: u8, now: u64, finish: Finish) {
        if let Some(slot) = self.slot_mut(seq) {
            slot.state = State::Free;
            slot.remember(slot.key, now.saturating_add(SEQ_EXPIRY_NS), finish, now);
        }
    }

    /// The state of request `id` on `seq`, if it is still in flight.
    fn in_flight(&mut self, seq: u8, id: u64) -> Option<&mut State> {
        let slot = self.slot_mut(seq)?;
        match slot.state {
            State::InFlight { id: i, .. } if i == id => Some(&mut slot.state),
            _ => None,
        }
    }

    /// Notes that the current try of request `id` on `seq` went on the wire at `now`: its
    /// deadline starts. Returns false if the request is no longer in flight (it was answered,
    /// or ended otherwise, while it was being sent).
    pub(crate) fn sent(&mut self, seq: u8, id: u64, now: u64) -> bool {
        match self.in_flight(seq, id) {
            Some(State::InFlight {
                deadline, timeout, ..
            }) => {
                *deadline = now.saturating_add(*timeout);
                true
            }
            _ => false,
        }
    }

    /// Hands the first send of request `id` on `seq` to the transmit context
    /// ([`SeqTable::next_queued`]).
    pub(crate) fn queue(&mut self, seq: u8, id: u64) {
        if let Some(State::InFlight { queued, .. }) = self.in_flight(seq, id) {
            *queued = true;
        }
    }

    /// Takes the oldest request queued for the transmit context: its seq and id.
    pub(crate) fn next_queued(&mut self) -> Option<(u8, u64)> {
        let (seq, id) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(seq, s)| match s.state {
                State::InFlight {
                    id, queued: true, ..
                } => Some((seq, id)),
                _ => None,
            })
            .min_by_key(|&(_, id)| id)?;
        // `seq < 64`.
        let seq = seq as u8;
        if let Some(State::InFlight { queued, .. }) = self.in_flight(seq, id) {
            *queued = false;
        }
        Some((seq, id))
    }

    /// Returns when a free seq becomes usable for `key`'s exchange, or `None` if every seq
    /// is in use (a seq must be freed first).
    pub(crate) fn usable_at(&self, key: &Key, now: u64) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.state == State::Free)
            .map(|s| s.usable_at(key, now))
            .min()
    }

    /// Classifies a response to exchange `key` with `seq` that arrived at `now`; `len` is its
    /// length, recorded for a synchronous owner.
    pub(crate) fn on_response(&mut self, key: Key, seq: u8, len: u8, now: u64) -> Match {
        let Some(slot) = self.slot_mut(seq) else {
            return Match::Unmatched;
        };
        match slot.state {
            State::InFlight { owner, id, .. } if slot.key == key => {
                match owner {
                    Owner::Sync => {
                        slot.state = State::Done {
                            id,
                            outcome: Outcome::Response(len),
                        }
                    }
                    Owner::Async(_) => self.finish(seq, now, Finish::Answered),
                }
                return Match::Matched { owner, id };
            }
            State::Done { .. } if slot.key == key => return Match::Duplicate,
            _ => {}
        }
        match slot.records.iter().find(|r| r.live(now) && r.key == key) {
            Some(r) => match r.finish {
                Finish::Answered => Match::Duplicate,
                Finish::TimedOut | Finish::Abandoned => Match::Late,
                Finish::External => Match::Unmatched,
            },
            None => Match::Unmatched,
        }
    }

    /// Returns the next request whose deadline is at or before `now`, after updating it: a
    /// retry waits to be sent again, a request out of tries is finished.
    pub(crate) fn expire(&mut self, now: u64) -> Option<Expiry> {
        let seq = self.slots.iter().position(|s| {
            matches!(s.state, State::InFlight { deadline, .. } if deadline != UNSENT && deadline <= now)
        })?;
        let slot = &mut self.slots[seq];
        let State::InFlight {
            owner,
            id,
            timeout,
            tries_left,
            ..
        } = slot.state
        else {
            return None;
        };
        // `seq < 64`.
        let seq = seq as u8;
        if tries_left > 0 {
            slot.state = State::InFlight {
                owner,
                id,
                deadline: UNSENT,
                timeout,
                tries_left: tries_left - 1,
                queued: false,
            };
            return Some(Expiry::Retry { seq, id });
        }
        let key = slot.key;
        self.complete(seq, id, Outcome::Synthesized(CC_TIMEOUT), now);
        Some(Expiry::TimedOut {
            seq,
            owner,
            id,
            key,
        })
    }

    /// Ends request `id` on `seq` without a response (a send failure or a timeout): a
    /// synchronous request becomes `Done` with `outcome`, an asynchronous one is finished.
    /// Returns the owner, id and key of the request, or `None` if it is no longer in flight.
    pub(crate) fn complete(
        &mut self,
        seq: u8,
        id: u64,
        outcome: Outcome,
        now: u64,
    ) -> Option<(Owner, u64, Key)> {
        let slot = self.slot_mut(seq)?;
        let State::InFlight { owner, id: i, .. } = slot.state else {
            return None;
        };
        if i != id {
            return None;
        }
        let key = slot.key;
        match owner {
            Owner::Sync => slot.state = State::Done { id, outcome },
            Owner::Async(_) => self.finish(seq, now, Finish::TimedOut),
        }
        Some((owner, id, key))
    }

    /// Collects the outcome of the synchronous request on `seq`, if it is done, and frees it.
    pub(crate) fn take(&mut self, seq: u8, now: u64) -> Option<Outcome> {
        let State::Done { outcome, .. } = self.slot(seq)?.state else {
            return None;
        };
        let finish = match outcome {
            Outcome::Response(_) => Finish::Answered,
            Outcome::Synthesized(_) => Finish::TimedOut,
        };
        self.finish(seq, now, finish);
        Some(outcome)
    }

    /// Abandons the request on `seq` (its caller went away): a later response is late.
    pub(crate) fn abandon(&mut self, seq: u8, now: u64) {
        if matches!(
            self.slot(seq).map(|s| s.state),
            Some(State::InFlight { .. } | State::Done { .. })
        ) {
            self.finish(seq, now, Finish::Abandoned);
        }
    }

    /// Abandons every request of client `client`; returns how many there were.
    pub(crate) fn abandon_client(&mut self, client: u8, now: u64) -> usize {
        let mut n = 0;
        for seq in 0..SEQ_COUNT {
            if matches!(
                self.slots[seq].state,
                State::InFlight { owner: Owner::Async(c), .. } if c == client
            ) {
                // `seq < 64`.
                self.finish(seq as u8, now, Finish::Abandoned);
                n += 1;
            }
        }
        n
    }

    /// Notes that a `write()` caller sent a request of exchange `key` with `seq`: the
    /// allocator keeps the seq away from that exchange, and its response goes to `read()`.
    /// Returns false if one of our requests in flight has the same key and seq, in which case
    /// nothing is recorded (the two responses could not be told apart).
    pub(crate) fn note_external(&mut self, key: Key, seq: u8, now: u64) -> bool {
        let Some(slot) = self.slot_mut(seq) else {
            return true;
        };
        if slot.state != State::Free && slot.key == key {
            return false;
        }
        slot.remember(
            key,
            now.saturating_add(SEQ_EXPIRY_NS),
            Finish::External,
            now,
        );
        true
    }

    /// Returns the earliest deadline of a request on the wire.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                State::InFlight { deadline, .. } if deadline != UNSENT => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Returns the number of requests in flight or done but not yet collected.
    pub(crate) fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.state != State::Free).count()
    }

    /// Returns the number of requests waiting for their outcome (not those whose outcome
    /// waits for its synchronous caller).
    pub(crate) fn waiting(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.state, State::InFlight { .. }))
            .count()
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
mod tests;
