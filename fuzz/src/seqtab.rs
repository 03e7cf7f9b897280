// SPDX-License-Identifier: GPL-2.0

//! The requester's seq table with its clock against a model written from its documentation:
//! allocation (round robin, quarantine of a seq for its exchange for 5 s, at most
//! `RECORDS` exchanges remembered per seq), deadlines and retries, expiry, `write()` callers'
//! seqs (`note_external`), and the matching of responses (matched, late, duplicate,
//! unmatched).
//!
//! Input: a clock start, then operations, each one byte followed by its arguments. The clock
//! moves forward before every operation (by at least 1 ns, as a clock read per event does;
//! the model then never has two records of one seq made at the same time) and stays below
//! 2^63 ns, as `ktime` does.

use crate::{
    input::Input,
    proto::{
        frame::CC_TIMEOUT,
        seqtab::{
            Expiry,
            Key,
            Match,
            Outcome,
            Owner,
            SeqTable,
            RECORDS,
            SEQ_COUNT,
            SEQ_EXPIRY_MS, //
        },
    },
};

const MS: u64 = 1_000_000;
const EXPIRY: u64 = SEQ_EXPIRY_MS * MS;

/// How a seq's earlier exchange ended, as far as a response to it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finish {
    Answered,
    TimedOut,
    Abandoned,
    External,
}

/// An exchange that used a seq, remembered until `until`.
#[derive(Clone, Copy, Debug)]
struct Rec {
    until: u64,
    key: Key,
    finish: Finish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Free,
    InFlight {
        owner: Owner,
        id: u64,
        /// `None` until the current try is on the wire.
        deadline: Option<u64>,
        timeout: u64,
        tries_left: u8,
        queued: bool,
    },
    Done {
        id: u64,
        outcome: Outcome,
    },
}

/// One seq: its request and the exchanges that used it.
#[derive(Clone, Debug)]
struct MSlot {
    st: St,
    key: Key,
    recs: Vec<Rec>,
}

/// Responder, netFn and cmd: the scope of the spec's seq quarantine.
fn same_exchange(a: &Key, b: &Key) -> bool {
    (a.rs_sa, a.netfn, a.cmd) == (b.rs_sa, b.netfn, b.cmd)
}

impl MSlot {
    fn live(&self, now: u64) -> impl Iterator<Item = &Rec> {
        self.recs.iter().filter(move |r| r.until > now)
    }

    /// When the seq may take a request of `key`'s exchange: after the exchange's record
    /// expires, and when a record is free for it.
    fn usable_at(&self, key: &Key, now: u64) -> u64 {
        if let Some(r) = self.live(now).find(|r| same_exchange(&r.key, key)) {
            return r.until;
        }
        if self.live(now).count() < RECORDS {
            return now;
        }
        self.live(now).map(|r| r.until).min().unwrap_or(now)
    }

    /// One record per exchange: a new one replaces the exchange's live record; without one
    /// it takes a free place, or the place of the record that expires first.
    fn remember(&mut self, key: Key, until: u64, finish: Finish, now: u64) {
        self.recs
            .retain(|r| r.until > now && !same_exchange(&r.key, &key));
        if self.recs.len() == RECORDS {
            let oldest = (0..RECORDS)
                .min_by_key(|&i| self.recs[i].until)
                .unwrap_or(0);
            self.recs.remove(oldest);
        }
        self.recs.push(Rec { until, key, finish });
    }
}

/// The model of the table.
struct Model {
    slots: Vec<MSlot>,
    next: usize,
}

impl Model {
    fn new() -> Self {
        let free = MSlot {
            st: St::Free,
            key: Key::default(),
            recs: Vec::new(),
        };
        Self {
            slots: vec![free; SEQ_COUNT],
            next: 0,
        }
    }

