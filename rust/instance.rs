// SPDX-License-Identifier: GPL-2.0

//! One IPMB endpoint instance (one per bound I2C client): the state the target callback, the
//! requester and every open file share, and its teardown.
//!
//! Where each part lives:
//!
//! - `instance/irq.rs`: everything that runs in the I2C controller's interrupt handler (the
//!   target callback and the delivery of a checked frame);
//! - `instance/tx.rs`: transmission (the I2C client, retries and back-off);
//! - `instance/clients.rs`: the client places, their inboxes, the registered routes and the
//!   inbox reservations of asynchronous requests;
//! - `instance/requester.rs`: requests, seq allocation, the synchronous wait, the response
//!   timer and the transmit work;
//! - `instance/writers.rs`: responses to the requests files send with `write()`, and the two
//!   queues `read()` takes from.
//!
//! Execution contexts and locking:
//!
//! - The target callback ([`Instance::rx_event`]) runs in the I2C controller's interrupt
//!   handler. It takes only `Instance::rx`, an IRQ-saving spinlock, never sleeps or allocates,
//!   and wakes waiters after dropping the lock. A checked frame goes to exactly one place: the
//!   request it answers (a synchronous caller's slot or an asynchronous caller's inbox), the
//!   reply box of the file that wrote the request with `write()`, the inbox of the file that
//!   registered its netFn and cmd (or holds the default route), or the shared `read()` queue.
//! - `read`, `write`, `poll` and the ioctls run in process context. Waiting is always on a
//!   condition variable with `rx` released while asleep. Transmission holds `Instance::tx` (a
//!   mutex) across the I2C transfer and its retries, which serialises transmissions and lets
//!   unbind wait for the one in flight; `rx` is taken only briefly, never across a transfer.
//! - Response timeouts fire from a high-resolution timer set for the earliest deadline; its
//!   callback (hard IRQ, `instance/irq.rs`) only queues the transmit work on the instance's own
//!   workqueue. That work (`instance/requester.rs`) completes overdue requests, resends, and
//!   sends the first try of asynchronous requests submitted with `O_NONBLOCK`. The work is only
//!   ever queued under `rx` while the instance is alive.
//! - Unbind marks the state dead, wakes every waiter, cancels the timer, waits for a
//!   transmission in flight (which stops retrying once it sees `dead`) and for the transmit
//!   work, then unregisters the target, the character device and the sysfs group. Open files
//!   keep the instance (an `Arc`) alive and get `ENODEV` from then on.

use kernel::{
    impl_has_hr_timer, impl_has_work, new_condvar, new_mutex, new_work,
    prelude::*,
    static_lock_class,
    str::CString,
    sync::{
        Arc,
        CondVar,
        Mutex, //
    },
    time::{
        hrtimer::{
            AbsoluteMode,
            ArcHrTimerHandle,
            HrTimer, //
        },
        Instant,
        Monotonic, //
    },
    workqueue::Work,
};

use crate::{
    abstractions::{
        i2c,
        irq_lock::{
            new_irq_spinlock,
            IrqSpinLock, //
        },
        poll_queue::{
            PollQueue,
            PollQueues, //
        },
        workqueue::{
            flush_work,
            OwnedQueue, //
        },
    },
    proto::{
        assembler::Assembler,
        ring::FrameRing,
        seqtab::{
            SeqTable,
            SEQ_COUNT,
            SEQ_EXPIRY_MS, //
        },
        stats::Counters,
        writers::WriteNotes,
    },
    uapi,
};

mod account;
mod clients;
mod irq;
mod requester;
mod tx;
mod writers;

pub(crate) use clients::{
    Clients,
    Inbox,
    Queue,
    Reopen,
    MAX_CLIENTS,
    REC_HDR,
    REPLY_HDR, //
};
use clients::{
    INBOX_LEN,
    MAX_REGISTRATIONS, //
};
use requester::SeqFrames;
use tx::TxState;
use writers::Pending;
pub(crate) use writers::{
    ReadBuf,
    Source, //
};

