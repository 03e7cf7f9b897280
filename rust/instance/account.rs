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
use core::fmt::Write;
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

    /// Logs the account of the instance of adapter `adapter` (process context).
    pub(super) fn log(&self, adapter: u32) {
        // 23 counters of at most 40 bytes each, and the queues.
        let mut buf = [0u8; 1024];
        let mut f = Formatter::new(&mut buf);
        let mut ok = NAMES
            .iter()
            .zip(self.counters.values())
            .all(|(name, v)| write!(f, " {}={}", name.to_str().unwrap_or("?"), v).is_ok());
        ok &= write!(
            f,
            " rx_queued={} inbox_queued={} rx_partial={} req_inflight={}",
            self.rx_queued,
            self.inbox_queued,
            u8::from(self.rx_partial),
            self.req_inflight
        )
        .is_ok();
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
