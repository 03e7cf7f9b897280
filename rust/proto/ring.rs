// SPDX-License-Identifier: GPL-2.0

//! A bounded FIFO of frames in preallocated storage.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`.
//!
//! The storage is allocated once, at probe; pushing (from the I2C target callback, in
//! interrupt context) only copies bytes into a free slot, so it never allocates and its work is
//! bounded by the slot size. When the ring is full the new frame is refused: the caller counts
//! it, and the frames already queued keep their order.

/// The ring refused a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RingError {
    /// Every slot is in use.
    Full,
    /// The frame does not fit a slot.
    TooLong,
}

/// A FIFO of up to `capacity` frames of at most `slot_len` bytes each, in `storage`.
///
/// Each slot holds a length byte and up to `slot_len` frame bytes.
///
/// # Invariants
///
/// - `storage.as_ref().len() >= capacity * (slot_len + 1)` and `slot_len <= 255`.
/// - `capacity >= 1`, `head < capacity` and `count <= capacity`.
/// - Slots `head, head + 1, ..., head + count - 1` (mod `capacity`) hold queued frames.
pub(crate) struct FrameRing<S> {
    storage: S,
    slot_len: usize,
    capacity: usize,
    head: usize,
    count: usize,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> FrameRing<S> {
    /// Returns the number of bytes of storage a ring of `capacity` slots of `slot_len` needs.
    pub(crate) const fn storage_len(capacity: usize, slot_len: usize) -> usize {
        capacity * (slot_len + 1)
    }

    /// Creates an empty ring over `storage`, or `None` if the storage is too small or
    /// `slot_len` does not fit the length byte.
    pub(crate) fn new(storage: S, capacity: usize, slot_len: usize) -> Option<Self> {
        if capacity == 0
            || slot_len > 255
            || storage.as_ref().len() < Self::storage_len(capacity, slot_len)
        {
            return None;
        }
        // INVARIANT: checked above; the ring starts empty.
        Some(Self {
            storage,
            slot_len,
            capacity,
            head: 0,
            count: 0,
        })
    }

    /// Returns the number of queued frames.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Returns true if no frame is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Returns the maximum number of queued frames.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Reduces `index < 2 * capacity` to a slot index (cheaper than `%`, and cannot panic).
    fn wrap(&self, index: usize) -> usize {
        if index >= self.capacity {
            index - self.capacity
        } else {
            index
        }
    }

    fn slot(&mut self, index: usize) -> &mut [u8] {
        let size = self.slot_len + 1;
        let start = index * size;
        &mut self.storage.as_mut()[start..start + size]
    }

    /// Appends a frame at the tail.
    pub(crate) fn push(&mut self, frame: &[u8]) -> Result<(), RingError> {
        let tail = self.wrap(self.head + self.count);
        self.store(tail, frame)?;
        // INVARIANT: the new frame is in the slot just past the queued ones.
        self.count += 1;
        Ok(())
    }

    /// Puts a frame back at the head, as the next one to pop (used when handing a popped frame
    /// to its reader failed).
    pub(crate) fn push_front(&mut self, frame: &[u8]) -> Result<(), RingError> {
        let head = self.wrap(self.head + self.capacity - 1);
        self.store(head, frame)?;
        // INVARIANT: the slot before the old head now holds the first queued frame.
        self.head = head;
        self.count += 1;
        Ok(())
    }

    /// Writes `frame` into the free slot `index`, if it fits and a slot is free.
    fn store(&mut self, index: usize, frame: &[u8]) -> Result<(), RingError> {
        if frame.len() > self.slot_len {
            return Err(RingError::TooLong);
        }
        if self.count == self.capacity {
            return Err(RingError::Full);
        }
        let slot = self.slot(index);
        // The length fits a byte: `frame.len() <= slot_len <= 255` by the invariants.
        slot[0] = frame.len() as u8;
        slot[1..=frame.len()].copy_from_slice(frame);
        Ok(())
    }

    /// Removes the oldest frame, copies it to the start of `out` and returns its length.
    ///
    /// Returns `None` if the ring is empty. A frame longer than `out` is truncated to it.
    pub(crate) fn pop_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let head = self.head;
        let slot = self.slot(head);
        let (&stored, data) = slot.split_first()?;
        let len = usize::from(stored).min(out.len()).min(data.len());
        for (o, d) in out.iter_mut().zip(&data[..len]) {
            *o = *d;
        }
        // INVARIANT: the head moves to the next queued frame.
        self.head = self.wrap(self.head + 1);
        self.count -= 1;
        Some(len)
    }

    /// Returns the oldest frame as stored, its length byte first (`[len, frame...]`), without
    /// removing it; `None` if the ring is empty.
    pub(crate) fn peek_record(&self) -> Option<&[u8]> {
        if self.count == 0 {
            return None;
        }
        let size = self.slot_len + 1;
        let start = self.head * size;
        let slot = self.storage.as_ref().get(start..start + size)?;
        slot.get(..=usize::from(*slot.first()?))
    }

    /// Empties the ring.
    pub(crate) fn clear(&mut self) {
        // INVARIANT: no slot holds a queued frame; `head` stays below `capacity`.
        self.count = 0;
    }

    /// Returns the oldest frame without removing it, or `None` if the ring is empty.
    pub(crate) fn peek(&self) -> Option<&[u8]> {
        self.peek_record()?.get(1..)
    }
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_ring))]
mod tests {
    use super::*;