/// The largest frame an instance can be configured to accept (`max_frame_len`,
/// `max-frame-length`), address included.
pub(crate) const MAX_LEN_LIMIT: usize = 240;
const NS_PER_MS: u64 = 1_000_000;
/// The read queue's poll queue in [`Instance::polls`]; client place `c` has `READ_POLL + 1 + c`.
const READ_POLL: usize = 0;
/// Poll queues per instance: the read queue's and one per client place.
const POLL_QUEUES: usize = MAX_CLIENTS + 1;

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

/// What to wake once `rx` is released.
#[derive(Default)]
pub(crate) struct Wake {
    /// A frame for `read()`: wake its pollers, and its blocked callers if `read_blocked`.
    pub(crate) read: bool,
    /// Some `read()` was blocked on `Instance::wait` when `read` was set (under `rx`).
    pub(crate) read_blocked: bool,
    pub(crate) seq: Option<u8>,
    pub(crate) client: Option<usize>,
    pub(crate) seq_free: bool,
}

/// Everything the receive path and the requester share, under `Instance::rx`.
pub(crate) struct State {
    pub(crate) ring: FrameRing<Storage>,
    pub(crate) counters: Counters,
    /// The device is unbound: everyone gets `ENODEV`.
    pub(crate) dead: bool,
    pub(crate) own_addr: u8,
    /// Allocated zeroed in place: 20 KiB would not fit a stack (8 KiB on 32-bit ARM). With
    /// vmalloc, in 5 pages: kmalloc would round its 19 KiB up to 32 KiB.
    pub(crate) seqs: VBox<SeqTable>,
    /// The frames of the requests in flight, for resending.
    requests: SeqFrames,
    /// The responses of synchronous requests, until their callers collect them.
    responses: SeqFrames,
    /// The client places with their mailboxes, and the registered routes.
    pub(crate) clients: Clients,
    /// The writers of the requests sent with `write()` (allocated zeroed in place). With
    /// vmalloc, in 5 pages: kmalloc would round its 16 KiB and 8 bytes up to 32 KiB.
    pub(crate) notes: VBox<WriteNotes>,
    /// Frames the shared `read()` queue took in, and gave out (less those put back): the
    /// stamps that order it with the reply boxes (`instance/writers.rs`).
    shared_in: u64,
    shared_out: u64,
    /// Frames `read()` took from the shared queue and is still copying out: their slots stay
    /// reserved, so that a frame whose copy faults always goes back (`instance/writers.rs`).
    shared_taken: usize,
    /// Callers blocked in `read()` on `Instance::wait`: each counts itself under `rx` before it
    /// waits (the condition variable queues it before `rx` is released) and uncounts itself
    /// once it has `rx` again. A frame queued while it is zero has nobody to wake there: the
    /// wake-up skips the condition variable's lock (only `poll()` may be waiting).
    pub(crate) blocked_readers: usize,
    /// What `read()` can take, for a look without the lock (`instance/writers.rs`).
    pending: Pending,
    pub(crate) next_id: u64,
    /// The deadline the response timer is set for, until it fires.
    timer_at: Option<u64>,
}

/// The state under the receive lock: the assembler apart, so a frame it returns can be
/// dispatched into the rest.
pub(crate) struct Locked {
    pub(crate) asm: Assembler<MAX_LEN_LIMIT>,
    pub(crate) st: State,
}

