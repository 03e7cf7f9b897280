// SPDX-License-Identifier: GPL-2.0

//! The writers of requests sent with `write()`: which open file wrote each request, so that
//! its response goes to that file's `read()` and not to whichever reader comes first.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`. Times are nanoseconds on a monotonic clock, given by
//! the caller; nothing here sleeps, allocates or loops beyond one seq's [`NOTES_PER_SEQ`]
//! notes.
//!
//! Every request a file writes leaves a note: its exchange ([`Key`]), its seq, the file
//! ([`Writer`]) and an order number. A response takes the oldest live note of its exchange
//! and seq ([`WriteNotes::take`]): requests that cannot be told apart on the bus (two files
//! that wrote the same rsSA, netFn, LUNs, cmd and seq) get their responses in the order the
//! requests were written, which is the order they went on the wire. A note lives until its
//! response arrives or for the IPMB seq expiration interval (5 s) after the write; a response
//! after that, a second response, or a response nobody wrote a request for finds no note.
//!
//! All-zero bytes are a valid, empty table (every note expired): the module allocates it
//! zeroed, in place.

use super::seqtab::{
    Key,
    SEQ_COUNT,
    SEQ_EXPIRY_MS, //
};

/// Notes per seq: requests written with one seq that wait for their response at the same
/// time (the files together). A write that finds them all taken is sent without a note.
pub(crate) const NOTES_PER_SEQ: usize = 8;
const NOTE_LIFE_NS: u64 = SEQ_EXPIRY_MS * 1_000_000;

/// The file that wrote a request: its client place and the place's generation, which changes
/// whenever a file takes the place, so that a note of a closed file never names the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Writer {
    /// The client place.
    pub(crate) place: u8,
    /// The place's generation when the request was written.
    pub(crate) gen: u32,
}

/// A request written with `write()`, until `until` (0: a free note).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Note {
    until: u64,
    order: u64,
    key: Key,
    writer: Writer,
}

impl Note {
    fn live(&self, now: u64) -> bool {
        self.until > now
    }
}

/// A note, as [`WriteNotes::note`] returns it to take it back ([`WriteNotes::forget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoteId {
    seq: u8,
    index: usize,
    order: u64,
}

/// The notes of one instance, [`NOTES_PER_SEQ`] per seq.
pub(crate) struct WriteNotes {
    notes: [[Note; NOTES_PER_SEQ]; SEQ_COUNT],
    /// The order number of the next note (1 for the first).
    written: u64,
}

impl Default for WriteNotes {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteNotes {
    /// Creates a table without notes.
    pub(crate) const fn new() -> Self {
        const FREE: Note = Note {
            until: 0,
            order: 0,
            key: Key {
                rs_sa: 0,
                netfn: 0,
                rs_lun: 0,
                rq_lun: 0,
                cmd: 0,
            },
            writer: Writer { place: 0, gen: 0 },
        };
        Self {
            notes: [[FREE; NOTES_PER_SEQ]; SEQ_COUNT],
            written: 0,
        }
    }

    /// Notes that `writer` wrote a request of exchange `key` with `seq` at `now`. Returns
    /// `None`, and notes nothing, if the seq's notes are all live.
    pub(crate) fn note(&mut self, key: Key, seq: u8, writer: Writer, now: u64) -> Option<NoteId> {
        let notes = self.notes.get_mut(usize::from(seq))?;
        let index = notes.iter().position(|n| !n.live(now))?;
        self.written += 1;
        notes[index] = Note {
            until: now.saturating_add(NOTE_LIFE_NS),
            order: self.written,
            key,
            writer,
        };
        Some(NoteId {
            seq,
            index,
            order: self.written,
        })
    }

    /// Takes back note `id`: its request was not sent. Nothing if it is gone already.
    pub(crate) fn forget(&mut self, id: NoteId) {
        let note = self
            .notes
            .get_mut(usize::from(id.seq))
            .and_then(|n| n.get_mut(id.index));
        if let Some(n) = note {
            if n.order == id.order {
                n.until = 0;
            }
        }
    }

    /// Takes the oldest live note of a request of exchange `key` with `seq` for a response
    /// that arrived at `now`: returns the file that wrote it, or `None` if no live note
    /// matches.
    pub(crate) fn take(&mut self, key: Key, seq: u8, now: u64) -> Option<Writer> {
        let notes = self.notes.get_mut(usize::from(seq))?;
        let oldest = notes
            .iter_mut()
            .filter(|n| n.live(now) && n.key == key)
            .min_by_key(|n| n.order)?;
        oldest.until = 0;
        Some(oldest.writer)
    }

