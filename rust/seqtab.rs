// SPDX-License-Identifier: GPL-2.0

//! The requester's sequence table: seq allocation with quarantine, response matching,
//! deadlines and retries.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`. Times are nanoseconds on a monotonic clock, given by
//! the caller; nothing here sleeps, allocates or loops beyond the 64 slots.
//!
//! There is one slot per seq. A slot is `Free`, `InFlight` (sent, waiting for a response or its
//! deadline) or `Done` (a synchronous request's outcome, waiting for its caller to collect it).
//! Besides its state, every slot remembers the exchanges that used its seq in the last 5 s (up
//! to [`RECORDS`] of them), because a seq stays out of use for the same responder, netFn and
//! cmd for the IPMB seq expiration interval. The records also tell a late or duplicate
//! response from one nobody asked for, and keep seqs that `write()` callers used away from the
//! allocator. A seq whose records are all live takes no new exchange until one expires, so
//! no record is ever dropped early.
//!
//! All-zero bytes are a valid, empty table (every slot `Free`, every record empty): the
//! module allocates it zeroed, in place, instead of building its 20 KiB on the stack.

use crate::frame::Header;

/// Number of seqs (6 bits).
pub(crate) const SEQ_COUNT: usize = 64;
/// How long a seq stays out of use for the same exchange after it finished, in ms.
pub(crate) const SEQ_EXPIRY_MS: u64 = 5000;
const SEQ_EXPIRY_NS: u64 = SEQ_EXPIRY_MS * 1_000_000;
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
    InFlight {
        owner: Owner,
        id: u64,
        deadline: u64,
        timeout: u64,
        tries_left: u8,
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

    /// Stores a record for `key`, replacing its exchange's record or an expired one (the
    /// oldest record if all are live, which `alloc` avoids).
    fn remember(&mut self, key: Key, until: u64, finish: Finish, now: u64) {
        let new = Record { until, key, finish };
        let mut oldest = 0;
        for i in 0..RECORDS {
            let r = &self.records[i];
            if !r.live(now) || r.key.same_exchange(&key) {
                self.records[i] = new;
                return;
            }
            if r.until < self.records[oldest].until {
                oldest = i;
            }
        }
        self.records[oldest] = new;
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
    /// Send it again, same seq: the new deadline is already set.
    Retry(u8),
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

    /// Allocates a seq for a request of exchange `key` and marks it in flight until `now +
    /// timeout`, with `retries` resends after that. Returns `None` if no free seq is usable
    /// for this exchange now (see [`SeqTable::usable_at`]). Seqs go round-robin.
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
            deadline: now.saturating_add(timeout),
            timeout,
            tries_left: retries,
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
    /// retry gets a new deadline, a request out of tries is finished.
    pub(crate) fn expire(&mut self, now: u64) -> Option<Expiry> {
        let seq = self
            .slots
            .iter()
            .position(|s| matches!(s.state, State::InFlight { deadline, .. } if deadline <= now))?;
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
                deadline: now.saturating_add(timeout),
                timeout,
                tries_left: tries_left - 1,
            };
            return Some(Expiry::Retry(seq));
        }
        let key = slot.key;
        self.complete(seq, Outcome::Synthesized(crate::uapi::CC_TIMEOUT), now);
        Some(Expiry::TimedOut {
            seq,
            owner,
            id,
            key,
        })
    }

    /// Ends the request on `seq` without a response (a send failure or a timeout): a
    /// synchronous request becomes `Done` with `outcome`, an asynchronous one is finished.
    /// Returns the owner, id and key of the request, or `None` if none was in flight.
    pub(crate) fn complete(
        &mut self,
        seq: u8,
        outcome: Outcome,
        now: u64,
    ) -> Option<(Owner, u64, Key)> {
        let slot = self.slot_mut(seq)?;
        let State::InFlight { owner, id, .. } = slot.state else {
            return None;
        };
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

    /// Returns the earliest deadline of a request in flight.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| match s.state {
                State::InFlight { deadline, .. } => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Returns the number of requests in flight or done but not yet collected.
    pub(crate) fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.state != State::Free).count()
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_seqtab))]
mod tests {
    use super::*;

