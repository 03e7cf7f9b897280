// SPDX-License-Identifier: GPL-2.0

//! The `ipmb-dev` I2C driver: probe, the target backend, the requester and `/dev/ipmb-N`.
//!
//! Execution contexts and locking:
//!
//! - The target callback ([`Shared::rx_event`]) runs in the I2C controller's interrupt
//!   handler. It takes only `Shared::rx`, an IRQ-saving spinlock, never sleeps or allocates,
//!   and wakes waiters after dropping the lock. A checked frame goes to exactly one place: the
//!   request it answers (a synchronous caller's slot or an asynchronous caller's inbox), the
//!   inbox of the file that registered its netFn and cmd, or the `read()` queue.
//! - `read`, `write`, `poll` and the ioctls run in process context. Waiting is always on a
//!   condition variable with `rx` released while asleep. Transmission holds `Shared::tx` (a
//!   mutex) across the I2C transfer and its retries, which serialises transmissions and lets
//!   unbind wait for the one in flight; `rx` is taken only briefly, never across a transfer.
//! - Response timeouts and resends run from a delayed work item (`requester.rs`), armed
//!   under `rx` while requests are in flight.
//! - Unbind marks the state dead, wakes every waiter, waits for a transmission in flight and
//!   for the timeout work, then unregisters the target, the character device and the sysfs
//!   group. Open files keep the shared state (an `Arc`) alive and get `ENODEV` from then on.

use kernel::{
    acpi, bindings,
    device::Core,
    error::to_result,
    ffi::{
        c_int,
        c_void, //
    },
    i2c, impl_has_delayed_work, new_condvar, new_delayed_work, new_mutex, new_poll_condvar, of,
    prelude::*,
    str::CStr,
    sync::{
        poll::PollCondVar,
        Arc,
        CondVar,
        Mutex,
        SetOnce, //
    },
    time::{
        delay::fsleep,
        Delta,
        Instant,
        Monotonic, //
    },
    workqueue::DelayedWork,
};

use crate::{
    assembler::{
        Action,
        Assembler,
        Event,
        READ_FILL, //
    },
    frame::{
        self,
        Header, //
    },
    irq_lock::{
        new_irq_spinlock,
        IrqSpinLock, //
    },
    miscdev,
    ring::FrameRing,
    seqtab::{
        Key,
        Match,
        Outcome,
        Owner,
        SeqTable,
        SEQ_COUNT,
        SEQ_EXPIRY_MS, //
    },
    stats::Counters,
    sysfs, target, uapi,
};

mod requester;

use requester::SeqFrames;

/// The largest frame any instance accepts (the in-tree C driver's limit), address included.
pub(crate) const MAX_LEN_LIMIT: usize = 240;
/// Files per instance that can have an inbox (for asynchronous requests and registrations).
pub(crate) const MAX_CLIENTS: usize = 64;
/// Messages an inbox holds.
pub(crate) const INBOX_LEN: usize = 32;
/// Inbox record header: kind, flags, then the id (8 bytes, little endian).
pub(crate) const REC_HDR: usize = 10;
/// Registrable (netFn, cmd) pairs: 32 request netFns times 256 commands.
const ROUTES: usize = 32 * 256;
/// Longest wait of the timeout work while requests are in flight (its resolution), in ms.
const TICK_MS: u64 = 20;
const NS_PER_MS: u64 = 1_000_000;

/// Preallocated byte storage, allocated once (at probe or open).
pub(crate) struct Storage(KVVec<u8>);

impl Storage {
    fn new(len: usize) -> Result<Self> {
        Ok(Self(KVVec::from_elem(0u8, len, GFP_KERNEL)?))
    }
}

impl AsRef<[u8]> for Storage {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsMut<[u8]> for Storage {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// The messages waiting for `IPMB_IOC_RECEIVE` on one file.
///
/// Records are `[kind, flags, id (8 bytes LE), frame...]`. `outstanding` inbox places are
/// reserved for the file's asynchronous requests in flight, so their completions always fit.
pub(crate) struct Inbox {
    pub(crate) ring: FrameRing<Storage>,
    pub(crate) outstanding: usize,
}

impl Inbox {
    pub(crate) fn new(max_len: usize) -> Result<KBox<Self>> {
        let slot = max_len + REC_HDR;
        let storage = Storage::new(FrameRing::<Storage>::storage_len(INBOX_LEN, slot))?;
        let ring = FrameRing::new(storage, INBOX_LEN, slot).ok_or(EINVAL)?;
        Ok(KBox::new(
            Self {
                ring,
                outstanding: 0,
            },
            GFP_KERNEL,
        )?)
    }

    /// Room for a message that has no reservation.
    pub(crate) fn has_room(&self) -> bool {
        self.ring.len() + self.outstanding < self.ring.capacity()
    }