    fn alloc(
        &mut self,
        key: Key,
        owner: Owner,
        id: u64,
        now: u64,
        timeout: u64,
        retries: u8,
    ) -> Option<u8> {
        let seq = (0..SEQ_COUNT)
            .map(|i| (self.next + i) % SEQ_COUNT)
            .find(|&s| self.slots[s].st == St::Free && self.slots[s].usable_at(&key, now) <= now)?;
        let slot = &mut self.slots[seq];
        slot.key = key;
        slot.st = St::InFlight {
            owner,
            id,
            deadline: None,
            timeout,
            tries_left: retries,
            queued: false,
        };
        self.next = (seq + 1) % SEQ_COUNT;
        Some(seq as u8)
    }

    fn finish(&mut self, seq: usize, now: u64, finish: Finish) {
        let slot = &mut self.slots[seq];
        slot.st = St::Free;
        let key = slot.key;
        slot.remember(key, now + EXPIRY, finish, now);
    }

    fn in_flight_id(&self, seq: u8) -> Option<u64> {
        match self.slots.get(usize::from(seq))?.st {
            St::InFlight { id, .. } => Some(id),
            _ => None,
        }
    }

    fn sent(&mut self, seq: u8, id: u64, now: u64) -> bool {
        if self.in_flight_id(seq) != Some(id) {
            return false;
        }
        if let St::InFlight {
            deadline, timeout, ..
        } = &mut self.slots[usize::from(seq)].st
        {
            *deadline = Some(now + *timeout);
        }
        true
    }

    fn queue(&mut self, seq: u8, id: u64) {
        if self.in_flight_id(seq) != Some(id) {
            return;
        }
        if let St::InFlight { queued, .. } = &mut self.slots[usize::from(seq)].st {
            *queued = true;
        }
    }

    fn next_queued(&mut self) -> Option<(u8, u64)> {
        let (seq, id) = (0..SEQ_COUNT)
            .filter_map(|s| match self.slots[s].st {
                St::InFlight {
                    id, queued: true, ..
                } => Some((s, id)),
                _ => None,
            })
            .min_by_key(|&(s, id)| (id, s))?;
        if let St::InFlight { queued, .. } = &mut self.slots[seq].st {
            *queued = false;
        }
        Some((seq as u8, id))
    }