    /// A table on the heap: its 20 KiB do not belong on a kernel stack.
    #[cfg(CONFIG_KUNIT)]
    fn heap_table() -> Option<::kernel::alloc::KVBox<SeqTable>> {
        use ::kernel::alloc::flags::GFP_KERNEL;
        use ::kernel::init::InPlaceInit;
        ::kernel::alloc::KVBox::init(::pin_init::zeroed::<SeqTable>(), GFP_KERNEL).ok()
    }

    #[cfg(not(CONFIG_KUNIT))]
    fn heap_table() -> Option<std::boxed::Box<SeqTable>> {
        Some(std::boxed::Box::new(SeqTable::new()))
    }

    /// An empty table, or the end of the test (counted as a failure) without memory.
    macro_rules! table {
        () => {{
            let t = heap_table();
            assert!(t.is_some());
            match t {
                Some(t) => t,
                None => return,
            }
        }};
    }

    const MS: u64 = 1_000_000;
    const K: Key = Key {
        rs_sa: 0x72,
        netfn: 0x06,
        rs_lun: 0,
        rq_lun: 0,
        cmd: 0x01,
    };

    fn other_cmd(cmd: u8) -> Key {
        Key { cmd, ..K }
    }

    #[test]
    fn seqs_are_distinct_and_round_robin() {
        let mut t = table!();
        let a = t.alloc(K, Owner::Sync, 1, 0, 250 * MS, 0);
        let b = t.alloc(other_cmd(2), Owner::Sync, 2, 0, 250 * MS, 0);
        assert_eq!((a, b), (Some(0), Some(1)));
        assert_eq!(t.busy(), 2);
    }

    #[test]
    fn at_most_64_in_flight() {
        let mut t = table!();
        for i in 0..64u64 {
            assert!(t
                .alloc(other_cmd(i as u8), Owner::Sync, i, 0, MS, 0)
                .is_some());
        }
        assert_eq!(t.alloc(other_cmd(200), Owner::Sync, 99, 0, MS, 0), None);
    }

    #[test]
    fn response_matches_full_key_and_seq() {
        let mut t = table!();
        let seq = t.alloc(K, Owner::Sync, 7, 0, MS, 0).unwrap_or(99);
        // Wrong LUN, wrong cmd, wrong responder, wrong seq: not ours.
        assert_eq!(
            t.on_response(Key { rq_lun: 1, ..K }, seq, 8, 0),
            Match::Unmatched
        );
        assert_eq!(t.on_response(other_cmd(2), seq, 8, 0), Match::Unmatched);
        assert_eq!(
            t.on_response(Key { rs_sa: 0x74, ..K }, seq, 8, 0),
            Match::Unmatched
        );
        assert_eq!(t.on_response(K, seq + 1, 8, 0), Match::Unmatched);
        assert_eq!(
            t.on_response(K, seq, 9, 0),
            Match::Matched {
                owner: Owner::Sync,
                id: 7
            }
        );
        assert_eq!(t.on_response(K, seq, 9, 0), Match::Duplicate);
        assert_eq!(t.take(seq, MS), Some(Outcome::Response(9)));
        assert_eq!(t.on_response(K, seq, 9, 2 * MS), Match::Duplicate);
        assert_eq!(t.busy(), 0);
    }