    fn push(&mut self, kind: u8, flags: u8, id: u64, f: &[u8]) -> bool {
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let Some(dst) = rec.get_mut(REC_HDR..REC_HDR + f.len()) else {
            return false;
        };
        dst.copy_from_slice(f);
        rec[0] = kind;
        rec[1] = flags;
        rec[2..REC_HDR].copy_from_slice(&id.to_le_bytes());
        self.ring.push(&rec[..REC_HDR + f.len()]).is_ok()
    }
}

/// What to wake once `rx` is released.
#[derive(Default)]
pub(crate) struct Wake {
    pub(crate) read: bool,
    pub(crate) seq: Option<u8>,
    pub(crate) client: Option<usize>,
    pub(crate) seq_free: bool,
}

/// Everything the receive path and the requester share, under `Shared::rx`.
pub(crate) struct State {
    pub(crate) ring: FrameRing<Storage>,
    pub(crate) counters: Counters,
    /// The device is unbound: everyone gets `ENODEV`.
    pub(crate) dead: bool,
    pub(crate) own_addr: u8,
    /// Allocated zeroed in place: 20 KiB would not fit a stack (8 KiB on 32-bit ARM).
    pub(crate) seqs: KVBox<SeqTable>,
    /// The frames of the requests in flight, for resending.
    requests: SeqFrames,
    /// The responses of synchronous requests, until their callers collect them.
    responses: SeqFrames,
    /// Per client (file with an inbox): its inbox, or `None` if the place is free.
    pub(crate) clients: KVec<Option<KBox<Inbox>>>,
    /// Per (netFn / 2, cmd): the registered client's index + 1, or 0.
    pub(crate) routes: KVVec<u8>,
    pub(crate) next_id: u64,
}

/// The state under the receive lock: the assembler apart, so a frame it returns can be
/// dispatched into the rest.
pub(crate) struct Locked {
    pub(crate) asm: Assembler<MAX_LEN_LIMIT>,
    pub(crate) st: State,
}

pub(crate) fn route_index(netfn: u8, cmd: u8) -> usize {
    usize::from(netfn >> 1) * 256 + usize::from(cmd)
}

impl State {
    pub(crate) fn inbox(&mut self, client: usize) -> Option<&mut Inbox> {
        self.clients.get_mut(client)?.as_deref_mut()
    }

    pub(crate) fn route(&self, netfn: u8, cmd: u8) -> Option<usize> {
        match self.routes.get(route_index(netfn, cmd)) {
            Some(&c) if c != 0 => Some(usize::from(c) - 1),
            _ => None,
        }
    }

    /// Delivers a checked frame (own address first); `flags` are the message flags a
    /// routed request gets. Interrupt context: bounded work, no allocation.
    fn dispatch(&mut self, f: &[u8], flags: u8, now: u64, wake: &mut Wake) {
        let Some(hdr) = Header::parse(f) else {
            return;
        };
        if frame::is_response(f[frame::NETFN_LUN]) {
            // Frames are at most 240 bytes.
            match self
                .seqs
                .on_response(Key::of_response(&hdr), hdr.seq, f.len() as u8, now)
            {
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
                Match::Unmatched => {}
            }
        } else if let Some(c) = self.route(hdr.netfn, hdr.cmd) {
            let delivered = match self.inbox(c) {
                Some(inbox) if inbox.has_room() => inbox.push(uapi::KIND_REQUEST, flags, 0, f),
                _ => false,
            };
            if delivered {
                self.counters.rx_frames += 1;
                self.counters.rx_routed += 1;
                wake.client = Some(c);
            } else {
                self.counters.rx_route_overflow += 1;
            }
            return;
        }
        match self.ring.push(f) {
            Ok(()) => {
                self.counters.rx_frames += 1;
                wake.read = true;
            }
            Err(_) => self.counters.rx_overflow += 1,
        }
    }

