// SPDX-License-Identifier: GPL-2.0

//! The requester: requests checked and built, seq allocation (waiting for a seq when none is
//! usable, at most the request's timeout), the first send, the synchronous wait, the response
//! timer and the transmit work.
//!
//! A child of `instance`: it works on the private state of [`Instance`] under the same rules
//! (see `rust/instance.rs`): `rx` is never held across a transfer, and waiters are woken after
//! it is released. Inbox places of asynchronous requests are reserved through
//! `instance/clients.rs`.
//!
//! A request's timeout runs from when its try is on the wire. Whoever sends a try (the caller,
//! or the transmit work) reports the result under `rx` by seq and id ([`Instance::transmit`]),
//! because by then the request may have ended and its seq gone to another request. The
//! response timer is a high-resolution timer set for the earliest deadline ([`Instance::arm`]);
//! its callback (`instance/irq.rs`) queues the transmit work, which may sleep: it times
//! requests out, resends them, and sends the first try of requests submitted with `O_NONBLOCK`.

use core::mem::MaybeUninit;
use kernel::{
    prelude::*,
    sync::{
        Arc,
        CondVarTimeoutResult, //
    },
    time::{
        hrtimer::HrTimerPointer,
        msecs_to_jiffies,
        Delta, //
    },
    workqueue::WorkItem,
};

use super::{
    Instance,
    State,
    Storage,
    Wake,
    MAX_LEN_LIMIT,
    NS_PER_MS, //
};
use crate::{
    abstractions::stack_buf::zeroed_prefix,
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
        stats::Counters,
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
    /// Per seq (bit), for requests: it goes to the general-call address.
    broadcast: u64,
    slot: usize,
}

