// SPDX-License-Identifier: GPL-2.0

//! The requester: requests checked and built, seq allocation (waiting for a seq when none is
//! usable), the first send, the synchronous wait, and the timeout work that resends and
//! completes overdue requests.
//!
//! A child of `instance`: it works on the private state of [`Instance`] under the same rules
//! (see `rust/instance.rs`): `rx` is never held across a transfer, and waiters are woken after
//! it is released. Inbox places of asynchronous requests are reserved through
//! `instance/clients.rs`.

use kernel::{
    prelude::*,
    sync::{
        Arc,
        CondVarTimeoutResult, //
    },
    time::{
        msecs_to_jiffies,
        Delta, //
    },
    workqueue::{
        self,
        WorkItem, //
    },
};

use super::{
    Instance,
    State,
    Storage,
    Wake,
    MAX_LEN_LIMIT,
    NS_PER_MS,
    TICK_MS, //
};
use crate::{
    proto::{
        frame::{
            self,
            Header, //
        },
        seqtab::{
            Expiry,
            Key,
            Outcome,
            Owner,
            SEQ_COUNT, //
        },
    },
    uapi::{
        self,
        Msg, //
    },
};

/// One frame per seq: the requests (kept for resending) or the synchronous responses.
pub(super) struct SeqFrames {
    buf: Storage,
    lens: [u8; SEQ_COUNT],
    slot: usize,
}

impl SeqFrames {
    pub(super) fn new(slot: usize) -> Result<Self> {
        Ok(Self {
            buf: Storage::new(SEQ_COUNT * slot)?,
            lens: [0; SEQ_COUNT],
            slot,
        })
    }

    pub(super) fn put(&mut self, seq: u8, f: &[u8]) {
        let start = usize::from(seq) * self.slot;
        if let Some(dst) = self.buf.0.get_mut(start..start + f.len()) {
            if f.len() <= self.slot {
                dst.copy_from_slice(f);
                // At most `slot` (240) bytes.
                self.lens[usize::from(seq) & (SEQ_COUNT - 1)] = f.len() as u8;
            }
        }
    }

    pub(super) fn get(&self, seq: u8) -> &[u8] {
        let start = usize::from(seq) * self.slot;
        let len = usize::from(self.lens[usize::from(seq) & (SEQ_COUNT - 1)]);
        self.buf.0.get(start..start + len).unwrap_or(&[])
    }
}

/// A request checked and built, with seq 0 until one is allocated.
pub(crate) struct Prepared {
    frame: [u8; MAX_LEN_LIMIT],
    len: usize,
    key: Key,
    timeout_ns: u64,
    retries: u8,
    broadcast: bool,
}

impl Prepared {
    fn bytes(&self) -> &[u8] {
        &self.frame[..self.len]
    }

    /// Writes `seq` into the frame and recomputes the data checksum.
    fn set_seq(&mut self, seq: u8) {
        let last = self.len - 1;
        self.frame[frame::SEQ_LUN] = (seq << 2) | (self.frame[frame::SEQ_LUN] & 3);
        self.frame[last] = frame::checksum(&self.frame[frame::SRC_SA..last]);
    }
}

/// Fills `m` as the response to the request of `key`, with a completion code the kernel made
/// up.
fn set_synthesized(m: &mut Msg, key: &Key, seq: u8, cc: u8) {
    m.addr = key.rs_sa;
    m.netfn = key.netfn;
    m.lun = key.rs_lun;
    m.own_lun = key.rq_lun;
    m.cmd = key.cmd;
    m.seq = seq;
    m.cc = cc;
    m.data_len = 0;
    m.flags = uapi::MSG_SYNTHESIZED;
}

/// `ns` nanoseconds in milliseconds, rounded up, saturating at `u32::MAX`.
///
/// Through [`Delta`], which divides with the kernel's 64-bit helpers: 32-bit kernels (ARMv7
/// BMCs) have no 64-bit division operator, so a plain `u64` division would not link.
fn ms_ceil(ns: u64) -> u32 {
    let ns = i64::try_from(ns)
        .unwrap_or(i64::MAX)
        .saturating_add(NS_PER_MS as i64 - 1);
    u32::try_from(Delta::from_nanos(ns).as_millis()).unwrap_or(u32::MAX)
}