    /// Puts the completion of client `c`'s asynchronous request `id` into its inbox, in the
    /// place reserved for it.
    fn complete_async(&mut self, c: u8, id: u64, flags: u8, f: &[u8], wake: &mut Wake) {
        let c = usize::from(c);
        if let Some(inbox) = self.inbox(c) {
            inbox.outstanding = inbox.outstanding.saturating_sub(1);
            if inbox.push(uapi::KIND_RESPONSE, flags, id, f) {
                wake.client = Some(c);
                return;
            }
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

/// The I2C client used for transmission.
///
/// # Invariants
///
/// Points to a valid, bound `i2c_client` for as long as it is stored in [`TxState`]: unbind
/// removes it (under the `tx` mutex) before the client can go away.
struct Client(*mut bindings::i2c_client);

// SAFETY: The client may be used from any thread; access is serialised by the `tx` mutex.
unsafe impl Send for Client {}

impl Client {
    /// Returns the client's adapter and its PEC flag for transfers.
    fn adapter(&self) -> (*mut bindings::i2c_adapter, u16) {
        // SAFETY: By the type invariants the client is valid.
        let (adapter, flags) = unsafe { ((*self.0).adapter, (*self.0).flags) };
        (adapter, flags & bindings::I2C_CLIENT_PEC as u16)
    }

    /// Sends `bytes` to the 7-bit address `addr` as one plain I2C write.
    fn write(&self, addr: u8, bytes: &[u8]) -> Result {
        let mut buf = [0u8; MAX_LEN_LIMIT];
        let data = buf.get_mut(..bytes.len()).ok_or(EINVAL)?;
        data.copy_from_slice(bytes);
        let (adapter, flags) = self.adapter();
        let mut msg = bindings::i2c_msg {
            addr: u16::from(addr),
            flags,
            len: bytes.len() as u16,
            buf: data.as_mut_ptr(),
        };
        // SAFETY: `adapter` is the valid adapter of a bound client; `msg` points to `len`
        // bytes that live across the call.
        let ret = unsafe { bindings::i2c_transfer(adapter, &mut msg, 1) };
        match ret {
            1 => Ok(()),
            r if r < 0 => Err(Error::from_errno(r)),
            _ => Err(EIO),
        }
    }

    /// Sends a frame (destination address first) as an SMBus block write: the netFn/LUN byte
    /// is the command, then a count byte, then the rest of the frame. This is the in-tree C
    /// driver's default, and not IPMB on the wire (the count byte is extra); only for peers
    /// that expect it. Frames whose block would exceed 32 bytes are refused, not truncated.
    fn smbus_block_write(&self, frame: &[u8]) -> Result {
        let block = frame.get(frame::CS1..).ok_or(EINVAL)?;
        if block.len() > bindings::I2C_SMBUS_BLOCK_MAX as usize {
            return Err(EINVAL);
        }
        let mut data = bindings::i2c_smbus_data { block: [0; 34] };
        // SAFETY: `block` is the active field, just initialised.
        let buf = unsafe { &mut data.block };
        buf[0] = block.len() as u8;
        buf[1..=block.len()].copy_from_slice(block);
        let (adapter, flags) = self.adapter();
        // SAFETY: `adapter` is the valid adapter of a bound client; `data` lives across the call.
        let ret = unsafe {
            bindings::i2c_smbus_xfer(
                adapter,
                u16::from(frame[frame::DEST_SA] >> 1),
                flags,
                bindings::I2C_SMBUS_WRITE as u8,
                frame[frame::NETFN_LUN],
                bindings::I2C_SMBUS_BLOCK_DATA as c_int,
                &mut data,
            )
        };
        to_result(ret)
    }
}

struct TxState {
    client: Option<Client>,
}

/// Per-instance state shared by the driver, the target callback and every open file.
#[pin_data]
pub(crate) struct Shared {
    #[pin]
    pub(crate) rx: IrqSpinLock<Locked>,
    /// `read()` and `poll()` for the read queue.
    #[pin]
    pub(crate) wait: PollCondVar,
    /// Per seq: the synchronous caller waiting for its request's outcome.
    #[pin]
    seq_wait: [CondVar; SEQ_COUNT],
    /// Callers waiting for a seq to become free.
    #[pin]
    pub(crate) seq_free: CondVar,
    /// Per client place: `IPMB_IOC_RECEIVE` and `poll()` for its inbox, allocated when a file
    /// first takes the place and kept until the instance is freed, so the interrupt path can
    /// wake it without a lock. Only places ever used have one: a [`PollCondVar`] waits for
    /// an RCU grace period when dropped, and 64 of them made every teardown take 64.
    client_wait: [SetOnce<Pin<KBox<PollCondVar>>>; MAX_CLIENTS],
    #[pin]
    tx: Mutex<TxState>,
    /// Response timeouts and resends.
    #[pin]
    timer: DelayedWork<Shared>,
    epoch: Instant<Monotonic>,
    pub(crate) max_len: usize,
    retries: u32,
    smbus: bool,
    pub(crate) info: uapi::Info,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Shared { self.timer }
}

// SAFETY: All-zero bytes are a valid, empty `SeqTable` (see `rust/seqtab.rs`): its fields are
// integers, arrays of them, and `#[repr(u8)]` enums whose variant 0 (`State::Free`,
// `Finish::Answered`) carries no data; the data of other variants is not read in that state.
unsafe impl pin_init::Zeroable for SeqTable {}

/// Probe-time configuration of an instance.
struct Config {
    adapter: u32,
    addr: u8,
    max_len: usize,
    queue_len: usize,
    retries: u32,
    smbus: bool,
    req_timeout_ms: u32,
    req_retries: u8,
}

impl Shared {
    /// Creates the state of an instance; `client` is `None` only in tests (nothing is sent).
    fn new(cfg: &Config, client: Option<Client>) -> Result<Arc<Self>> {
        let storage = Storage::new(FrameRing::<Storage>::storage_len(
            cfg.queue_len,
            cfg.max_len,
        ))?;
        let ring = FrameRing::new(storage, cfg.queue_len, cfg.max_len).ok_or(EINVAL)?;
        let mut clients = KVec::with_capacity(MAX_CLIENTS, GFP_KERNEL)?;
        for _ in 0..MAX_CLIENTS {
            clients.push(None, GFP_KERNEL)?;
        }
        let locked = Locked {
            asm: Assembler::new(cfg.addr, cfg.max_len),
            st: State {
                ring,
                counters: Counters::default(),
                dead: false,
                own_addr: cfg.addr,
                seqs: KVBox::init(pin_init::zeroed::<SeqTable>(), GFP_KERNEL)?,
                requests: SeqFrames::new(cfg.max_len)?,
                responses: SeqFrames::new(cfg.max_len)?,
                clients,
                routes: KVVec::from_elem(0u8, ROUTES, GFP_KERNEL)?,
                next_id: 1,
            },
        };
        Arc::pin_init(
            try_pin_init!(Self {
                rx <- new_irq_spinlock!(locked, c"Shared::rx"),
                wait <- new_poll_condvar!("Shared::wait"),
                seq_wait <- pin_init::pin_init_array_from_fn(|_| new_condvar!("Shared::seq_wait")),
                seq_free <- new_condvar!("Shared::seq_free"),
                client_wait: [const { SetOnce::new() }; MAX_CLIENTS],
                tx <- new_mutex!(TxState { client }, "Shared::tx"),
                timer <- new_delayed_work!("Shared::timer"),
                epoch: Instant::now(),
                max_len: cfg.max_len,
                retries: cfg.retries,
                smbus: cfg.smbus,
                info: uapi::Info {
                    abi_version: uapi::ABI_VERSION,
                    adapter: cfg.adapter,
                    own_addr: cfg.addr,
                    smbus_block_write: u8::from(cfg.smbus),
                    // At most `MAX_LEN_LIMIT` (240), checked in `config`.
                    max_frame_len: cfg.max_len as u16,
                    queue_len: cfg.queue_len as u32,
                    tx_retries: cfg.retries,
                    req_timeout_ms: cfg.req_timeout_ms,
                    req_retries: u32::from(cfg.req_retries),
                    seq_count: SEQ_COUNT as u32,
                    seq_expiry_ms: SEQ_EXPIRY_MS as u32,
                    max_clients: MAX_CLIENTS as u32,
                    inbox_len: INBOX_LEN as u32,
                    reserved: [0; 5],
                },
            }),
            GFP_KERNEL,
        )
    }

    /// Nanoseconds since the instance was created (monotonic; callable in any context).
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(0)
    }

    /// The wait queue of client place `c`, if a file ever took that place.
    pub(crate) fn client_wait(&self, c: usize) -> Option<&PollCondVar> {
        self.client_wait.get(c)?.as_ref().map(|cv| &**cv)
    }

    /// Gives client place `c` its wait queue, unless it has one (process context).
    pub(crate) fn add_client_wait(&self, c: usize) -> Result {
        let place = self.client_wait.get(c).ok_or(EINVAL)?;
        if place.as_ref().is_none() {
            // A place has one owner at a time, so nobody populates it concurrently.
            place.populate(KBox::pin_init(
                new_poll_condvar!("Shared::client_wait"),
                GFP_KERNEL,
            )?);
        }
        Ok(())
    }

    pub(crate) fn wake(&self, w: Wake) {
        if w.read {
            self.wait.notify_all();
        }
        if let Some(cv) = w.seq.and_then(|s| self.seq_wait.get(usize::from(s))) {
            cv.notify_all();
        }
        if let Some(cv) = w.client.and_then(|c| self.client_wait(c)) {
            cv.notify_all();
        }
        if w.seq_free {
            self.seq_free.notify_all();
        }
    }

    /// Handles one target event (interrupt context); see [`target::Target::event`].
    fn rx_event(&self, ev: Event) -> Result<u8> {
        let mut wake = Wake::default();
        let ret = {
            let mut guard = self.rx.lock();
            let Locked { asm, st } = &mut *guard;
            match asm.event(ev) {
                Action::None => Ok(READ_FILL),
                // Any error NAKs the byte; the frame is counted as too long at its end.
                Action::Nak => Err(EINVAL),
                Action::ReadByte(b) => Ok(b),
                Action::Frame(f) => {
                    // The clock is read once per frame, not per byte.
                    st.dispatch(f, 0, self.now(), &mut wake);
                    Ok(READ_FILL)
                }
                Action::Broadcast(f) => {
                    // Broadcasts name the responder they are for; those for other addresses
                    // are not ours to take or count.
                    if f[frame::DEST_SA] == st.own_addr {
                        st.counters.rx_broadcast += 1;
                        st.dispatch(f, uapi::MSG_BROADCAST, self.now(), &mut wake);
                    }
                    Ok(READ_FILL)
                }
                Action::Dropped(e) => {
                    st.counters.count_rx_drop(e);
                    Ok(READ_FILL)
                }
            }
        };
        // Wake waiters only once the lock is released.
        self.wake(wake);
        ret
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.rx.lock().st.counters);
    }

    /// Sends one frame (destination address first), retrying NAKs and arbitration losses; a
    /// broadcast goes once, whole, to the general-call address.
    pub(crate) fn send(&self, frame: &[u8], broadcast: bool) -> Result {
        let tx = self.tx.lock();
        let client = tx.client.as_ref().ok_or(ENODEV)?;
        let mut attempt = 0;
        loop {
            let sent = if broadcast {
                client.write(0, frame)
            } else if self.smbus {
                client.smbus_block_write(frame)
            } else {
                client.write(frame[frame::DEST_SA] >> 1, &frame[1..])
            };
            match sent {
                Ok(()) => {
                    self.count(|c| {
                        c.tx_frames += 1;
                        if broadcast {
                            c.tx_broadcast += 1;
                        }
                    });
                    return Ok(());
                }
                Err(e) if !broadcast && is_retryable(e) && attempt < self.retries => {
                    attempt += 1;
                    self.count(|c| c.tx_retries += 1);
                    // Back off 0.5, 1, 2, ... ms: a busy bus or a responder that is not ready.
                    fsleep(Delta::from_micros(250 << attempt.min(6)));
                }
                Err(e) => {
                    self.count(|c| c.tx_errors += 1);
                    return Err(e);
                }
            }
        }
    }

    pub(crate) fn invalid(&self) -> Error {
        self.count(|c| c.tx_invalid += 1);
        EINVAL
    }

    fn kill(&self) {
        self.rx.lock().st.dead = true;
        self.wait.notify_all();
        self.seq_wait.iter().for_each(CondVar::notify_all);
        (0..MAX_CLIENTS)
            .filter_map(|c| self.client_wait(c))
            .for_each(|cv| cv.notify_all());
        self.seq_free.notify_all();
        // Waits for a transmission in flight; none can start afterwards.
        self.tx.lock().client = None;
        self.flush_timer();
    }

    /// Waits until the timeout work is neither pending nor running. Once `dead` is set it
    /// does not re-arm itself, and nothing else arms it.
    fn flush_timer(&self) {
        // SAFETY: `self.timer` is an initialised delayed work item, pinned in `Shared`.
        // `raw_as_work` returns the address of its `work`, the first member of `struct
        // delayed_work`, so the cast gives the `delayed_work` itself.
        unsafe {
            let work = DelayedWork::raw_as_work(&raw const self.timer);
            bindings::flush_delayed_work(work.cast::<bindings::delayed_work>());
        }
    }
}

/// NAK (address or data) and arbitration loss: the conditions worth another try.
fn is_retryable(e: Error) -> bool {
    e == ENXIO || e == EIO || e == EAGAIN
}

/// One bound instance: the driver data of its I2C client.
///
/// Fields drop in order: the target backend first (no more interrupts), then the character
/// device and the sysfs group, then the shared state (freed when the last file closes).
#[pin_data(PinnedDrop)]
pub(crate) struct Ipmb {
    target: target::Registration<Ipmb>,
    #[pin]
    misc: miscdev::Registration<crate::file::OpenFile>,
    stats: sysfs::Registration,
    shared: Arc<Shared>,
}

impl target::Target for Ipmb {
    fn event(&self, ev: Event) -> Result<u8> {
        self.shared.rx_event(ev)
    }
}

#[pinned_drop]
impl PinnedDrop for Ipmb {
    fn drop(self: Pin<&mut Self>) {
        self.shared.kill();
    }
}

/// Returns a snapshot of the counters of the instance bound to `dev`, if any.
///
/// # Safety
///
/// `dev` must be a valid device whose driver data is null or an [`Ipmb`] that stays valid
/// for the call (true for the client devices the sysfs group is added to: the group is
/// removed before the `Ipmb` goes away, and removal waits for readers).
pub(crate) unsafe fn counters_of(dev: *mut bindings::device) -> Option<Counters> {
    // SAFETY: `dev` is valid.
    let data = unsafe { bindings::dev_get_drvdata(dev) };
    if data.is_null() {
        return None;
    }
    // SAFETY: Non-null driver data of our clients is a valid `Ipmb` (see above).
    let ipmb = unsafe { &*data.cast::<Ipmb>() };
    let counters = ipmb.shared.rx.lock().st.counters;
    Some(counters)
}

/// Driver names whose instances own `/dev/ipmb-<adapter nr>`: ours and the in-tree C driver.
const IPMB_DRIVERS: [&CStr; 2] = [c"ipmb", c"ipmb-dev"];

/// `device_iter_t` callback: non-zero if `dev` is an I2C client, other than the one in
/// `data`, bound to a driver that owns the adapter's `/dev/ipmb-N`.
///
/// # Safety
///
/// Called by `device_for_each_child` with a valid child device, under the parent's
/// `klist` reference; `data` is the probing `i2c_client`.
unsafe extern "C" fn other_instance(dev: *mut bindings::device, data: *mut c_void) -> c_int {
    // SAFETY: `dev` is a valid device for the duration of the callback.
    let client = unsafe { bindings::i2c_verify_client(dev) };
    if client.is_null() || client == data.cast() {
        return 0;
    }
    // SAFETY: `dev` is valid. A non-null `driver` is a registered driver: a driver is
    // unregistered only after every device is unbound from it, and a device being unbound
    // clears the pointer first. This is the same read `driver_match_device` users make.
    let drv = unsafe { (*dev).driver };
    if drv.is_null() {
        return 0;
    }
    // SAFETY: A registered driver has a valid, NUL-terminated name.
    let name = unsafe { CStr::from_char_ptr((*drv).name) };
    c_int::from(IPMB_DRIVERS.iter().any(|n| n.to_bytes() == name.to_bytes()))
}

/// Returns true if another client on `client`'s adapter is bound to an IPMB driver.
fn adapter_taken(client: *mut bindings::i2c_client) -> bool {
    // SAFETY: `client` and its adapter are valid during probe; `other_instance` has the
    // `device_iter_t` signature and only reads `data` as a pointer value.
    unsafe {
        bindings::device_for_each_child(
            &raw mut (*(*client).adapter).dev,
            client.cast(),
            Some(other_instance),
        ) != 0
    }
}

/// Reads the `u32` firmware property `name` of `client`, if it has one.
fn u32_property(client: *mut bindings::i2c_client, name: &CStr) -> Option<u32> {
    let mut prop: u32 = 0;
    // SAFETY: `client` is valid during probe; `name` is a NUL-terminated string and `prop`
    // is valid for one `u32`.
    let ret = unsafe {
        bindings::device_property_read_u32_array(
            &raw mut (*client).dev,
            name.as_char_ptr(),
            &mut prop,
            1,
        )
    };
    (ret == 0).then_some(prop)
}

/// Reads the instance configuration from the module parameters and firmware properties.
fn config(client: *mut bindings::i2c_client) -> Result<Config> {
    let max_len = u32_property(client, c"max-frame-length")
        .unwrap_or(*crate::module_parameters::max_frame_len.value()) as usize;
    if !(frame::MIN_RESPONSE_LEN..=MAX_LEN_LIMIT).contains(&max_len) {
        return Err(EINVAL);
    }
    let req_timeout_ms = u32_property(client, c"retry-time")
        .unwrap_or(*crate::module_parameters::req_timeout_ms.value());
    if !(1..=uapi::MAX_TIMEOUT_MS).contains(&req_timeout_ms) {
        return Err(EINVAL);
    }
    let req_retries = u32_property(client, c"max-retries")
        .unwrap_or(*crate::module_parameters::req_retries.value());
    let req_retries = u8::try_from(req_retries)
        .ok()
        .filter(|r| *r <= uapi::MAX_RETRIES)
        .ok_or(EINVAL)?;
    let queue_len = *crate::module_parameters::queue_len.value() as usize;
    if !(1..=4096).contains(&queue_len) {
        return Err(EINVAL);
    }
    // SAFETY: `client` is valid during probe; the property name is a static C string.
    let smbus_prop = unsafe {
        bindings::device_property_read_bool(
            &raw mut (*client).dev,
            c"smbus-block-write".as_char_ptr(),
        )
    };
    // SAFETY: `client` is valid during probe.
    let addr7 = unsafe { (*client).addr };
    // SAFETY: `client` and its adapter are valid during probe.
    let adapter = unsafe { (*(*client).adapter).nr };
    Ok(Config {
        adapter: u32::try_from(adapter).map_err(|_| EINVAL)?,
        // The 8-bit IPMB address; I2C 7-bit addresses fit after the shift.
        addr: ((addr7 & 0x7f) << 1) as u8,
        max_len,
        queue_len,
        retries: *crate::module_parameters::tx_retries.value(),
        smbus: smbus_prop || *crate::module_parameters::smbus_block_write.value() != 0,
        req_timeout_ms,
        req_retries,
    })
}

kernel::i2c_device_table!(
    I2C_TABLE,
    MODULE_I2C_TABLE,
    <IpmbDriver as i2c::Driver>::IdInfo,
    [(i2c::DeviceId::new(c"ipmb-dev"), ())]
);

kernel::of_device_table!(
    OF_TABLE,
    MODULE_OF_TABLE,
    <IpmbDriver as i2c::Driver>::IdInfo,
    [(of::DeviceId::new(c"ipmb-dev"), ())]
);

kernel::acpi_device_table!(
    ACPI_TABLE,
    MODULE_ACPI_TABLE,
    <IpmbDriver as i2c::Driver>::IdInfo,
    [(acpi::DeviceId::new(c"IPMB0001"), ())]
);

/// The I2C driver.
pub(crate) struct IpmbDriver;

impl i2c::Driver for IpmbDriver {
    type IdInfo = ();
    type Data<'bound> = Ipmb;