impl SeqFrames {
    pub(super) fn new(slot: usize) -> Result<Self> {
        Ok(Self {
            buf: Storage::new(SEQ_COUNT * slot)?,
            lens: [0; SEQ_COUNT],
            broadcast: 0,
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

    /// Stores request frame `f` of `seq`, which is a broadcast if `broadcast`.
    fn put_request(&mut self, seq: u8, f: &[u8], broadcast: bool) {
        self.put(seq, f);
        let bit = 1u64 << (seq & 63);
        self.broadcast = if broadcast {
            self.broadcast | bit
        } else {
            self.broadcast & !bit
        };
    }

    /// Copies the request frame of `seq` into `out`; returns its length and whether it is a
    /// broadcast.
    fn copy_request(&self, seq: u8, out: &mut [u8; MAX_LEN_LIMIT]) -> (usize, bool) {
        let f = self.get(seq);
        out[..f.len()].copy_from_slice(f);
        (f.len(), self.broadcast & (1u64 << (seq & 63)) != 0)
    }

    pub(super) fn get(&self, seq: u8) -> &[u8] {
        let start = usize::from(seq) * self.slot;
        let len = usize::from(self.lens[usize::from(seq) & (SEQ_COUNT - 1)]);
        self.buf.0.get(start..start + len).unwrap_or(&[])
    }
}

/// The stack buffer a request is built in ([`Instance::prepare`]), of which only the part the
/// frame fills is initialised: zeroing all of it cost more than building the frame (a byte per
/// instruction under the bench's instruction counting).
type FrameBuf = MaybeUninit<[u8; MAX_LEN_LIMIT]>;

/// A request checked and built, with seq 0 until one is allocated.
pub(crate) struct Prepared<'a> {
    frame: &'a mut [u8],
    len: usize,
    key: Key,
    timeout_ns: u64,
    retries: u8,
    broadcast: bool,
}

impl Prepared<'_> {
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

/// What the transmit work found to do under `rx`.
enum Job {
    /// Nothing is due.
    Idle,
    /// A request was completed (woken once `rx` is released); look again.
    Completed,
    /// Send this try of request `id` on `seq`: `len` bytes of the frame copied out.
    Send {
        seq: u8,
        id: u64,
        len: usize,
        broadcast: bool,
    },
}

impl State {
    /// Finds the transmit work's next job at `now`: an overdue request (completed with
    /// `IPMB_CC_TIMEOUT`, or its resend) first, then the oldest queued first send.
    fn next_job(&mut self, now: u64, frame: &mut [u8; MAX_LEN_LIMIT], wake: &mut Wake) -> Job {
        let (seq, id) = match self.seqs.expire(now) {
            Some(Expiry::TimedOut {
                seq,
                owner,
                id,
                key,
            }) => {
                self.counters.req_timeouts += 1;
                self.complete_synthesized((owner, id, key), seq, uapi::CC_TIMEOUT, wake);
                return Job::Completed;
            }
            Some(Expiry::Retry { seq, id }) => {
                self.counters.req_retries += 1;
                (seq, id)
            }
            None => match self.seqs.next_queued() {
                Some(next) => next,
                None => return Job::Idle,
            },
        };
        let (len, broadcast) = self.requests.copy_request(seq, frame);
        Job::Send {
            seq,
            id,
            len,
            broadcast,
        }
    }

    /// Completes an asynchronous request of client `c` at once through its inbox, with `cc`
    /// (it was never sent); returns its id. `ENODEV` after unbind.
    fn complete_unsent(&mut self, c: usize, key: Key, cc: u8, wake: &mut Wake) -> Result<u64> {
        if self.dead {
            return Err(ENODEV);
        }
        self.clients.can_reserve(c)?;
        self.clients.reserve(c);
        let id = self.next_id;
        self.next_id += 1;
        // As for a synchronous request: one too long to send is not counted as submitted,
        // since no counter takes its outcome (0xC8).
        if cc == uapi::CC_TIMEOUT {
            self.counters.req_sent += 1;
        }
        count_unsent(&mut self.counters, cc);
        // At most `MAX_CLIENTS` (64).
        self.complete_synthesized((Owner::Async(c as u8), id, key), 0, cc, wake);
        Ok(id)
    }

    /// What the synchronous caller of the request on `seq` gets at `now`: its outcome, once
    /// there is one; `EINTR` if it was `interrupted` before; `ENODEV` after unbind, whatever
    /// became of the request; `None` while it waits.
    ///
    /// A caller that stops waiting abandons its request, counted in `req_aborted` only if the
    /// request was still waiting: an outcome that came before unbind was counted when it came.
    pub(crate) fn collect(
        &mut self,
        seq: u8,
        now: u64,
        interrupted: bool,
    ) -> Option<Result<Outcome>> {
        if !self.dead {
            if let Some(outcome) = self.seqs.take(seq, now) {
                return Some(Ok(outcome));
            }
            if !interrupted {
                return None;
            }
        } else if self.seqs.take(seq, now).is_some() {
            return Some(Err(ENODEV));
        }
        self.seqs.abandon(seq, now);
        self.counters.req_aborted += 1;
        Some(Err(if self.dead { ENODEV } else { EINTR }))
    }
}

/// Counts a request completed before it was sent: a timeout while it waited for a seq.
fn count_unsent(c: &mut Counters, cc: u8) {
    if cc == uapi::CC_TIMEOUT {
        c.req_timeouts += 1;
    }
}

impl Instance {
    /// Sets the response timer for the earliest deadline, unless it is set for that or an
    /// earlier time already (process context: a started timer is cancelled first, which may
    /// wait for its callback).
    fn arm(this: &Arc<Self>) {
        let mut armed = this.armed.lock();
        let at = {
            let mut g = this.rx.lock();
            let st = &mut g.st;
            let Some(next) = st.seqs.next_deadline() else {
                return;
            };
            if st.dead || st.timer_at.is_some_and(|t| t <= next) {
                return;
            }
            st.timer_at = Some(next);
            next
        };
        // Cancelled before it is started again: dropping a handle cancels its timer.
        drop(armed.take());
        let at = Delta::from_nanos(i64::try_from(at).unwrap_or(i64::MAX));
        *armed = Some(this.clone().start(this.epoch + at));
    }

    /// Sends one try of request `id` on `seq` and reports the result: its deadline starts, or
    /// it is completed with `IPMB_CC_BUS_ERROR` (NAK or bus error after the retries), unless it
    /// ended meanwhile. `ENODEV` once the instance is dead.
    fn transmit(this: &Arc<Self>, seq: u8, id: u64, frame: &[u8], broadcast: bool) -> Result {
        let sent = this.send(frame, broadcast);
        let mut wake = Wake::default();
        {
            let mut g = this.rx.lock();
            let now = this.now();
            let st = &mut g.st;
            if st.dead {
                return Err(ENODEV);
            }
            if sent.is_ok() {
                st.seqs.sent(seq, id, now);
            } else {
                let cc = uapi::CC_BUS_ERROR;
                if let Some(done) = st.seqs.complete(seq, id, Outcome::Synthesized(cc), now) {
                    st.counters.req_bus_errors += 1;
                    st.complete_synthesized(done, seq, cc, &mut wake);
                }
            }
        }
        this.wake(wake);
        Ok(())
    }

    /// Allocates a seq (waiting for one unless `nonblock`, but not past the request's timeout),
    /// records the request and sends its first try, or, for an asynchronous request with
    /// `nonblock`, queues that send to the transmit work. For an asynchronous owner the inbox
    /// place is reserved first. Returns the seq and id, or `None` if no seq became usable
    /// within the timeout.
    fn start(
        this: &Arc<Self>,
        p: &mut Prepared<'_>,
        owner: Owner,
        nonblock: bool,
    ) -> Result<Option<(u8, u64)>> {
        let queued = nonblock && matches!(owner, Owner::Async(_));
        let give_up = this.now().saturating_add(p.timeout_ns);
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
                    st.requests.put_request(seq, p.bytes(), p.broadcast);
                    st.counters.req_sent += 1;
                    if let Owner::Async(c) = owner {
                        st.clients.reserve(usize::from(c));
                    }
                    if queued {
                        st.seqs.queue(seq, id);
                        // Queued under `rx` while alive: `kill` then waits for it.
                        let _ = this.queue.enqueue(this.clone());
                    }
                    break (seq, id);
                }
                if nonblock {
                    return Err(EAGAIN);
                }
                if now >= give_up {
                    return Ok(None);
                }
                // Every seq is in flight (wait for one to be freed), or quarantined for this
                // exchange until a known time (wait until then, or for a free seq), but not
                // past the request's timeout.
                let until = st.seqs.usable_at(&p.key, now).unwrap_or(give_up);
                let jiffies = msecs_to_jiffies(ms_ceil(until.min(give_up).saturating_sub(now)));
                if let CondVarTimeoutResult::Signal { .. } = this
                    .seq_free
                    .wait_interruptible_timeout(&mut g, jiffies.max(1))
                {
                    return Err(ERESTARTSYS);
                }
            }
        };
        if !queued {
            Self::transmit(this, seq, id, p.bytes(), p.broadcast)?;
            Self::arm(this);
        }
        Ok(Some((seq, id)))
    }
    /// Checks and builds a request from `m`: `ENODEV` after unbind, `EINVAL` for a malformed
    /// one, `Ok(None)` if it does not fit the maximum frame length (the caller answers
    /// `IPMB_CC_TOO_LONG`).
    fn prepare<'a>(&self, m: &Msg, buf: &'a mut FrameBuf) -> Result<(Key, Option<Prepared<'a>>)> {
        if self.rx.lock().st.dead {
            return Err(ENODEV);
        }
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
            // A frame longer than the buffer is refused by `build` as before.
            // At least IPMB's 32 bytes are zeroed, in line ([`zeroed_prefix`]).
            frame: zeroed_prefix::<_, { frame::SPEC_MAX_LEN }>(
                buf,
                frame::MIN_REQUEST_LEN + data.len(),
            ),
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
        match frame::build(p.frame, self.max_len, &hdr, data) {
            Ok(len) => {
                p.len = len;
                Ok((key, Some(p)))
            }
            Err(frame::FrameError::TooLong) => Ok((key, None)),
            Err(_) => Err(self.invalid()),
        }
    }

    /// The synchronous request ioctl: sends `m` and waits for its outcome, written back to
    /// `m`.
    pub(crate) fn request(this: &Arc<Self>, m: &mut Msg, nonblock: bool) -> Result {
        let mut buf = FrameBuf::uninit();
        let (key, p) = this.prepare(m, &mut buf)?;
        let (started, cc) = match p {
            Some(mut p) => (
                Self::start(this, &mut p, Owner::Sync, nonblock)?,
                uapi::CC_TIMEOUT,
            ),
            None => (None, uapi::CC_TOO_LONG),
        };
        let Some((seq, _)) = started else {
            // Too long, or no seq within the timeout: completed before it was sent.
            let mut g = this.rx.lock();
            if g.st.dead {
                return Err(ENODEV);
            }
            if cc == uapi::CC_TIMEOUT {
                g.st.counters.req_sent += 1;
            }
            count_unsent(&mut g.st.counters, cc);
            drop(g);
            set_synthesized(m, &key, 0, cc);
            // Output fields as a sent request's: none is left as the caller gave it.
            m.id = 0;
            m.kind = uapi::KIND_RESPONSE;
            return Ok(());
        };
        let mut g = this.rx.lock();
        let mut interrupted = false;
        loop {
            let now = this.now();
            let st = &mut g.st;
            match st.collect(seq, now, interrupted) {
                Some(Ok(Outcome::Response(_))) => {
                    // The response stays in its slot until the seq is reused, which needs
                    // this lock.
                    m.set_response(st.responses.get(seq));
                    m.flags = 0;
                    break;
                }
                Some(Ok(Outcome::Synthesized(cc))) => {
                    set_synthesized(m, &key, seq, cc);
                    break;
                }
                Some(Err(e)) => {
                    drop(g);
                    this.seq_free.notify_all();
                    return Err(e);
                }
                None => {}
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

    /// The asynchronous request ioctl for client `c`: starts `m` and returns its id and seq in
    /// `m`; the outcome arrives in the client's inbox. With `nonblock` it does not wait for a
    /// seq nor for the transfer.
    pub(crate) fn submit(this: &Arc<Self>, c: usize, m: &mut Msg, nonblock: bool) -> Result {
        let mut buf = FrameBuf::uninit();
        let (key, p) = this.prepare(m, &mut buf)?;
        // At most `MAX_CLIENTS` (64).
        let owner = Owner::Async(c as u8);
        let (started, cc) = match p {
            Some(mut p) => (
                Self::start(this, &mut p, owner, nonblock)?,
                uapi::CC_TIMEOUT,
            ),
            None => (None, uapi::CC_TOO_LONG),
        };
        let (seq, id) = match started {
            Some(started) => started,
            None => {
                // Too long, or no seq within the timeout: completed at once, through the
                // inbox like any other outcome.
                let mut wake = Wake::default();
                let id = this.rx.lock().st.complete_unsent(c, key, cc, &mut wake);
                this.wake(wake);
                (0, id?)
            }
        };
        m.id = id;
        m.seq = seq;
        Ok(())
    }
}

impl WorkItem for Instance {
    type Pointer = Arc<Instance>;

    /// The transmit work: completes overdue requests, resends, and sends queued first tries,
    /// then sets the response timer for the next deadline.
    fn run(this: Arc<Instance>) {
        loop {
            let mut frame = [0u8; MAX_LEN_LIMIT];
            let mut wake = Wake::default();
            let job = {
                let mut g = this.rx.lock();
                let now = this.now();
                if g.st.dead {
                    return;
                }
                g.st.next_job(now, &mut frame, &mut wake)
            };
            this.wake(wake);
            match job {
                Job::Idle => break,
                Job::Completed => {}
                Job::Send {
                    seq,
                    id,
                    len,
                    broadcast,
                } => {
                    if Self::transmit(&this, seq, id, &frame[..len], broadcast).is_err() {
                        return;
                    }
                }
            }
        }
        Self::arm(&this);
    }
}