    fn usable_at(&self, key: &Key, now: u64) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.st == St::Free)
            .map(|s| s.usable_at(key, now))
            .min()
    }

    /// The verdict comes from the seq's request if the key is its own, else from the
    /// seq's record of the same key; a match then ends or completes the request.
    fn on_response(&mut self, key: Key, seq: u8, len: u8, now: u64) -> Match {
        let Some(slot) = self.slots.get(usize::from(seq)) else {
            return Match::Unmatched;
        };
        let verdict = match (slot.st, slot.key == key) {
            (St::InFlight { owner, id, .. }, true) => Match::Matched { owner, id },
            (St::Done { .. }, true) => Match::Duplicate,
            _ => match slot.live(now).find(|r| r.key == key).map(|r| r.finish) {
                Some(Finish::Answered) => Match::Duplicate,
                Some(Finish::TimedOut | Finish::Abandoned) => Match::Late,
                Some(Finish::External) | None => Match::Unmatched,
            },
        };
        match verdict {
            Match::Matched {
                owner: Owner::Sync,
                id,
            } => {
                let outcome = Outcome::Response(len);
                self.slots[usize::from(seq)].st = St::Done { id, outcome };
            }
            Match::Matched { .. } => self.finish(usize::from(seq), now, Finish::Answered),
            _ => {}
        }
        verdict
    }

    fn expire(&mut self, now: u64) -> Option<Expiry> {
        let seq = (0..SEQ_COUNT).find(
            |&s| matches!(self.slots[s].st, St::InFlight { deadline: Some(d), .. } if d <= now),
        )?;
        let St::InFlight {
            owner,
            id,
            timeout,
            tries_left,
            ..
        } = self.slots[seq].st
        else {
            return None;
        };
        if tries_left > 0 {
            self.slots[seq].st = St::InFlight {
                owner,
                id,
                deadline: None,
                timeout,
                tries_left: tries_left - 1,
                queued: false,
            };
            return Some(Expiry::Retry { seq: seq as u8, id });
        }
        let key = self.slots[seq].key;
        self.complete(seq as u8, id, Outcome::Synthesized(CC_TIMEOUT), now);
        Some(Expiry::TimedOut {
            seq: seq as u8,
            owner,
            id,
            key,
        })
    }

    fn complete(
        &mut self,
        seq: u8,
        id: u64,
        outcome: Outcome,
        now: u64,
    ) -> Option<(Owner, u64, Key)> {
        if self.in_flight_id(seq) != Some(id) {
            return None;
        }
        let slot = &mut self.slots[usize::from(seq)];
        let St::InFlight { owner, .. } = slot.st else {
            return None;
        };
        let key = slot.key;
        match owner {
            Owner::Sync => slot.st = St::Done { id, outcome },
            Owner::Async(_) => self.finish(usize::from(seq), now, Finish::TimedOut),
        }
        Some((owner, id, key))
    }

    fn take(&mut self, seq: u8, now: u64) -> Option<Outcome> {
        let St::Done { outcome, .. } = self.slots.get(usize::from(seq))?.st else {
            return None;
        };
        let finish = match outcome {
            Outcome::Response(_) => Finish::Answered,
            Outcome::Synthesized(_) => Finish::TimedOut,
        };
        self.finish(usize::from(seq), now, finish);
        Some(outcome)
    }

    fn abandon(&mut self, seq: u8, now: u64) {
        if let Some(s) = self.slots.get(usize::from(seq)) {
            if s.st != St::Free {
                self.finish(usize::from(seq), now, Finish::Abandoned);
            }
        }
    }

    fn abandon_client(&mut self, client: u8, now: u64) -> usize {
        let mine: Vec<usize> = (0..SEQ_COUNT)
            .filter(|&s| {
                matches!(self.slots[s].st, St::InFlight { owner: Owner::Async(c), .. } if c == client)
            })
            .collect();
        for &s in &mine {
            self.finish(s, now, Finish::Abandoned);
        }
        mine.len()
    }

    fn note_external(&mut self, key: Key, seq: u8, now: u64) -> bool {
        let Some(slot) = self.slots.get_mut(usize::from(seq)) else {
            return true;
        };
        if slot.st != St::Free && slot.key == key {
            return false;
        }
        slot.remember(key, now + EXPIRY, Finish::External, now);
        true
    }

    fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| match s.st {
                St::InFlight { deadline, .. } => deadline,
                _ => None,
            })
            .min()
    }

    fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.st != St::Free).count()
    }

    /// The next time something changes on its own: a deadline or a record's expiry.
    fn next_event(&self, now: u64) -> Option<u64> {
        let recs = self.slots.iter().flat_map(|s| s.live(now).map(|r| r.until));
        recs.chain(self.next_deadline()).filter(|&t| t >= now).min()
    }
}

/// A key from one byte: two responders, four netFns, two LUNs each side, eight commands.
fn key(b: u8) -> Key {
    Key {
        rs_sa: [0x72, 0x74][usize::from(b & 1)],
        netfn: [0x06, 0x0a, 0x2c, 0x30][usize::from((b >> 1) & 3)],
        rs_lun: (b >> 3) & 1,
        rq_lun: (b >> 4) & 1,
        cmd: b >> 5,
    }
}

/// A response timeout, within what the module allows (at most 60 s).
fn timeout(b: u8) -> u64 {
    match b % 8 {
        0 => 0,
        1 => 1,
        2 => MS,
        3 => 250 * MS,
        4 => EXPIRY,
        5 => 60_000 * MS,
        _ => u64::from(b) * 97 * MS,
    }
}

/// A seq: mostly a valid one, sometimes one past the 6 bits.
fn seq(b: u8) -> u8 {
    if b < 0xf0 {
        b % SEQ_COUNT as u8
    } else {
        b
    }
}