    const I2C_ID_TABLE: Option<i2c::IdTable<Self::IdInfo>> = Some(&I2C_TABLE);
    const OF_ID_TABLE: Option<of::IdTable<Self::IdInfo>> = Some(&OF_TABLE);
    const ACPI_ID_TABLE: Option<acpi::IdTable<Self::IdInfo>> = Some(&ACPI_TABLE);

    fn probe<'bound>(
        idev: &'bound i2c::I2cClient<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Ipmb, Error> + 'bound {
        let client = target::raw_client(idev);
        let dev = idev.as_ref();
        // SAFETY: The client and its adapter are valid during probe.
        let nr = unsafe { (*(*client).adapter).nr };
        let state = if adapter_taken(client) {
            dev_err!(
                dev,
                "/dev/ipmb-{nr} already exists: one instance per adapter\n"
            );
            Err(EBUSY)
        } else {
            // INVARIANT: the client is bound while probe runs, and until unbind removes it.
            config(client).and_then(|cfg| Shared::new(&cfg, Some(Client(client))))
        };
        let name = miscdev::name(format_args!("ipmb-{nr}"));
        try_pin_init!(&this in Ipmb {
            shared: state?,
            // SAFETY: The client device outlives its driver data, which owns the group.
            stats: unsafe { sysfs::Registration::add(&raw mut (*client).dev) }?,
            misc <- miscdev::Registration::register(name?, 0o600, dev, shared.clone()),
            // Last: the target goes live only once everything it touches is ready.
            // SAFETY: The client outlives its driver data; the driver core stores `this`
            // (the address of the `Ipmb` being built) as driver data after probe.
            target: unsafe { target::Registration::register(client, this.as_ptr()) }
                .inspect_err(|e| {
                    if *e == EBUSY {
                        dev_err!(dev, "adapter {nr}: target address in use\n");
                    }
                })?,
        })
        .pin_chain(move |_| {
            dev_info!(dev, "/dev/ipmb-{nr} ready\n");
            Ok(())
        })
    }
}

#[cfg(CONFIG_KUNIT)]
#[cfg(CONFIG_KUNIT)]
#[kunit_tests(ipmb_rx)]
mod tests {
    use super::*;
    use crate::frame::{
        build,
        Header, //
    };

