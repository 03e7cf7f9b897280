// SPDX-License-Identifier: GPL-2.0

//! The frame queue against a `VecDeque` of frames: first in first out, never more than its
//! capacity, every refused frame reported (so the caller counts it), nothing lost or changed.
//!
//! Input: capacity, slot length (two bytes), storage slack, then operations: `push` and
//! `push_front` of a frame of a given length (its bytes number the frames, so that any mix-up
//! shows), `pop_into` a buffer of a given length.

use std::collections::VecDeque;

use crate::{
    input::Input,
    proto::ring::{
        FrameRing,
        RingError, //
    },
};

/// A frame of `len` bytes that no other frame of the run equals: its number, then a pattern.
fn make_frame(n: u32, len: usize) -> Vec<u8> {
    let tag = n.to_le_bytes();
    (0..len)
        .map(|i| match tag.get(i) {
            Some(&b) => b,
            None => (i as u8).wrapping_mul(31).wrapping_add(n as u8),
        })
        .collect()
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let capacity = usize::from(input.u8() % 20);
    let slot_len = usize::from(input.u16() % 300);
    let slack = input.u8();
    let needed = capacity * (slot_len + 1);
    assert_eq!(
        FrameRing::<Vec<u8>>::storage_len(capacity, slot_len),
        needed
    );
    // Storage from one byte short to a few bytes more than needed.
    let size = (needed + usize::from(slack % 4)).saturating_sub(usize::from(slack & 4 != 0));
    let ring = FrameRing::new(vec![0xa5u8; size], capacity, slot_len);
    let accepted = capacity >= 1 && slot_len <= 255 && size >= needed;
    assert_eq!(
        ring.is_some(),
        accepted,
        "cap {capacity} slot {slot_len} size {size}"
    );
    let Some(mut ring) = ring else {
        return;
    };
    assert_eq!(ring.capacity(), capacity);
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let (mut pushed, mut popped, mut refused, mut attempts) = (0u64, 0u64, 0u64, 0u64);
    let mut n = 0u32;
    while !input.is_empty() {
        let op = input.u8();
        match op % 3 {
            0 | 1 => {
                let len = usize::from(input.u16() % 320);
                n += 1;
                let f = make_frame(n, len);
                let front = op % 3 == 1;
                let got = if front {
                    ring.push_front(&f)
                } else {
                    ring.push(&f)
                };
                attempts += 1;
                let expected = if len > slot_len {
                    Err(RingError::TooLong)
                } else if model.len() == capacity {
                    Err(RingError::Full)
                } else {
                    Ok(())
                };
                assert_eq!(got, expected, "push (front {front}) of {len}");
                match got {
                    Ok(()) if front => model.push_front(f),
                    Ok(()) => model.push_back(f),
                    Err(_) => refused += 1,
                }
                if got.is_ok() {
                    pushed += 1;
                }
            }
            _ => {
                let out_len = usize::from(input.u16() % 320);
                let mut out = vec![0x5au8; out_len];
                let got = ring.pop_into(&mut out);
                match model.pop_front() {
                    None => assert_eq!(got, None),
                    Some(f) => {
                        let n = f.len().min(out_len);
                        assert_eq!(got, Some(n));
                        assert_eq!(&out[..n], &f[..n]);
                        // Nothing past the copied bytes is touched.
                        assert!(out[n..].iter().all(|&b| b == 0x5a));
                        popped += 1;
                    }
                }
            }
        }
        assert_eq!(ring.len(), model.len());
        assert_eq!(ring.is_empty(), model.is_empty());
        assert!(ring.len() <= capacity);
        // Every frame offered is queued, popped or was refused with an error.
        assert_eq!(pushed + refused, attempts);
        assert_eq!(pushed - popped, ring.len() as u64);
    }
}