/// The id of the request on `seq` (even `b`), or another one.
fn id(model: &Model, seq: u8, b: u8) -> u64 {
    let current = match model.slots.get(usize::from(seq)).map(|s| s.st) {
        Some(St::InFlight { id, .. } | St::Done { id, .. }) => Some(id),
        _ => None,
    };
    match current {
        Some(id) if b.is_multiple_of(2) => id,
        _ => u64::from(b / 2),
    }
}

fn owner(b: u8) -> Owner {
    if b & 0x80 != 0 {
        Owner::Sync
    } else {
        Owner::Async(b % 4)
    }
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut now = u64::from(input.u32()) * u64::from(input.u16());
    let mut real = Box::new(SeqTable::new());
    let mut model = Model::new();
    let mut next_id = 1u64;
    while !input.is_empty() {
        let op = input.u8();
        now += 1 + u64::from(op >> 4);
        match op % 16 {
            0 | 1 => {
                let (k, o, t, r) = (key(input.u8()), owner(input.u8()), input.u8(), input.u8());
                let (t, r) = (timeout(t), r % 4);
                let id = next_id;
                next_id += 1;
                let got = real.alloc(k, o, id, now, t, r);
                assert_eq!(
                    got,
                    model.alloc(k, o, id, now, t, r),
                    "alloc {k:?} at {now}"
                );
            }
            2 => {
                let s = seq(input.u8());
                let i = id(&model, s, input.u8());
                assert_eq!(real.sent(s, i, now), model.sent(s, i, now), "sent {s} {i}");
            }
            3 => {
                let s = seq(input.u8());
                let i = id(&model, s, input.u8());
                real.queue(s, i);
                model.queue(s, i);
            }
            4 => assert_eq!(real.next_queued(), model.next_queued()),
            5 | 6 => {
                let (s, k, len) = (seq(input.u8()), input.u8(), input.u8());
                // A response to the exchange in flight on the seq, or to another one.
                let k = match model.slots.get(usize::from(s)) {
                    Some(slot) if k & 0x80 != 0 => slot.key,
                    _ => key(k),
                };
                let got = real.on_response(k, s, len, now);
                assert_eq!(
                    got,
                    model.on_response(k, s, len, now),
                    "response {k:?} seq {s}"
                );
            }
            7 => assert_eq!(real.expire(now), model.expire(now), "expire at {now}"),
            8 => {
                let s = seq(input.u8());
                let i = id(&model, s, input.u8());
                let cc = input.u8();
                let outcome = Outcome::Synthesized(cc);
                let got = real.complete(s, i, outcome, now);
                assert_eq!(got, model.complete(s, i, outcome, now), "complete {s} {i}");
            }
            9 => {
                let s = seq(input.u8());
                assert_eq!(real.take(s, now), model.take(s, now), "take {s}");
            }
            10 => {
                let s = seq(input.u8());
                real.abandon(s, now);
                model.abandon(s, now);
            }
            11 => {
                let c = input.u8() % 4;
                assert_eq!(real.abandon_client(c, now), model.abandon_client(c, now));
            }
            12 => {
                let (k, s) = (key(input.u8()), seq(input.u8()));
                let got = real.note_external(k, s, now);
                assert_eq!(
                    got,
                    model.note_external(k, s, now),
                    "external {k:?} seq {s}"
                );
            }
            13 => {
                let k = key(input.u8());
                assert_eq!(
                    real.usable_at(&k, now),
                    model.usable_at(&k, now),
                    "usable {k:?}"
                );
            }
            14 => now += u64::from(input.u16()) * MS / 16,
            _ => {
                // To the next deadline or record expiry, or just before or after it.
                let d = input.u8();
                if let Some(t) = model.next_event(now) {
                    let t = match d % 3 {
                        0 => t.saturating_sub(1),
                        1 => t,
                        _ => t + 1,
                    };
                    now = now.max(t);
                }
            }
        }
        assert_eq!(real.next_deadline(), model.next_deadline());
        assert_eq!(real.busy(), model.busy());
    }
}
