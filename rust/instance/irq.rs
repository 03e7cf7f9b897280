// SPDX-License-Identifier: GPL-2.0

//! The hard-IRQ path: the I2C target callback and the delivery of every checked frame.
//!
//! [`Instance::rx_event`] runs in the I2C controller's interrupt handler, for each bus event
//! addressed to the instance. It feeds the receive state machine under `Instance::rx` (an
//! IRQ-saving spinlock) and delivers each complete frame to exactly one place: the request it
//! answers, the inbox of the client that registered its netFn and cmd, or the `read()` queue.
//! Code here never sleeps or allocates, does bounded work, and wakes waiters only after the
//! lock is dropped. The requester's completions (from the transmit work and from process
//! context) reuse the same delivery, [`State::complete_synthesized`].
//!
//! The response timer's callback runs in hard-IRQ context too: it only notes under `rx` that
//! the timer fired and queues the transmit work, which does the rest and may sleep.

use kernel::{
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
    time::hrtimer::{
        HrTimerCallback,
        HrTimerCallbackContext,
        HrTimerRestart, //
    },
};

use super::{
    Instance,
    Locked,
    State,
    Wake, //
};
use crate::{
    proto::{
        assembler::{
            Action,
            Event,
            READ_FILL, //
        },
        frame::{
            self,
            Header, //
        },
        seqtab::{
            Key,
            Match,
            Owner, //
        },
    },
    uapi,
};

impl State {
    /// Delivers a checked frame (own address first); `flags` are the message flags a
    /// routed request gets. Interrupt context: bounded work, no allocation.
    ///
    /// `now` reads the clock: only a response needs the time (to match it against the
    /// requests in flight), so a request costs no clock read.
    fn dispatch(&mut self, f: &[u8], flags: u8, now: impl FnOnce() -> u64, wake: &mut Wake) {
        let Some(hdr) = Header::parse(f) else {
            return;
        };
        if frame::is_response(f[frame::NETFN_LUN]) {
            let now = now();
            let key = Key::of_response(&hdr);
            // Frames are at most 240 bytes.
            match self.seqs.on_response(key, hdr.seq, f.len() as u8, now) {
                Match::Matched {
                    owner: Owner::Sync, ..
                } => {
                    self.responses.put(hdr.seq, f);
                    self.counters.rx_frames += 1;
                    self.counters.rsp_matched += 1;
                    wake.seq = Some(hdr.seq);
                    return;
                }
                Match::Matched {
                    owner: Owner::Async(c),
                    id,
                } => {
                    self.counters.rx_frames += 1;
                    self.counters.rsp_matched += 1;
                    self.complete_async(c, id, 0, f, wake);
                    wake.seq_free = true;
                    return;
                }
                Match::Late => {
                    self.counters.rsp_late += 1;
                    return;
                }
                Match::Duplicate => {
                    self.counters.rsp_duplicate += 1;
                    return;
                }
                Match::Unmatched => {
                    // A response to a request a file sent with `write()`: to that file.
                    if self.deliver_to_writer(key, hdr.seq, f, now) {
                        self.for_readers(wake);
                        return;
                    }
                }
            }
        } else if let Some(c) = self.clients.route(hdr.netfn, hdr.cmd) {
            if self.clients.deliver_request(c, flags, f) {
                self.counters.rx_frames += 1;
                self.counters.rx_routed += 1;
                wake.client = Some(c);
            } else {
                self.counters.rx_route_overflow += 1;
            }
            return;
        }
        self.queue_shared(f, wake);
    }

    /// Puts the completion of client `c`'s asynchronous request `id` into its inbox, in the
    /// place reserved for it.
    fn complete_async(&mut self, c: u8, id: u64, flags: u8, f: &[u8], wake: &mut Wake) {
        let c = usize::from(c);
        if self.clients.complete(c, id, flags, f) {
            wake.client = Some(c);
            return;
        }
        // Cannot happen: the place was reserved when the request was submitted.
        self.counters.req_aborted += 1;
    }