/// Per-instance state shared by the driver, the target callback and every open file.
#[pin_data]
pub(crate) struct Instance {
    #[pin]
    pub(crate) rx: IrqSpinLock<Locked>,
    /// `read()` waiting for the read queue.
    #[pin]
    pub(crate) wait: CondVar,
    /// Per seq: the synchronous caller waiting for its request's outcome.
    #[pin]
    seq_wait: [CondVar; SEQ_COUNT],
    /// Callers waiting for a seq to become free.
    #[pin]
    pub(crate) seq_free: CondVar,
    /// Per client place: `IPMB_IOC_RECEIVE` waiting for its inbox.
    #[pin]
    client_wait: [CondVar; MAX_CLIENTS],
    /// `poll()`: the read queue's at [`READ_POLL`], then one per client place. They are freed
    /// an RCU grace period after the instance without waiting for it (the kernel crate's
    /// `PollCondVar` waits for one per queue when dropped: a teardown took one per place used).
    polls: PollQueues<POLL_QUEUES>,
    #[pin]
    tx: Mutex<TxState>,
    /// Fires at the earliest response deadline and queues `work`.
    #[pin]
    timer: HrTimer<Instance>,
    /// The handle of the started timer (it holds a reference to the instance until the timer
    /// is cancelled, at the latest by [`Instance::kill`]); setting the timer takes this lock.
    #[pin]
    armed: Mutex<Option<ArcHrTimerHandle<Instance>>>,
    /// The transmit work: timeouts, resends and queued first sends (it may sleep).
    #[pin]
    work: Work<Instance>,
    /// Where `work` runs: this instance's own workqueue.
    queue: OwnedQueue,
    epoch: Instant<Monotonic>,
    /// What `read()` can take (the count `State` keeps), read without `rx`.
    pub(crate) pending: Pending,
    pub(crate) max_len: usize,
    retries: u32,
    smbus: bool,
    pub(crate) info: uapi::Info,
}

impl_has_work! {
    impl HasWork<Self> for Instance { self.work }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Instance {
        mode: AbsoluteMode<Monotonic>,
        field: self.timer,
    }
}

// SAFETY: All-zero bytes are a valid, empty `SeqTable` (see `rust/proto/seqtab.rs`): its fields
// are integers, arrays of them, and `#[repr(u8)]` enums whose variant 0 (`State::Free`,
// `Finish::Answered`) carries no data; the data of other variants is not read in that state.
unsafe impl pin_init::Zeroable for SeqTable {}

// SAFETY: All-zero bytes are a valid, empty `WriteNotes` (see `rust/proto/writers.rs`): its
// fields are integers and arrays of structures of integers; a note with `until` 0 is free.
unsafe impl pin_init::Zeroable for WriteNotes {}

/// Probe-time configuration of an instance.
pub(crate) struct Config {
    pub(crate) adapter: u32,
    pub(crate) addr: u8,
    pub(crate) max_len: usize,
    pub(crate) queue_len: usize,
    pub(crate) retries: u32,
    pub(crate) smbus: bool,
    pub(crate) req_timeout_ms: u32,
    pub(crate) req_retries: u8,
}