    #[test]
    fn quarantine_keeps_seq_from_same_exchange_for_5s() {
        let mut t = table!();
        let first = t.alloc(K, Owner::Async(0), 1, 0, MS, 0);
        assert_eq!(first, Some(0));
        assert!(matches!(t.on_response(K, 0, 8, MS), Match::Matched { .. }));
        // Fill the other 63 seqs with the same exchange, then free them again.
        for i in 1..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, MS, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, MS),
                Match::Matched { .. }
            ));
        }
        // Every seq is quarantined for K until 5 s after it finished...
        assert_eq!(t.alloc(K, Owner::Sync, 100, 4999 * MS, MS, 0), None);
        // ... but another exchange may use them at once.
        assert_eq!(
            t.alloc(other_cmd(9), Owner::Sync, 101, 2 * MS, MS, 0),
            Some(0)
        );
        // After the interval the exchange gets a seq again.
        assert_eq!(t.alloc(K, Owner::Sync, 102, 5001 * MS, MS, 0), Some(1));
    }

    #[test]
    fn retries_then_timeout() {
        let mut t = table!();
        let seq = t.alloc(K, Owner::Sync, 5, 0, 250 * MS, 2).unwrap_or(99);
        assert_eq!(t.next_deadline(), Some(250 * MS));
        assert_eq!(t.expire(249 * MS), None);
        assert_eq!(t.expire(250 * MS), Some(Expiry::Retry(seq)));
        assert_eq!(t.next_deadline(), Some(500 * MS));
        assert_eq!(t.expire(500 * MS), Some(Expiry::Retry(seq)));
        assert_eq!(
            t.expire(750 * MS),
            Some(Expiry::TimedOut {
                seq,
                owner: Owner::Sync,
                id: 5,
                key: K
            })
        );
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            t.take(seq, 751 * MS),
            Some(Outcome::Synthesized(crate::uapi::CC_TIMEOUT))
        );
        // A response after the timeout is late, and is not given to the next request.
        assert_eq!(t.on_response(K, seq, 8, 800 * MS), Match::Late);
        let next = t.alloc(K, Owner::Sync, 6, 800 * MS, MS, 0);
        assert!(next.is_some() && next != Some(seq));
        assert_eq!(t.on_response(K, seq, 8, 801 * MS), Match::Late);
    }

    #[test]
    fn async_timeout_frees_slot() {
        let mut t = table!();
        let seq = t.alloc(K, Owner::Async(3), 8, 0, MS, 0).unwrap_or(99);
        assert_eq!(
            t.expire(MS),
            Some(Expiry::TimedOut {
                seq,
                owner: Owner::Async(3),
                id: 8,
                key: K
            })
        );
        assert_eq!(t.busy(), 0);
        assert_eq!(t.on_response(K, seq, 8, 2 * MS), Match::Late);
    }

    #[test]
    fn abandoned_requests_make_late_responses() {
        let mut t = table!();
        let a = t.alloc(K, Owner::Async(1), 1, 0, MS, 0).unwrap_or(99);
        let b = t
            .alloc(other_cmd(2), Owner::Async(1), 2, 0, MS, 0)
            .unwrap_or(99);
        let c = t
            .alloc(other_cmd(3), Owner::Async(2), 3, 0, MS, 0)
            .unwrap_or(99);
        assert_eq!(t.abandon_client(1, 0), 2);
        assert_eq!(t.busy(), 1);
        assert_eq!(t.on_response(K, a, 8, 0), Match::Late);
        assert_eq!(t.on_response(other_cmd(2), b, 8, 0), Match::Late);
        assert!(matches!(
            t.on_response(other_cmd(3), c, 8, 0),
            Match::Matched { .. }
        ));
        let s = t.alloc(K, Owner::Sync, 4, 0, MS, 0).unwrap_or(99);
        t.abandon(s, 0);
        assert_eq!(t.on_response(K, s, 8, 0), Match::Late);
    }

    #[test]
    fn external_seqs_avoided_and_left_to_read() {
        let mut t = table!();
        assert!(t.note_external(K, 0, 0));
        assert_eq!(t.on_response(K, 0, 8, 0), Match::Unmatched);
        // The allocator skips seq 0 for this exchange only.
        assert_eq!(t.alloc(K, Owner::Sync, 1, 0, MS, 0), Some(1));
        assert_eq!(t.alloc(other_cmd(5), Owner::Sync, 2, 0, MS, 0), Some(2));
        // A write() colliding with a request of ours in flight is refused.
        assert!(!t.note_external(K, 1, 0));
        assert!(t.note_external(other_cmd(7), 1, 0));
    }

    #[test]
    fn send_failure_completes() {
        let mut t = table!();
        let s = t.alloc(K, Owner::Sync, 1, 0, MS, 3).unwrap_or(99);
        assert_eq!(
            t.complete(s, Outcome::Synthesized(0x82), 0),
            Some((Owner::Sync, 1, K))
        );
        assert_eq!(t.complete(s, Outcome::Synthesized(0x82), 0), None);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.take(s, 0), Some(Outcome::Synthesized(0x82)));
        assert_eq!(t.take(s, 0), None);
    }

    #[test]
    fn quarantine_survives_other_exchanges_on_the_seq() {
        let mut t = table!();
        for i in 0..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, 0, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, 0),
                Match::Matched { .. }
            ));
        }
        // Another exchange takes seq 0 and finishes; K's record on seq 0 must survive.
        assert_eq!(t.alloc(other_cmd(2), Owner::Sync, 100, MS, MS, 0), Some(0));
        assert_eq!(t.take(0, MS), None);
        t.abandon(0, 2 * MS);
        assert_eq!(t.alloc(K, Owner::Sync, 101, 3 * MS, MS, 0), None);
        // A late response for K on seq 0 is still recognised.
        assert_eq!(t.on_response(K, 0, 8, 3 * MS), Match::Duplicate);
        assert_eq!(t.on_response(other_cmd(2), 0, 8, 3 * MS), Match::Late);
    }

    #[test]
    fn usable_at_tells_when_to_retry() {
        let mut t = table!();
        for i in 0..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, i * MS, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, i * MS),
                Match::Matched { .. }
            ));
        }
        // Seq 0 finished at 0 ms: usable for K again 5 s later.
        assert_eq!(t.usable_at(&K, 100 * MS), Some(5000 * MS));
        assert_eq!(t.usable_at(&other_cmd(3), 100 * MS), Some(100 * MS));
        assert_eq!(t.alloc(K, Owner::Sync, 1, 5000 * MS, MS, 0), Some(0));
        // With every seq in flight there is no time to give: a seq must be freed.
        let mut full = table!();
        for i in 0..64u64 {
            assert!(full
                .alloc(other_cmd(i as u8), Owner::Sync, i, 0, MS, 0)
                .is_some());
        }
        assert_eq!(full.usable_at(&K, 0), None);
    }

    #[test]
    fn a_seq_serves_at_most_records_exchanges_per_interval() {
        let mut t = table!();
        // Use every seq for RECORDS distinct exchanges within 5 s.
        for round in 0..RECORDS as u64 {
            for i in 0..64u64 {
                let seq = t.alloc(other_cmd(round as u8), Owner::Async(0), i, round, MS, 0);
                assert_eq!(seq, Some(i as u8));
                t.abandon(i as u8, round);
            }
        }
        // A new exchange must wait for the oldest records to expire.
        assert_eq!(t.alloc(other_cmd(200), Owner::Sync, 1, 100, MS, 0), None);
        assert_eq!(t.usable_at(&other_cmd(200), 100), Some(SEQ_EXPIRY_NS));
        assert!(t
            .alloc(other_cmd(200), Owner::Sync, 1, SEQ_EXPIRY_NS, MS, 0)
            .is_some());
        // Every exchange of the first round is still remembered until then.
        assert_eq!(t.on_response(other_cmd(1), 5, 8, 100), Match::Late);
    }

    #[test]
    fn request_and_its_response_have_one_key() {
        let req = Header {
            dest: 0x72,
            netfn: 0x06,
            dest_lun: 1,
            src: 0x20,
            seq: 9,
            src_lun: 2,
            cmd: 0x01,
        };
        // The response swaps addresses and LUNs and sets the netFn's low bit.
        let rsp = Header {
            dest: 0x20,
            netfn: 0x07,
            dest_lun: 2,
            src: 0x72,
            seq: 9,
            src_lun: 1,
            cmd: 0x01,
        };
        assert_eq!(Key::of_request(&req), Key::of_response(&rsp));
        assert_eq!(
            Key::of_request(&req),
            Key {
                rs_lun: 1,
                rq_lun: 2,
                ..K
            }
        );
    }
}
