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

/// A counter as text: decimal up to `u32::MAX`, hexadecimal beyond.
///
/// Decimal formatting of a `u64` divides 64-bit numbers, which 32-bit ARM kernels do not
/// link for Rust (the builtin is a stub that stops the kernel: an Oops on the first unbind).
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match u32::try_from(self.0) {
            Ok(v) => write!(f, "{v}"),
            // In two 32-bit halves: no 64-bit arithmetic at all.
            Err(_) => write!(f, "{:#x}{:08x}", (self.0 >> 32) as u32, self.0 as u32),
        }
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
            write!(f, " {}={}", name.to_str().unwrap_or("?"), Count(v))?;
        }
        write!(
            f,
            " rx_queued={} inbox_queued={} rx_partial={} req_inflight={}",
            self.rx_queued,
            self.inbox_queued,
            u8::from(self.rx_partial),
            self.req_inflight
        )
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
}