impl Instance {
    /// Arms the timeout work for the earliest deadline, at most [`TICK_MS`] away (a pending
    /// work keeps its time, so the tick bounds how late a shorter deadline is seen).
    fn arm(this: &Arc<Self>, st: &State, now: u64) {
        if st.dead {
            return;
        }
        let Some(deadline) = st.seqs.next_deadline() else {
            return;
        };
        let ms = ms_ceil(deadline.saturating_sub(now)).min(TICK_MS as u32);
        let jiffies = msecs_to_jiffies(ms).max(1);
        // Already pending: it runs within a tick and re-arms.
        let _ = workqueue::system().enqueue_delayed(this.clone(), jiffies);
    }

    /// Checks and builds a request from `m`: `EINVAL` for a malformed one, `Ok(None)` if it
    /// does not fit the maximum frame length (the caller answers `IPMB_CC_TOO_LONG`).
    pub(crate) fn prepare(&self, m: &Msg) -> Result<(Key, Option<Prepared>)> {
        let retries = match m.retries {
            uapi::RETRIES_DEFAULT => u8::try_from(self.info.req_retries).unwrap_or(0),
            r if r <= uapi::MAX_RETRIES => r,
            _ => return Err(self.invalid()),
        };
        let ok = m.addressing_valid()
            && m.flags & !uapi::MSG_BROADCAST == 0
            && m.timeout_ms <= uapi::MAX_TIMEOUT_MS;
        let data = match m.payload() {
            Some(d) if ok => d,
            _ => return Err(self.invalid()),
        };
        let hdr = Header {
            dest: m.addr,
            netfn: m.netfn,
            dest_lun: m.lun,
            src: self.info.own_addr,
            seq: 0,
            src_lun: m.own_lun,
            cmd: m.cmd,
        };
        let key = Key::of_request(&hdr);
        let mut p = Prepared {
            frame: [0; MAX_LEN_LIMIT],
            len: 0,
            key,
            timeout_ns: u64::from(match m.timeout_ms {
                0 => self.info.req_timeout_ms,
                t => t,
            }) * NS_PER_MS,
            retries,
            broadcast: m.flags & uapi::MSG_BROADCAST != 0,
        };
        if p.broadcast {
            // Never resent: a general call has no single responder to NAK or answer twice.
            p.retries = 0;
        }
        match frame::build(&mut p.frame, self.max_len, &hdr, data) {
            Ok(len) => {
                p.len = len;
                Ok((key, Some(p)))
            }
            Err(frame::FrameError::TooLong) => Ok((key, None)),
            Err(_) => Err(self.invalid()),
        }
    }

    /// Allocates a seq (waiting for one unless `nonblock`), records and sends the request,
    /// and arms the timeout work. For an asynchronous owner the inbox place is reserved
    /// first. Returns the seq and id.
    pub(crate) fn start(
        this: &Arc<Self>,
        p: &mut Prepared,
        owner: Owner,
        nonblock: bool,
    ) -> Result<(u8, u64)> {
        let (seq, id) = {
            let mut g = this.rx.lock();
            loop {
                let st = &mut g.st;
                if st.dead {
                    return Err(ENODEV);
                }
                if let Owner::Async(c) = owner {
                    st.clients.can_reserve(usize::from(c))?;
                }
                let now = this.now();
                let id = st.next_id;
                if let Some(seq) = st
                    .seqs
                    .alloc(p.key, owner, id, now, p.timeout_ns, p.retries)
                {
                    st.next_id += 1;
                    p.set_seq(seq);
                    st.requests.put(seq, p.bytes());
                    st.counters.req_sent += 1;
                    if let Owner::Async(c) = owner {
                        st.clients.reserve(usize::from(c));
                    }
                    Self::arm(this, st, now);
                    break (seq, id);
                }
                if nonblock {
                    return Err(EAGAIN);
                }
                // Every seq is in flight (wait for one to be freed), or quarantined for this
                // exchange until a known time (wait until then, or for a free seq).
                let interrupted = match st.seqs.usable_at(&p.key, now) {
                    None => this.seq_free.wait_interruptible(&mut g),
                    Some(at) => {
                        let jiffies = msecs_to_jiffies(ms_ceil(at.saturating_sub(now)));
                        matches!(
                            this.seq_free
                                .wait_interruptible_timeout(&mut g, jiffies.max(1)),
                            CondVarTimeoutResult::Signal { .. }
                        )
                    }
                };
                if interrupted {
                    return Err(ERESTARTSYS);
                }
            }
        };
        if this.send(p.bytes(), p.broadcast).is_err() {
            this.send_failed(seq);
        }
        Ok((seq, id))
    }