    /// Returns the number of live notes at `now`.
    #[cfg(any(test, CONFIG_KUNIT))]
    pub(crate) fn live(&self, now: u64) -> usize {
        self.notes.iter().flatten().filter(|n| n.live(now)).count()
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_writers))]
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
    const A: Writer = Writer { place: 0, gen: 1 };
    const B: Writer = Writer { place: 1, gen: 1 };

    #[test]
    fn response_goes_to_its_writer() {
        let mut t = heap_table!(WriteNotes);
        t.note(K, 3, A, 0);
        t.note(Key { cmd: 2, ..K }, 3, B, 0);
        assert_eq!(t.take(Key { cmd: 2, ..K }, 3, MS), Some(B));
        assert_eq!(t.take(K, 3, MS), Some(A));
    }

    #[test]
    fn same_exchange_and_seq_in_write_order() {
        // Two files wrote the very same request: the first response is the first writer's.
        let mut t = heap_table!(WriteNotes);
        t.note(K, 0, B, 0);
        t.note(K, 0, A, 1);
        t.note(K, 0, B, 2);
        let got = [t.take(K, 0, MS), t.take(K, 0, MS), t.take(K, 0, MS)];
        assert_eq!(got, [Some(B), Some(A), Some(B)]);
    }

    #[test]
    fn order_not_slot_decides() {
        // A note freed early is reused by a later write: still served after the older one.
        let mut t = heap_table!(WriteNotes);
        t.note(Key { cmd: 9, ..K }, 0, B, 0);
        t.note(K, 0, A, 0);
        t.take(Key { cmd: 9, ..K }, 0, MS);
        t.note(K, 0, B, MS);
        assert_eq!(t.take(K, 0, 2 * MS), Some(A));
    }

    #[test]
    fn second_response_finds_no_note() {
        let mut t = heap_table!(WriteNotes);
        t.note(K, 5, A, 0);
        assert_eq!(t.take(K, 5, MS), Some(A));
        assert_eq!(t.take(K, 5, MS), None);
    }

    #[test]
    fn late_response_finds_no_note() {
        let mut t = heap_table!(WriteNotes);
        t.note(K, 5, A, 0);
        assert_eq!(t.take(K, 5, NOTE_LIFE_NS), None);
    }

    #[test]
    fn other_seq_or_luns_do_not_match() {
        let mut t = heap_table!(WriteNotes);
        t.note(K, 5, A, 0);
        assert_eq!(t.take(K, 6, MS), None);
        assert_eq!(t.take(Key { rq_lun: 1, ..K }, 5, MS), None);
        assert_eq!(t.take(K, 5, MS), Some(A));
    }

    #[test]
    fn notes_per_seq_bounded_and_expire() {
        let mut t = heap_table!(WriteNotes);
        for i in 0..NOTES_PER_SEQ {
            assert!(t.note(K, 7, A, i as u64).is_some());
        }
        assert_eq!(t.note(K, 7, B, MS), None);
        assert!(t.note(K, 8, B, MS).is_some());
        assert!(t.note(K, 7, B, NOTE_LIFE_NS).is_some());
        // Seq 7: the seven later notes and the new one; seq 8: one.
        assert_eq!(t.live(NOTE_LIFE_NS), NOTES_PER_SEQ + 1);
    }

    #[test]
    fn forgotten_note_does_not_match() {
        let mut t = heap_table!(WriteNotes);
        let first = t.note(K, 1, A, 0);
        t.note(K, 1, B, 0);
        if let Some(id) = first {
            t.forget(id);
        }
        assert!(first.is_some());
        assert_eq!(t.take(K, 1, MS), Some(B));
        assert_eq!(t.take(K, 1, MS), None);
    }

    #[test]
    fn forget_after_reuse_keeps_the_new_note() {
        let mut t = heap_table!(WriteNotes);
        let old = t.note(K, 1, A, 0);
        t.take(K, 1, MS);
        t.note(K, 1, B, MS);
        if let Some(id) = old {
            t.forget(id);
        }
        assert_eq!(t.take(K, 1, 2 * MS), Some(B));
    }
}
