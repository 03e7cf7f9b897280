// SPDX-License-Identifier: GPL-2.0

//! The receive state machine fed arbitrary I2C target event streams, against a model of the
//! frame rules, with the hard-IRQ path's accounting (every frame that ends is delivered to the
//! queue, counted as a queue overflow, counted as a drop by cause, or is a broadcast for
//! another address) checked on the real counters and frame queue.
//!
//! Input: own address, maximum frame length, queue length, then events: `0xf8` write
//! request, `0xf9` STOP, `0xfa` read request, `0xfb` read processed, `0xfc` a written byte
//! that fixes up the checksum the frame in progress needs next, `0xfd` the same for a
//! general-call (broadcast) frame, `0xfe` a `read()` of the queue, `0xff` followed by a byte
//! writes that byte, and any other byte is written as it is.

use std::collections::VecDeque;

use crate::{
    frame::{
        model_checksum,
        model_validate, //
    },
    input::Input,
    proto::{
        assembler::{
            Action,
            Assembler,
            Event,
            READ_FILL, //
        },
        frame::FrameError,
        ring::FrameRing,
        stats::Counters,
    },
};

/// The module's assembler capacity (`MAX_LEN_LIMIT`).
const CAP: usize = 240;

/// What the model expects of a frame that ended.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Frame(Vec<u8>),
    Broadcast(Vec<u8>),
    Dropped(FrameError),
}

/// The model: the bytes of the write in progress (own address first) and whether a byte was
/// refused, and per-cause counts of what ended.
struct Model {
    own: u8,
    max_len: usize,
    open: Option<(Vec<u8>, bool)>,
    queue: VecDeque<Vec<u8>>,
    queue_len: usize,
    ended: u64,
    foreign: u64,
    counters: Counters,
}

impl Model {
    /// Ends the write in progress, if it carried data.
    fn end(&mut self) -> Option<Expect> {
        let (f, overflow) = self.open.take()?;
        if f.len() <= 1 {
            return None;
        }
        self.ended += 1;
        if overflow {
            return Some(Expect::Dropped(FrameError::TooLong));
        }
        match model_validate(&f, self.max_len) {
            Ok(()) => Some(Expect::Frame(f)),
            Err(_) if model_validate(&f[1..], self.max_len).is_ok() => {
                Some(Expect::Broadcast(f[1..].to_vec()))
            }
            Err(e) => Some(Expect::Dropped(e)),
        }
    }

    /// What the hard-IRQ path does with a frame that ended: queue it or count why not.
    fn account(&mut self, e: &Expect) {
        let c = &mut self.counters;
        let queued = match e {
            Expect::Frame(f) => f,
            Expect::Broadcast(f) if f[0] == self.own => {
                c.rx_broadcast += 1;
                f
            }
            Expect::Broadcast(_) => {
                self.foreign += 1;
                return;
            }
            Expect::Dropped(FrameError::TooShort) => return c.rx_short += 1,
            Expect::Dropped(FrameError::TooLong) => return c.rx_too_long += 1,
            Expect::Dropped(FrameError::BadHeaderChecksum) => return c.rx_bad_cs1 += 1,
            Expect::Dropped(FrameError::BadDataChecksum) => return c.rx_bad_cs2 += 1,
            Expect::Dropped(FrameError::BadAddress) => return c.rx_bad_addr += 1,
        };
        if self.queue.len() < self.queue_len {
            self.queue.push_back(queued.clone());
            c.rx_frames += 1;
        } else {
            c.rx_overflow += 1;
        }
    }

    /// The byte that completes the checksum due next, for a frame starting at `start`
    /// (1 for a general-call frame, whose first data byte is the responder's address).
    fn fixup(&self, start: usize) -> u8 {
        let f = match &self.open {
            Some((f, _)) => &f[..],
            None => &[][..],
        };
        if f.len() <= start + 2 {
            model_checksum(f.get(start..).unwrap_or(&[]))
        } else {
            model_checksum(&f[start + 3..])
        }
    }
}

/// The real side: the assembler and what the hard-IRQ path does with its actions.
struct Real {
    asm: Assembler<CAP>,
    ring: FrameRing<Vec<u8>>,
    counters: Counters,
    own: u8,
}

