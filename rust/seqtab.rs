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
//! Besides its state, every slot remembers the last exchange that used its seq and until when
//! that seq stays out of use for that exchange: the IPMB seq expiration interval (5 s) for the
//! same responder, netFn and cmd. The same record tells a late or duplicate response from one
//! nobody asked for, and keeps seqs that `write()` callers used away from the allocator.

/// Number of seqs (6 bits).
pub(crate) const SEQ_COUNT: usize = 64;
/// How long a seq stays out of use for the same exchange after it finished, in ms.
pub(crate) const SEQ_EXPIRY_MS: u64 = 5000;
const SEQ_EXPIRY_NS: u64 = SEQ_EXPIRY_MS * 1_000_000;

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
    /// The spec's quarantine scope: same responder, netFn and cmd (the requester is us).
    fn same_exchange(&self, other: &Key) -> bool {
        self.rs_sa == other.rs_sa && self.netfn == other.netfn && self.cmd == other.cmd
    }
}

/// Who waits for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A caller blocked in the synchronous request ioctl, on the slot's own wait queue.
    Sync,
    /// An asynchronous request of the client (open file) with this index.
    Async(u8),
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response of this many bytes arrived (stored by the caller, indexed by seq).
    Response(u8),
    /// No response: the kernel's completion code.
    Synthesized(u8),
}

/// Why a seq was last used, for telling late and duplicate responses apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    Answered,
    TimedOut,
    Abandoned,
    /// A request a `write()` caller sent with this seq: its response belongs to `read()`.
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    key: Key,
    until: u64,
    finish: Finish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    state: State,
    key: Key,
    last: Option<Record>,
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
        const FREE: Slot = Slot {
            state: State::Free,
            key: Key {
                rs_sa: 0,
                netfn: 0,
                rs_lun: 0,
                rq_lun: 0,
                cmd: 0,
            },
            last: None,
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
    /// timeout`, with `retries` resends after that. Returns `None` if every seq is in use or
    /// quarantined for this exchange.
    ///
    /// Seqs go round-robin; a seq whose record belongs to another exchange is taken only if
    /// no seq without a live record is free (taking it forgets that record).
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
            if slot.state != State::Free {
                continue;
            }
            match slot.last {
                Some(r) if r.until > now => {
                    if !r.key.same_exchange(&key) && fallback.is_none() {
                        fallback = Some(idx);
                    }
                }
                _ => {
                    fallback = Some(idx);
                    break;
                }
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
            slot.last = Some(Record {
                key: slot.key,
                until: now.saturating_add(SEQ_EXPIRY_NS),
                finish,
            });
        }
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
        match slot.last {
            Some(r) if r.key == key && r.until > now => match r.finish {
                Finish::Answered => Match::Duplicate,
                Finish::TimedOut | Finish::Abandoned => Match::Late,
                Finish::External => Match::Unmatched,
            },
            _ => Match::Unmatched,
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
        slot.last = Some(Record {
            key,
            until: now.saturating_add(SEQ_EXPIRY_NS),
            finish: Finish::External,
        });
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
        let mut t = SeqTable::new();
        let a = t.alloc(K, Owner::Sync, 1, 0, 250 * MS, 0);
        let b = t.alloc(other_cmd(2), Owner::Sync, 2, 0, 250 * MS, 0);
        assert_eq!((a, b), (Some(0), Some(1)));
        assert_eq!(t.busy(), 2);
    }

    #[test]
    fn at_most_64_in_flight() {
        let mut t = SeqTable::new();
        for i in 0..64u64 {
            assert!(t
                .alloc(other_cmd(i as u8), Owner::Sync, i, 0, MS, 0)
                .is_some());
        }
        assert_eq!(t.alloc(other_cmd(200), Owner::Sync, 99, 0, MS, 0), None);
    }

    #[test]
    fn response_matches_full_key_and_seq() {
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
        let mut t = SeqTable::new();
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
}