impl Instance {
    /// Creates the state of an instance; `client` is `None` only in tests (nothing is sent).
    pub(crate) fn new(cfg: &Config, client: Option<i2c::Client>) -> Result<Arc<Self>> {
        let storage = Storage::new(FrameRing::<Storage>::storage_len(
            cfg.queue_len,
            cfg.max_len,
        ))?;
        let ring = FrameRing::new(storage, cfg.queue_len, cfg.max_len).ok_or(EINVAL)?;
        let pending = Pending::new()?;
        let locked = Locked {
            asm: Assembler::new(cfg.addr, cfg.max_len),
            st: State {
                ring,
                counters: Counters::default(),
                dead: false,
                own_addr: cfg.addr,
                seqs: VBox::init(pin_init::zeroed::<SeqTable>(), GFP_KERNEL)?,
                requests: SeqFrames::new(cfg.max_len)?,
                responses: SeqFrames::new(cfg.max_len)?,
                clients: Clients::new()?,
                notes: VBox::init(pin_init::zeroed::<WriteNotes>(), GFP_KERNEL)?,
                shared_in: 0,
                shared_out: 0,
                shared_taken: 0,
                blocked_readers: 0,
                pending: pending.clone(),
                next_id: 1,
                timer_at: None,
            },
        };
        let name = CString::try_from_fmt(fmt!("ipmb-{}", cfg.adapter))?;
        let queue = OwnedQueue::new_unbound(&name, 1)?;
        Arc::pin_init(
            try_pin_init!(Self {
                rx <- new_irq_spinlock!(locked, c"Instance::rx"),
                wait <- new_condvar!("Instance::wait"),
                seq_wait <- pin_init::pin_init_array_from_fn(|_| new_condvar!("Instance::seq_wait")),
                seq_free <- new_condvar!("Instance::seq_free"),
                client_wait <- pin_init::pin_init_array_from_fn(|_| {
                    new_condvar!("Instance::client_wait")
                }),
                polls: PollQueues::new(c"Instance::polls", static_lock_class!())?,
                tx <- new_mutex!(TxState { client }, "Instance::tx"),
                timer <- HrTimer::new(),
                armed <- new_mutex!(None, "Instance::armed"),
                work <- new_work!("Instance::work"),
                queue,
                epoch: Instant::now(),
                pending,
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
                    max_registrations: MAX_REGISTRATIONS as u32,
                    ..pin_init::zeroed()
                },
            }),
            GFP_KERNEL,
        )
    }

    /// Nanoseconds since the instance was created (monotonic; callable in any context).
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(0)
    }

    /// The condition variable `IPMB_IOC_RECEIVE` waits on for client place `c`.
    pub(crate) fn client_wait(&self, c: usize) -> Option<&CondVar> {
        self.client_wait.get(c)
    }

    /// The queue `poll()` registers on: the read queue's (`None`) or client place `c`'s.
    pub(crate) fn poll_queue(&self, client: Option<usize>) -> Option<&PollQueue> {
        self.polls
            .get(client.map_or(READ_POLL, |c| READ_POLL + 1 + c))
    }

    /// Wakes the readers and pollers of the read queue.
    fn wake_readers(&self, blocked: bool) {
        if blocked {
            self.wait.notify_all();
        }
        if let Some(q) = self.poll_queue(None) {
            q.notify();
        }
    }

    /// Wakes the `IPMB_IOC_RECEIVE` callers and pollers of client place `c`.
    fn wake_client(&self, c: usize) {
        if let Some(cv) = self.client_wait(c) {
            cv.notify_all();
        }
        if let Some(q) = self.poll_queue(Some(c)) {
            q.notify();
        }
    }

    pub(crate) fn wake(&self, w: Wake) {
        if w.read {
            self.wake_readers(w.read_blocked);
        }
        if let Some(cv) = w.seq.and_then(|s| self.seq_wait.get(usize::from(s))) {
            cv.notify_all();
        }
        if let Some(c) = w.client {
            self.wake_client(c);
        }
        if w.seq_free {
            self.seq_free.notify_all();
        }
    }

    /// Unbind: marks the instance dead, wakes every waiter, cancels the response timer, and
    /// waits for a transmission in flight and for the transmit work. Only the first call does
    /// anything: unbind kills, and the driver data's guard kills again when it is dropped.
    pub(crate) fn kill(&self) {
        let (account, taken, seqs_busy) = {
            let mut g = self.rx.lock();
            if g.st.mark_dead() {
                return;
            }
            let busy = g.st.seqs.busy() != 0;
            (account::Final::of(&g), g.st.clients.taken(), busy)
        };
        account.log(self.info.adapter);
        self.wake_readers(true);
        // A synchronous caller waits on its request's seq, which is not free until it has
        // collected the outcome; with every seq free nobody waits (64 wake-ups: 4 us).
        if seqs_busy {
            self.seq_wait.iter().for_each(CondVar::notify_all);
        }
        // Only the file holding a place waits or polls on its queues; the character device is
        // gone, so no file takes a place any more.
        (0..MAX_CLIENTS)
            .filter(|c| taken & (1u64 << c) != 0)
            .for_each(|c| self.wake_client(c));
        self.seq_free.notify_all();
        // Cancels the timer (waiting for its callback) and drops its reference to the instance;
        // with `dead` set nobody starts it again.
        drop(self.armed.lock().take());
        // Waits for a transmission in flight; none can start afterwards.
        self.tx.lock().client = None;
        // Nothing queues the work once `dead` is set; the last queued run sees it and returns.
        flush_work(&self.work);
    }
}