    const OWN: u8 = 0x20;

    fn shared(queue_len: usize) -> Result<Arc<Shared>> {
        let cfg = Config {
            adapter: 0,
            addr: OWN,
            max_len: frame::SPEC_MAX_LEN,
            queue_len,
            retries: 0,
            smbus: false,
            req_timeout_ms: 250,
            req_retries: 1,
        };
        Shared::new(&cfg, None)
    }

    /// Feeds a whole write transaction for `f` (address byte first) to the callback path.
    fn deliver(s: &Shared, f: &[u8]) -> Result {
        s.rx_event(Event::WriteRequested)?;
        for b in &f[1..] {
            s.rx_event(Event::WriteReceived(*b))?;
        }
        s.rx_event(Event::Stop)?;
        Ok(())
    }

    fn response(seq: u8) -> Result<([u8; 8], usize)> {
        let hdr = Header {
            dest: OWN,
            netfn: 0x07,
            dest_lun: 0,
            src: 0x72,
            seq,
            src_lun: 0,
            cmd: 1,
        };
        let mut f = [0u8; 8];
        let n = build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[0]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    fn pop(s: &Shared) -> Option<([u8; MAX_LEN_LIMIT], usize)> {
        let mut out = [0u8; MAX_LEN_LIMIT];
        let n = s.rx.lock().st.ring.pop_into(&mut out)?;
        Some((out, n))
    }

    #[test]
    fn frames_queued_in_order() -> Result {
        let s = shared(8)?;
        for seq in 0..5 {
            deliver(&s, &response(seq)?.0)?;
        }
        assert_eq!(s.rx.lock().st.counters.rx_frames, 5);
        for seq in 0..5 {
            let (expected, n) = response(seq)?;
            let got = pop(&s);
            assert!(got.is_some());
            if let Some((out, len)) = got {
                assert_eq!(len, n);
                assert_eq!(out[..len], expected[..n]);
            }
        }
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn overflow_keeps_oldest_and_counts() -> Result {
        let s = shared(2)?;
        for seq in 0..4 {
            deliver(&s, &response(seq)?.0)?;
        }
        let c = s.rx.lock().st.counters;
        assert_eq!((c.rx_frames, c.rx_overflow), (2, 2));
        let (first, n) = response(0)?;
        assert_eq!(pop(&s).map(|(o, l)| o[..l] == first[..n]), Some(true));
        Ok(())
    }

    #[test]
    fn bad_frame_counted_not_queued() -> Result {
        let s = shared(4)?;
        let (mut f, _) = response(1)?;
        f[7] ^= 1;
        deliver(&s, &f)?;
        let c = s.rx.lock().st.counters;
        assert_eq!((c.rx_frames, c.rx_bad_cs2), (0, 1));
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn overlong_byte_is_refused() -> Result {
        let s = shared(4)?;
        s.rx_event(Event::WriteRequested)?;
        for _ in 1..frame::SPEC_MAX_LEN {
            s.rx_event(Event::WriteReceived(0))?;
        }
        assert!(s.rx_event(Event::WriteReceived(0)).is_err());
        s.rx_event(Event::Stop)?;
        assert_eq!(s.rx.lock().st.counters.rx_too_long, 1);
        Ok(())
    }

    #[test]
    fn read_events_return_fill() -> Result {
        let s = shared(4)?;
        assert_eq!(s.rx_event(Event::ReadRequested)?, READ_FILL);
        assert_eq!(s.rx_event(Event::ReadProcessed)?, READ_FILL);
        s.rx_event(Event::Stop)?;
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn send_without_client_is_enodev() -> Result {
        let s = shared(4)?;
        let (f, n) = response(1)?;
        assert!(s.send(&f[..n], false) == Err(ENODEV));
        assert_eq!(s.rx.lock().st.counters.tx_frames, 0);
        Ok(())
    }

    const APP_GET_DEVICE_ID: Key = Key {
        rs_sa: 0x72,
        netfn: 0x06,
        rs_lun: 0,
        rq_lun: 0,
        cmd: 1,
    };

    /// A request from 0x72 to us for NetFn App, `cmd`.
    fn request_to_us(cmd: u8) -> Result<([u8; 7], usize)> {
        let hdr = Header {
            dest: OWN,
            netfn: 0x06,
            dest_lun: 0,
            src: 0x72,
            seq: 5,
            src_lun: 0,
            cmd,
        };
        let mut f = [0u8; 7];
        let n = build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    #[test]
    fn response_goes_to_its_request_not_read() -> Result {
        let s = shared(4)?;
        let seq = {
            let mut g = s.rx.lock();
            let now = s.now();
            g.st.seqs
                .alloc(APP_GET_DEVICE_ID, Owner::Sync, 1, now, 1_000_000_000, 0)
        };
        assert_eq!(seq, Some(0));
        let (f, n) = response(0)?;
        deliver(&s, &f[..n])?;
        // A second copy is a duplicate, and a response for another seq nobody's.
        deliver(&s, &f[..n])?;
        deliver(&s, &response(9)?.0)?;
        let mut g = s.rx.lock();
        let c = g.st.counters;
        assert_eq!((c.rsp_matched, c.rsp_duplicate, c.rx_frames), (1, 1, 2));
        assert_eq!(g.st.responses.get(0), &f[..n]);
        let now = s.now();
        assert_eq!(g.st.seqs.take(0, now), Some(Outcome::Response(n as u8)));
        assert_eq!(g.st.ring.len(), 1);
        Ok(())
    }

    #[test]
    fn registered_request_goes_to_its_inbox() -> Result {
        let s = shared(4)?;
        let inbox = Inbox::new(frame::SPEC_MAX_LEN)?;
        {
            let mut g = s.rx.lock();
            if let Some(place) = g.st.clients.get_mut(3) {
                *place = Some(inbox);
            }
            if let Some(r) = g.st.routes.get_mut(route_index(0x06, 0x01)) {
                *r = 4;
            }
        }
        deliver(&s, &request_to_us(0x01)?.0)?;
        deliver(&s, &request_to_us(0x02)?.0)?;
        let mut g = s.rx.lock();
        let c = g.st.counters;
        assert_eq!((c.rx_routed, c.rx_frames), (1, 2));
        assert_eq!(g.st.ring.len(), 1);
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let n = g.st.inbox(3).and_then(|i| i.ring.pop_into(&mut rec));
        assert_eq!(n, Some(REC_HDR + 7));
        assert_eq!(rec[0], uapi::KIND_REQUEST);
        assert_eq!(rec[REC_HDR + frame::CMD], 0x01);
        // Freed outside the lock, as a closing file does.
        let inbox = g.st.clients.get_mut(3).and_then(Option::take);
        drop(g);
        drop(inbox);
        Ok(())
    }
}