    /// Delivers a request's synthesized completion code: a synchronous caller collects it
    /// from its slot, an asynchronous one gets a response made up from the request.
    pub(crate) fn complete_synthesized(
        &mut self,
        (owner, id, key): (Owner, u64, Key),
        seq: u8,
        cc: u8,
        wake: &mut Wake,
    ) {
        match owner {
            Owner::Sync => wake.seq = Some(seq),
            Owner::Async(c) => {
                let hdr = Header {
                    dest: self.own_addr,
                    netfn: key.netfn | 1,
                    dest_lun: key.rq_lun,
                    src: key.rs_sa,
                    seq,
                    src_lun: key.rs_lun,
                    cmd: key.cmd,
                };
                let mut f = [0u8; frame::MIN_RESPONSE_LEN];
                if frame::build(&mut f, frame::MIN_RESPONSE_LEN, &hdr, &[cc]).is_ok() {
                    self.complete_async(c, id, uapi::MSG_SYNTHESIZED, &f, wake);
                }
                wake.seq_free = true;
            }
        }
    }
}

impl Instance {
    /// Handles one target event (interrupt context); see
    /// [`crate::abstractions::i2c_target::Target::event`].
    ///
    /// Inlined into the target callback: a data byte, one per byte of every frame, takes the
    /// lock and is stored; it ends no frame and wakes no one. The other events are handled out
    /// of line ([`Self::rx_frame_event`]).
    #[inline]
    pub(crate) fn rx_event(&self, ev: Event) -> Result<u8> {
        match ev {
            Event::WriteReceived(b) => {
                if self.rx.lock().asm.byte(b) {
                    Ok(READ_FILL)
                } else {
                    // The frame is too long: NAK the byte; it is counted at the frame's end.
                    Err(EINVAL)
                }
            }
            _ => self.rx_frame_event(ev),
        }
    }

    /// The events that start, end or read a frame (interrupt context).
    #[inline(never)]
    fn rx_frame_event(&self, ev: Event) -> Result<u8> {
        let mut wake = Wake::default();
        let ret = {
            let mut guard = self.rx.lock();
            let Locked { asm, st } = &mut *guard;
            match asm.event(ev) {
                Action::None => Ok(READ_FILL),
                // Any error NAKs the byte; the frame is counted as too long at its end.
                Action::Nak => Err(EINVAL),
                Action::ReadByte(b) => Ok(b),
                end => {
                    self.frame_end(st, end, &mut wake);
                    Ok(READ_FILL)
                }
            }
        };
        // Wake waiters only once the lock is released.
        self.wake(wake);
        ret
    }

    /// Takes the end of a frame from the assembler: dispatches a good frame, counts a bad one
    /// (interrupt context, under `rx`).
    fn frame_end(&self, st: &mut State, end: Action<'_>, wake: &mut Wake) {
        match end {
            Action::Frame(f) => {
                // The clock is read at most once per frame, never per byte.
                st.dispatch(f, 0, || self.now(), wake);
            }
            Action::Broadcast(f) => {
                // Broadcasts name the responder they are for; those for other addresses are
                // not ours to take or count.
                if f[frame::DEST_SA] == st.own_addr {
                    st.counters.rx_broadcast += 1;
                    st.dispatch(f, uapi::MSG_BROADCAST, || self.now(), wake);
                }
            }
            Action::Dropped(e) => st.counters.count_rx_drop(e),
            Action::None | Action::Nak | Action::ReadByte(_) => {}
        }
    }
}

impl HrTimerCallback for Instance {
    type Pointer<'a> = Arc<Self>;

    /// The response timer fired (hard IRQ): hands the overdue requests to the transmit work.
    fn run(this: ArcBorrow<'_, Self>, _ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        let mut g = this.rx.lock();
        g.st.timer_at = None;
        // Queued under `rx` while alive, as everywhere: `kill` then waits for it.
        if !g.st.dead {
            // Already queued: that run sees the overdue requests too.
            let _ = this.queue.enqueue(Arc::from(this));
        }
        HrTimerRestart::NoRestart
    }
}

#[cfg(CONFIG_KUNIT)]
mod tests;