    const SLOT: usize = 8;
    const CAP: usize = 4;
    type Storage = [u8; FrameRing::<[u8; 0]>::storage_len(CAP, SLOT)];

    fn ring() -> Option<FrameRing<Storage>> {
        FrameRing::new(
            [0u8; FrameRing::<[u8; 0]>::storage_len(CAP, SLOT)],
            CAP,
            SLOT,
        )
    }

    #[test]
    fn peek_shows_the_head_and_keeps_it() {
        let r = ring();
        assert!(r.is_some());
        if let Some(mut r) = r {
            assert_eq!(r.peek(), None);
            assert_eq!(r.push(&[1, 2, 3]), Ok(()));
            assert_eq!(r.push(&[4]), Ok(()));
            assert_eq!(r.peek(), Some(&[1u8, 2, 3][..]));
            let mut out = [0u8; SLOT];
            assert_eq!(r.pop_into(&mut out), Some(3));
            assert_eq!(r.peek(), Some(&[4u8][..]));
        }
    }

    #[test]
    fn peek_record_has_the_length_byte_first() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        assert_eq!(r.peek_record(), None);
        assert_eq!(r.push(&[5, 6]), Ok(()));
        assert_eq!(r.push(&[7]), Ok(()));
        assert_eq!(r.peek_record(), Some(&[2u8, 5, 6][..]));
        let mut out = [0u8; SLOT];
        assert_eq!(r.pop_into(&mut out), Some(2));
        assert_eq!(r.peek_record(), Some(&[1u8, 7][..]));
    }

    #[test]
    fn clear_empties_and_keeps_working() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        for i in 0..CAP as u8 {
            assert_eq!(r.push(&[i]), Ok(()));
        }
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.peek(), None);
        for i in 0..CAP as u8 {
            assert_eq!(r.push(&[i, i]), Ok(()));
        }
        let mut out = [0u8; SLOT];
        assert_eq!(r.pop_into(&mut out), Some(2));
        assert_eq!(out[..2], [0, 0]);
    }

    #[test]
    fn starts_empty() {
        let r = ring();
        assert!(r.is_some());
        if let Some(mut r) = r {
            assert!(r.is_empty());
            assert_eq!(r.capacity(), CAP);
            let mut out = [0u8; SLOT];
            assert_eq!(r.pop_into(&mut out), None);
        }
    }

    #[test]
    fn fifo_order() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        let mut out = [0u8; SLOT];
        // Wrap around the storage several times.
        for round in 0u8..5 {
            assert_eq!(r.push(&[round, 1]), Ok(()));
            assert_eq!(r.push(&[round, 2, 2]), Ok(()));
            assert_eq!(r.push(&[round, 3, 3, 3]), Ok(()));
            assert_eq!(r.len(), 3);
            assert_eq!(r.pop_into(&mut out), Some(2));
            assert_eq!(out[..2], [round, 1]);
            assert_eq!(r.pop_into(&mut out), Some(3));
            assert_eq!(out[..3], [round, 2, 2]);
            assert_eq!(r.pop_into(&mut out), Some(4));
            assert_eq!(out[..4], [round, 3, 3, 3]);
        }
        assert!(r.is_empty());
    }

    #[test]
    fn full_refuses_new_and_keeps_old() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        for i in 0..CAP as u8 {
            assert_eq!(r.push(&[i]), Ok(()));
        }
        assert_eq!(r.push(&[99]), Err(RingError::Full));
        let mut out = [0u8; SLOT];
        for i in 0..CAP as u8 {
            assert_eq!(r.pop_into(&mut out), Some(1));
            assert_eq!(out[0], i);
        }
    }

    #[test]
    fn too_long_refused() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        assert_eq!(r.push(&[0u8; SLOT + 1]), Err(RingError::TooLong));
        assert_eq!(r.push(&[7u8; SLOT]), Ok(()));
        let mut out = [0u8; SLOT];
        assert_eq!(r.pop_into(&mut out), Some(SLOT));
        assert_eq!(out, [7u8; SLOT]);
    }

    #[test]
    fn push_front_is_popped_next() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        let mut out = [0u8; SLOT];
        assert_eq!(r.push(&[1]), Ok(()));
        assert_eq!(r.push(&[2]), Ok(()));
        assert_eq!(r.pop_into(&mut out), Some(1));
        assert_eq!(r.push_front(&[1]), Ok(()));
        assert_eq!(r.pop_into(&mut out), Some(1));
        assert_eq!(out[0], 1);
        assert_eq!(r.pop_into(&mut out), Some(1));
        assert_eq!(out[0], 2);
    }

    #[test]
    fn short_output_truncates() {
        let Some(mut r) = ring() else {
            assert!(false);
            return;
        };
        assert_eq!(r.push(&[1, 2, 3, 4]), Ok(()));
        let mut out = [0u8; 2];
        assert_eq!(r.pop_into(&mut out), Some(2));
        assert_eq!(out, [1, 2]);
        assert!(r.is_empty());
    }

    #[test]
    fn small_storage_rejected() {
        assert!(FrameRing::new([0u8; 8], 2, 8).is_none());
        assert!(FrameRing::new([0u8; 512], 1, 256).is_none());
        assert!(FrameRing::new([0u8; 8], 0, 8).is_none());
    }
}