impl Real {
    /// Feeds `ev`, checks the action against `expect`, and accounts for the frame.
    fn event(&mut self, ev: Event, expect: Option<&Expect>, nak: bool) {
        let action = self.asm.event(ev);
        let read = matches!(ev, Event::ReadRequested | Event::ReadProcessed);
        match (expect, &action) {
            (None, Action::None) => assert!(!read && !nak, "{ev:?}: None"),
            (None, Action::Nak) => assert!(nak, "{ev:?}: unexpected NAK"),
            (None, Action::ReadByte(b)) => assert!(read && *b == READ_FILL, "{ev:?}: {b:#x}"),
            (Some(Expect::Frame(f)), Action::Frame(g)) => assert_eq!(&f[..], *g),
            (Some(Expect::Broadcast(f)), Action::Broadcast(g)) => assert_eq!(&f[..], *g),
            (Some(Expect::Dropped(e)), Action::Dropped(g)) => assert_eq!(e, g),
            (e, a) => panic!("{ev:?}: expected {e:02x?}, got {a:02x?}"),
        }
        // The hard-IRQ path's accounting (`Instance::rx_event` and `State::dispatch`).
        let queued = match action {
            Action::Frame(f) => f,
            Action::Broadcast(f) if f[0] == self.own => {
                self.counters.rx_broadcast += 1;
                f
            }
            Action::Dropped(e) => return self.counters.count_rx_drop(e),
            _ => return,
        };
        match self.ring.push(queued) {
            Ok(()) => self.counters.rx_frames += 1,
            Err(_) => self.counters.rx_overflow += 1,
        }
    }
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let own = input.u8();
    let max_len = usize::from(input.u8());
    let queue_len = usize::from(input.u8() % 8) + 1;
    let storage = vec![0u8; FrameRing::<Vec<u8>>::storage_len(queue_len, CAP)];
    let Some(ring) = FrameRing::new(storage, queue_len, CAP) else {
        panic!("a {queue_len} x {CAP} ring was refused");
    };
    let mut real = Real {
        asm: Assembler::new(own, max_len),
        ring,
        counters: Counters::default(),
        own,
    };
    let mut model = Model {
        own,
        // A frame always has its address byte: the assembler takes a limit below 1 as 1,
        // which refuses the same frames.
        max_len: max_len.clamp(1, CAP),
        open: None,
        queue: VecDeque::new(),
        queue_len,
        ended: 0,
        foreign: 0,
        counters: Counters::default(),
    };
    assert_eq!(real.asm.max_len(), model.max_len);
    while !input.is_empty() {
        let op = input.u8();
        let ev = match op {
            0xf8 => Event::WriteRequested,
            0xf9 => Event::Stop,
            0xfa => Event::ReadRequested,
            0xfb => Event::ReadProcessed,
            0xfc => Event::WriteReceived(model.fixup(0)),
            0xfd => Event::WriteReceived(model.fixup(1)),
            0xfe => {
                let mut out = [0u8; CAP];
                let got = real.ring.pop_into(&mut out);
                let expected = model.queue.pop_front();
                assert_eq!(got.map(|n| &out[..n]), expected.as_deref());
                continue;
            }
            0xff => Event::WriteReceived(input.u8()),
            b => Event::WriteReceived(b),
        };
        let mut nak = false;
        let expect = match ev {
            Event::WriteRequested => {
                let e = model.end();
                model.open = Some((vec![own], false));
                e
            }
            Event::Stop | Event::ReadRequested => model.end(),
            Event::ReadProcessed => None,
            Event::WriteReceived(b) => {
                let (f, overflow) = model.open.get_or_insert_with(|| (vec![own], false));
                if f.len() >= model.max_len {
                    *overflow = true;
                    nak = true;
                } else {
                    f.push(b);
                }
                None
            }
        };
        if let Some(e) = &expect {
            model.account(e);
        }
        real.event(ev, expect.as_ref(), nak);
        // Every frame that ended is in exactly one place, and each counter is the model's.
        assert_eq!(real.counters, model.counters);
        let c = &real.counters;
        let drops = c.rx_short + c.rx_too_long + c.rx_bad_cs1 + c.rx_bad_cs2 + c.rx_bad_addr;
        assert_eq!(
            c.rx_frames + c.rx_overflow + drops + model.foreign,
            model.ended
        );
        assert_eq!(real.ring.len(), model.queue.len());
    }
}
