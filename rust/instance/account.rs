// SPDX-License-Identifier: GPL-2.0

//! The final account of an instance, logged once when it dies (unbind, unload, failed probe).
//!
//! Once the instance is dead its counters can no longer be read (`statistics/` is removed,
//! `IPMB_IOC_STATS` gives `ENODEV`), and what was still queued goes with it. So `kill` logs
//! one line with every counter and with what the instance held at that moment: frames in the
//! `read()` queue and in the inboxes (counted as received, never taken), a frame still being
//! received (no STOP yet), and requests still waiting for their outcome (their callers get
//! `ENODEV`). With the target unregistered before `kill`, the receive counters are final;
//! this is what lets a test account for every frame sent on the wire to the instance.

use super::Locked;
use crate::proto::stats::{
    Counters,
    NAMES, //
};
use core::fmt::{
    self,
    Write, //
};
use kernel::{
    prelude::*,
    str::Formatter, //
};

/// What an instance counted and held when it died.
pub(super) struct Final {
    counters: Counters,
    rx_queued: usize,
    inbox_queued: usize,
    rx_partial: bool,
    req_inflight: usize,
}

/// A counter as text: decimal up to `u32::MAX`, hexadecimal beyond, written by hand.
///
/// Decimal formatting of a `u64` divides 64-bit numbers, which 32-bit ARM kernels do not
/// link for Rust (the builtin is a stub that stops the kernel: an Oops on the first unbind);
/// here only 32-bit numbers are divided. And `core::fmt` took about 700 instructions a
/// counter: the account cost unbind 24 us of the bench guest's 150.
struct Count {
    /// The text, at `buf[at..]`: at most 10 decimal digits, or `0x` and 16 hex digits.
    buf: [u8; 18],
    at: usize,
}

impl Count {
    fn new(v: u64) -> Self {
        let mut c = Self {
            buf: [0; 18],
            at: 18,
        };
        match u32::try_from(v) {
            Ok(mut d) => loop {
                // A digit: `d % 10 < 10`.
                c.put(b'0' + (d % 10) as u8);
                d /= 10;
                if d == 0 {
                    break;
                }
            },
            // In two 32-bit halves, as `{:#x}{:08x}` wrote them: no 64-bit arithmetic.
            Err(_) => {
                let mut lo = v as u32;
                for _ in 0..8 {
                    c.put(Self::hex(lo));
                    lo >>= 4;
                }
                let mut hi = (v >> 32) as u32;
                while hi != 0 {
                    c.put(Self::hex(hi));
                    hi >>= 4;
                }
                c.put(b'x');
                c.put(b'0');
            }
        }
        c
    }

    /// The lowercase hex digit of the low 4 bits of `v`.
    fn hex(v: u32) -> u8 {
        b"0123456789abcdef"
            .get((v & 0xf) as usize)
            .copied()
            .unwrap_or(b'?')
    }

    /// Puts `b` before the text so far (never past the start: at most 18 bytes are put).
    fn put(&mut self, b: u8) {
        self.at = self.at.saturating_sub(1);
        if let Some(slot) = self.buf.get_mut(self.at) {
            *slot = b;
        }
    }

    fn as_str(&self) -> &str {
        self.buf
            .get(self.at..)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("?")
    }
}

impl Final {
    /// Takes the account from the state (under `Instance::rx`).
    pub(super) fn of(g: &Locked) -> Self {
        Self {
            counters: g.st.counters,
            rx_queued: g.st.ring.len(),
            inbox_queued: g.st.clients.queued(),
            rx_partial: g.asm.in_progress(),
            req_inflight: g.st.seqs.waiting(),
        }
    }

    /// Writes the account as ` name=value` pairs.
    fn write(&self, f: &mut impl Write) -> fmt::Result {
        for (name, v) in NAMES.iter().zip(self.counters.values()) {
            f.write_str(" ")?;
            f.write_str(name.to_str().unwrap_or("?"))?;
            f.write_str("=")?;
            f.write_str(Count::new(v).as_str())?;
        }
        let size = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        for (label, v) in [
            (" rx_queued=", size(self.rx_queued)),
            (" inbox_queued=", size(self.inbox_queued)),
            (" rx_partial=", u64::from(self.rx_partial)),
            (" req_inflight=", size(self.req_inflight)),
        ] {
            f.write_str(label)?;
            f.write_str(Count::new(v).as_str())?;
        }
        Ok(())
    }

    /// Logs the account of the instance of adapter `adapter` (process context).
    pub(super) fn log(&self, adapter: u32) {
        // 23 counters of at most 40 bytes each, and the queues.
        let mut buf = [0u8; 1024];
        let mut f = Formatter::new(&mut buf);
        let ok = self.write(&mut f).is_ok();
        let n = f.bytes_written();
        let text = buf
            .get(..n)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("");
        pr_info!(
            "ipmb-{}: final account{}:{}\n",
            adapter,
            if ok { "" } else { " (truncated)" },
            text
        );
    }
}

#[cfg(CONFIG_KUNIT)]
#[kunit_tests(ipmb_account)]
mod tests {
    use super::*;

    #[test]
    fn counters_beyond_32_bits_are_written_in_hex() {
        let account = Final {
            counters: Counters {
                rx_frames: u64::MAX,
                rx_short: u64::from(u32::MAX),
                ..Counters::default()
            },
            rx_queued: 3,
            inbox_queued: 0,
            rx_partial: true,
            req_inflight: 1,
        };
        let mut buf = [0u8; 1024];
        let mut f = Formatter::new(&mut buf);
        let ok = account.write(&mut f).is_ok();
        let n = f.bytes_written();
        let text = buf.get(..n).unwrap_or(&[]);
        assert!(ok);
        assert!(text.starts_with(b" rx_frames=0xffffffffffffffff rx_short=4294967295 "));
        assert!(text.ends_with(b" rx_queued=3 inbox_queued=0 rx_partial=1 req_inflight=1"));
    }

    #[test]
    fn counters_at_the_edges_are_written_as_before() {
        assert_eq!(Count::new(0).as_str(), "0");
        assert_eq!(Count::new(10).as_str(), "10");
        assert_eq!(Count::new(1 << 32).as_str(), "0x100000000");
        assert_eq!(Count::new(0x1234_0000_00ab).as_str(), "0x1234000000ab");
    }
}