    /// Completes the request on `seq` with `IPMB_CC_BUS_ERROR`: it could not be sent (NAK or
    /// bus error after the retries), so no response can come.
    fn send_failed(&self, seq: u8) {
        let mut wake = Wake::default();
        {
            let mut g = self.rx.lock();
            let now = self.now();
            let st = &mut g.st;
            let cc = uapi::CC_BUS_ERROR;
            if let Some(done) = st.seqs.complete(seq, Outcome::Synthesized(cc), now) {
                st.counters.req_bus_errors += 1;
                st.complete_synthesized(done, seq, cc, &mut wake);
            }
        }
        self.wake(wake);
    }

    /// The synchronous request ioctl: sends `m` and waits for its outcome, written back to
    /// `m`.
    pub(crate) fn request(this: &Arc<Self>, m: &mut Msg, nonblock: bool) -> Result {
        let (key, p) = this.prepare(m)?;
        let Some(mut p) = p else {
            set_synthesized(m, &key, 0, uapi::CC_TOO_LONG);
            return Ok(());
        };
        let (seq, _) = Self::start(this, &mut p, Owner::Sync, nonblock)?;
        let mut g = this.rx.lock();
        let mut interrupted = false;
        loop {
            let now = this.now();
            let st = &mut g.st;
            // The response stays in its slot until the seq is reused, which needs this lock.
            let rsp = st.responses.get(seq);
            match st.seqs.take(seq, now) {
                Some(Outcome::Response(_)) => {
                    m.set_response(rsp);
                    m.flags = 0;
                    break;
                }
                Some(Outcome::Synthesized(cc)) => {
                    set_synthesized(m, &key, seq, cc);
                    break;
                }
                None => {}
            }
            if interrupted || st.dead {
                st.seqs.abandon(seq, now);
                st.counters.req_aborted += 1;
                let dead = st.dead;
                drop(g);
                this.seq_free.notify_all();
                return Err(if dead { ENODEV } else { EINTR });
            }
            let Some(cv) = this.seq_wait.get(usize::from(seq)) else {
                return Err(EINVAL);
            };
            interrupted = cv.wait_interruptible(&mut g);
        }
        drop(g);
        this.seq_free.notify_all();
        m.seq = seq;
        m.id = 0;
        m.kind = uapi::KIND_RESPONSE;
        Ok(())
    }
}

impl WorkItem for Instance {
    type Pointer = Arc<Instance>;

    /// Resends requests whose response is overdue and completes those out of tries.
    fn run(this: Arc<Instance>) {
        loop {
            let mut frame = [0u8; MAX_LEN_LIMIT];
            let mut wake = Wake::default();
            let resend = {
                let mut g = this.rx.lock();
                let now = this.now();
                let st = &mut g.st;
                if st.dead {
                    return;
                }
                match st.seqs.expire(now) {
                    None => {
                        Self::arm(&this, st, now);
                        return;
                    }
                    Some(Expiry::Retry(seq)) => {
                        st.counters.req_retries += 1;
                        let f = st.requests.get(seq);
                        frame[..f.len()].copy_from_slice(f);
                        Some((seq, f.len()))
                    }
                    Some(Expiry::TimedOut {
                        seq,
                        owner,
                        id,
                        key,
                    }) => {
                        st.counters.req_timeouts += 1;
                        st.complete_synthesized((owner, id, key), seq, uapi::CC_TIMEOUT, &mut wake);
                        None
                    }
                }
            };
            this.wake(wake);
            let Some((seq, len)) = resend else {
                continue;
            };
            // A broadcast is never resent, so this is a plain send.
            if this.send(&frame[..len], false).is_err() {
                this.send_failed(seq);
            }
        }
    }
}
