// SPDX-License-Identifier: GPL-2.0

//! The shared wire: target registry, master transfers, and event delivery in hard-IRQ context.
//!
//! A master transfer runs in process context. It waits for the bus, applies the fault
//! injection parameters, and turns each message into a [`Job`]: a small script of target events
//! (`WRITE_REQUESTED`/`READ_REQUESTED`, one event per byte, `STOP`) kept in preallocated state.
//! An `irq_work` delivers the script to the target backend in hard-IRQ context, as a real
//! controller's interrupt handler would, either all at once or one event per interrupt at the
//! wire rate, and completes a completion the master sleeps on (with a timeout). The master
//! queues the `irq_work` itself when there is neither delay nor pacing; otherwise a hard-mode
//! hrtimer raises it: once after `delay_us`, then every 9 bit times when paced, counted from
//! the first expiry (the address phase), so that the `STOP` of a message of N bytes comes
//! N + 1 times 9 bit times after it (the address byte and the data), as on a real bus.
//!
//! The bus is busy from the start of a master transfer to its final `STOP`: the delivery of
//! that `STOP` frees it, in the interrupt, as a real bus is free once the `STOP` condition is
//! on it, whenever the master's thread runs again. A master on another adapter may then start
//! at once; each adapter has its own job, timer, `irq_work` and completion ([`Master`]), so the
//! master that finished still finds its own outcome (and read data). A transfer that ends
//! without its `STOP` (a NAK before its last message, `drop_stop_next`, a timeout) frees the
//! bus when it returns. Transfers of one adapter are serialised (the I2C core does it too).
//!
//! The `irq_work` is not `IRQ_WORK_HARD_IRQ`: like a threadable device interrupt handler, it
//! may take `spinlock_t` locks (the wire's, and the target backend's), which lockdep forbids in
//! a hard hrtimer callback itself.
//!
//! # General call
//!
//! A write message to 7-bit address 0 ([`GENERAL_CALL`]) is a broadcast: its job has every
//! target registered on the other adapters as a receiver, and each event of the script (the
//! address phase, every byte, `STOP`) goes to all of them in turn in the same interrupt, as all
//! devices on a real bus see the same bit stream. Acknowledgement is wired-AND: the address or
//! a byte is acknowledged if at least one receiver acknowledges it. A receiver that refuses one
//! gets no more bytes of the message, but still the `STOP`. The message fails with `-ENXIO`
//! if no target is registered on another adapter (or none acknowledges the address), and with
//! `-EIO` if every receiver refused a byte. A read from address 0 fails with `-ENXIO`: the
//! general call is write-only. The fault injection parameters apply to the transfer on the
//! wire, hence to every receiver alike: `nak_next` and `arb_lost_next` fail it before anyone
//! sees it, `drop_stop_next` withholds the final `STOP` from all receivers, `corrupt_byte`
//! inverts the byte every receiver gets, and `delay_us` and `speed_khz` time the events, which
//! take as long as for a single target. `WRITE_REQUESTED` carries the address byte on the wire
//! (0 for a general call) in `val`.

use crate::{
    abstractions::irq_lock::{
        new_irq_spinlock,
        IrqSpinLock, //
    },
    adapter::{
        Adapter,
        Msg, //
    },
    fault::{
        self,
        Fault, //
    },
    param::module_param_int,
};
use core::{
    pin::Pin,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    ffi::c_int,
    impl_has_hr_timer,
    new_mutex,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_condvar,
        CondVar,
        Mutex, //
    },
    time::{
        hrtimer::{
            HrTimer,
            HrTimerCallback,
            HrTimerCallbackContext,
            HrTimerRestart,
            RelativeHardMode,
            ScopedHrTimerPointer, //
        },
        msecs_to_jiffies,
        Delta,
        Jiffies,
        Monotonic, //
    },
    types::Opaque,
    ThisModule, //
};

/// Most adapters one wire can have (bound of the `nr_adapters` parameter).
pub(crate) const MAX_ADAPTERS: usize = 8;

/// Longest message in bytes (the adapters' quirks make the I2C core reject longer ones).
pub(crate) const MAX_MSG_LEN: usize = 256;

/// The general-call address: a write to it reaches every target on the other adapters.
pub(crate) const GENERAL_CALL: u16 = 0x00;

/// How long a master waits for the delivery of one message, on top of the expected duration.
const DELIVERY_TIMEOUT_MS: i64 = 1000;

/// Bits on the wire per byte: 8 data bits and the acknowledge bit.
const BITS_PER_BYTE: i64 = 9;

module_param_int! {
    /// Number of adapters on the wire, read at load time.
    pub(crate) static NR_ADAPTERS: nr_adapters = 2, 1, MAX_ADAPTERS as i32, perm: 0o444,
        "Number of adapters joined to the wire (1..8, default 2)",
}

module_param_int! {
    /// Count of coming transfers to NAK at the address (`-ENXIO`, nothing delivered).
    static NAK_NEXT: nak_next = 0, 0, i32::MAX, perm: 0o644,
        "NAK the next N transfers at the address: -ENXIO, nothing delivered",
}

module_param_int! {
    /// Count of coming transfers that lose arbitration (`-EAGAIN`, nothing delivered).
    static ARB_LOST_NEXT: arb_lost_next = 0, 0, i32::MAX, perm: 0o644,
        "The next N transfers lose arbitration: -EAGAIN, nothing delivered",
}

module_param_int! {
    /// Count of coming transfers delivered without their final `STOP` event.
    static DROP_STOP_NEXT: drop_stop_next = 0, 0, i32::MAX, perm: 0o644,
        "Deliver the next N transfers without their final STOP event",
}

module_param_int! {
    /// Index of the byte of the first message of the next write transfer to invert, or -1.
    static CORRUPT_BYTE: corrupt_byte = -1, -1, i32::MAX, perm: 0o644,
        "If >= 0: invert (XOR 0xff) byte K of the first message of the next write transfer",
}

module_param_int! {
    /// Delay in microseconds between a transfer's start and the delivery of its first event.
    static DELAY_US: delay_us = 0, 0, 1_000_000, perm: 0o644,
        "Delay in microseconds before delivery starts (0..1000000, persistent)",
}

module_param_int! {
    /// Wire clock in kHz for pacing events, or 0 for delivery in a single interrupt.
    static SPEED_KHZ: speed_khz = 0, 0, 5000, perm: 0o644,
        "Wire clock in kHz: one event per interrupt every 9 bit times; 0: all in one interrupt",
}

/// Returns the error for a positive errno the `kernel` crate does not name (`EOPNOTSUPP`...).
pub(crate) fn errno(code: u32) -> Error {
    Error::from_errno(c_int::try_from(code).map_or(-1, |c| -c))
}

/// A target (slave) backend registered on the wire.
///
/// # Invariants
///
/// `client` points to a valid `struct i2c_client` while the target is in
/// [`WireState::targets`], and its `slave_cb` is set: the I2C core sets it before `reg_slave`
/// and clears it only after `unreg_slave`, which removes the target first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target {
    client: NonNull<bindings::i2c_client>,
    addr: u16,
}

// SAFETY: A `Target` is a handle on a client that the I2C core keeps alive while registered; it
// is used only under the wire's lock, from any thread or interrupt.
unsafe impl Send for Target {}

impl Target {
    /// Creates the handle for a client that asks to become a target.
    ///
    /// # Safety
    ///
    /// `client` must point to a valid `struct i2c_client` for the duration of the call.
    pub(crate) unsafe fn from_raw(client: *mut bindings::i2c_client) -> Result<Self> {
        let client = NonNull::new(client).ok_or(EINVAL)?;
        // SAFETY: `client` is valid for reads (function requirements).
        let (flags, addr) = unsafe { ((*client.as_ptr()).flags, (*client.as_ptr()).addr) };
        if u32::from(flags) & bindings::I2C_CLIENT_TEN != 0 {
            return Err(errno(bindings::EAFNOSUPPORT));
        }
        // INVARIANT: Not in the registry yet; the invariant holds from registration.
        Ok(Self { client, addr })
    }

    /// Delivers one target event; returns the backend's answer (non-zero is a NAK).
    ///
    /// # Safety
    ///
    /// The caller must hold the wire's lock, and `self` must be in [`WireState::targets`].
    unsafe fn event(&self, event: bindings::i2c_slave_event, val: &mut u8) -> c_int {
        // SAFETY: `self` is registered and stays so while the caller holds the lock (function
        // requirements), so by the type invariants `client` is valid with `slave_cb` set.
        unsafe { bindings::i2c_slave_event(self.client.as_ptr(), event, val) }
    }
}

/// Where a [`Job`] is in its event script.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The address phase: `WRITE_REQUESTED` or `READ_REQUESTED` comes next.
    Address,
    /// The data phase: the byte at this index comes next.
    Data(usize),
    /// `STOP` comes next.
    Stop,
    /// Nothing left to deliver.
    Done,
}

/// How a [`Job`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// All events were delivered, and each was acknowledged by at least one receiver.
    Acked,
    /// No receiver acknowledged `WRITE_REQUESTED`.
    AddressNak,
    /// Every receiver refused a data byte.
    DataNak,
    /// Every receiver was unregistered before the job ended.
    Gone,
}

/// The targets a message reaches, indexed by the adapter they registered on.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Receivers([Option<Target>; MAX_ADAPTERS]);

impl Receivers {
    /// No target.
    const NONE: Self = Self([None; MAX_ADAPTERS]);

    /// Whether there is no target.
    fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The targets of `self` that are not in `other`.
    fn without(&self, other: &Self) -> Self {
        let mut out = *self;
        for (slot, t) in out.0.iter_mut().zip(other.0.iter()) {
            if *slot == *t {
                *slot = None;
            }
        }
        out
    }
}

/// A target taking part in a [`Job`].
#[derive(Clone, Copy)]
struct Receiver {
    /// The target.
    target: Target,
    /// Whether it acknowledged everything so far; once it refuses the address or a byte it
    /// gets no more bytes of the message, only the `STOP`.
    listening: bool,
}

/// One message's worth of events for its receivers, delivered in hard-IRQ context.
///
/// A write has one receiver, or for a general call one per target on the other adapters; a
/// read has exactly one.
struct Job {
    /// The receivers, indexed by adapter; all `None` when no job is loaded. A receiver that is
    /// unregistered during the job leaves it.
    receivers: [Option<Receiver>; MAX_ADAPTERS],
    /// The 7-bit address on the wire ([`GENERAL_CALL`] for a general call).
    addr: u16,
    /// The next step.
    phase: Phase,
    /// Whether the message is a read.
    read: bool,
    /// Message length in bytes.
    len: usize,
    /// Bytes to write, or bytes read; only the first `len` count.
    buf: [u8; MAX_MSG_LEN],
    /// Index of a written byte to invert.
    corrupt: Option<usize>,
    /// Whether `STOP` follows the data.
    stop: bool,
    /// Time between two events in nanoseconds; 0 delivers them all in one interrupt.
    interval_ns: i64,
    /// The result so far.
    outcome: Outcome,
    /// Whether the `STOP` this job delivers ends its master's transfer, which frees the bus.
    release: bool,
    /// Whether the job delivered its `STOP`.
    stopped: bool,
}

impl Job {
    /// An empty job.
    const fn new() -> Self {
        Self {
            receivers: [None; MAX_ADAPTERS],
            addr: 0,
            phase: Phase::Done,
            read: false,
            len: 0,
            buf: [0; MAX_MSG_LEN],
            corrupt: None,
            stop: false,
            interval_ns: 0,
            outcome: Outcome::Acked,
            release: false,
            stopped: false,
        }
    }

    /// Makes `receivers` the receivers of the job, all listening.
    fn set_receivers(&mut self, receivers: &Receivers) {
        for (slot, t) in self.receivers.iter_mut().zip(receivers.0.iter()) {
            *slot = t.map(|target| Receiver {
                target,
                listening: true,
            });
        }
    }

    /// Whether some receiver still listens.
    fn listening(&self) -> bool {
        self.receivers.iter().flatten().any(|r| r.listening)
    }

    /// Moves to the data byte `pos`, or past the data.
    fn goto_data(&mut self, pos: usize) {
        self.phase = if pos < self.len {
            Phase::Data(pos)
        } else if self.stop {
            Phase::Stop
        } else {
            Phase::Done
        };
    }

    /// Records a NAK: the rest of the message is dropped, and `STOP` ends the transfer.
    fn nak(&mut self, outcome: Outcome) {
        self.outcome = outcome;
        self.phase = Phase::Stop;
    }
}

/// The state shared by the master (process context) and the delivery (hard IRQ).
struct WireState {
    /// The registered targets, indexed by the adapter they registered on.
    targets: [Option<Target>; MAX_ADAPTERS],
    /// Per adapter: the job of its master being delivered (or the last one). Only the bus's
    /// owner has a job that is not done.
    jobs: [Job; MAX_ADAPTERS],
    /// The adapter whose master transfer holds the bus, from its start to its final `STOP`.
    owner: Option<usize>,
    /// Per adapter: its target holds an unfinished general call that does not name it (first
    /// byte delivered, no `STOP` or `START` since), which [`fault::count_delivery`] did not
    /// count; counted if the target is removed with it (see [`fault`]).
    foreign_open: [bool; MAX_ADAPTERS],
}

impl WireState {
    /// The job of adapter `port`'s master, with the targets it is delivered to.
    fn line(&mut self, port: usize) -> Option<Line<'_>> {
        Some(Line {
            port,
            targets: &self.targets,
            job: self.jobs.get_mut(port)?,
            foreign_open: &mut self.foreign_open,
        })
    }
}

/// A job under the wire's lock, with the registry it is delivered by.
struct Line<'a> {
    /// The adapter of the job's master.
    port: usize,
    targets: &'a [Option<Target>; MAX_ADAPTERS],
    job: &'a mut Job,
    foreign_open: &'a mut [bool; MAX_ADAPTERS],
}

impl Line<'_> {
    /// Delivers `event` to the receivers of the job that still listen (to all of them if
    /// `all`), each with its own copy of `val`. A receiver that answers non-zero (a NAK) stops
    /// listening; one no longer registered leaves the job and gets nothing.
    ///
    /// Returns the value the last receiver left in its copy of `val`: for a read, which has one
    /// receiver, the byte it supplies.
    fn broadcast(&mut self, event: bindings::i2c_slave_event, val: u8, all: bool) -> u8 {
        let mut out = val;
        let ends_frame = event == bindings::i2c_slave_event_I2C_SLAVE_WRITE_REQUESTED
            || event == bindings::i2c_slave_event_I2C_SLAVE_READ_REQUESTED
            || event == bindings::i2c_slave_event_I2C_SLAVE_STOP;
        for (port, (slot, registered)) in self
            .job
            .receivers
            .iter_mut()
            .zip(self.targets.iter())
            .enumerate()
        {
            let Some(receiver) = slot else {
                continue;
            };
            if *registered != Some(receiver.target) {
                *slot = None;
                continue;
            }
            if !all && !receiver.listening {
                continue;
            }
            let mut v = val;
            let start = crate::load::now_ns();
            if ends_frame {
                if let Some(open) = self.foreign_open.get_mut(port) {
                    *open = false;
                }
            }
            // SAFETY: The caller holds the lock (`self` borrows the state, which lives in the
            // lock) and `receiver.target` is in `self.targets`, checked above.
            let ret = unsafe { receiver.target.event(event, &mut v) };
            crate::load::record(event, start, self.port);
            if ret != 0 {
                receiver.listening = false;
            }
            out = v;
        }
        out
    }

    /// Counts the message for each receiver that gets its first byte `first` (see [`fault`]).
    fn count_deliveries(&mut self, first: u8) {
        for (port, r) in self.job.receivers.iter().enumerate() {
            if let Some(r) = r.filter(|r| r.listening) {
                if self.job.addr != GENERAL_CALL || u16::from(first) == r.target.addr << 1 {
                    fault::count_delivery(port);
                } else if let Some(open) = self.foreign_open.get_mut(port) {
                    *open = true;
                }
            }
        }
    }

    /// Delivers the next event of the job to its receivers; returns whether events remain.
    ///
    /// The job must not be done (`job.phase != Phase::Done`).
    fn step(&mut self) -> bool {
        let Self { targets, job, .. } = self;
        // Receivers unregistered since the job was loaded leave it.
        for (slot, registered) in job.receivers.iter_mut().zip(targets.iter()) {
            if slot.is_some_and(|r| *registered != Some(r.target)) {
                *slot = None;
            }
        }
        if job.receivers.iter().all(Option::is_none) {
            job.outcome = Outcome::Gone;
            job.phase = Phase::Done;
            return false;
        }
        match self.job.phase {
            Phase::Address if self.job.read => {
                let val =
                    self.broadcast(bindings::i2c_slave_event_I2C_SLAVE_READ_REQUESTED, 0, true);
                let job = &mut *self.job;
                if let Some(first) = job.buf.get_mut(..job.len).and_then(|b| b.first_mut()) {
                    *first = val;
                }
                job.goto_data(1);
            }
            Phase::Address => {
                // The backend may look at the address byte a controller would pass.
                let val = (self.job.addr << 1) as u8;
                self.broadcast(
                    bindings::i2c_slave_event_I2C_SLAVE_WRITE_REQUESTED,
                    val,
                    false,
                );
                if self.job.listening() {
                    self.job.goto_data(0);
                } else {
                    self.job.nak(Outcome::AddressNak);
                }
            }
            Phase::Data(pos) => match self.job.buf.get(pos).copied() {
                Some(_) if self.job.read => {
                    let val =
                        self.broadcast(bindings::i2c_slave_event_I2C_SLAVE_READ_PROCESSED, 0, true);
                    if let Some(byte) = self.job.buf.get_mut(pos) {
                        *byte = val;
                    }
                    self.job.goto_data(pos + 1);
                }
                Some(byte) => {
                    let val = if self.job.corrupt == Some(pos) {
                        byte ^ 0xff
                    } else {
                        byte
                    };
                    if pos == 0 {
                        self.count_deliveries(val);
                    }
                    self.broadcast(
                        bindings::i2c_slave_event_I2C_SLAVE_WRITE_RECEIVED,
                        val,
                        false,
                    );
                    if self.job.listening() {
                        self.job.goto_data(pos + 1);
                    } else {
                        self.job.nak(Outcome::DataNak);
                    }
                }
                None => self.job.phase = Phase::Done,
            },
            Phase::Stop => {
                self.broadcast(bindings::i2c_slave_event_I2C_SLAVE_STOP, 0, true);
                self.job.phase = Phase::Done;
                self.job.stopped = true;
            }
            Phase::Done => {}
        }
        self.job.phase != Phase::Done
    }
}

/// A `struct completion` the delivery signals and the master waits on with a timeout.
#[pin_data]
struct Done {
    #[pin]
    inner: Opaque<bindings::completion>,
}

// SAFETY: A completion is designed to be signalled and waited on from any thread or interrupt;
// its state is protected by its own lock.
unsafe impl Send for Done {}
// SAFETY: See `Send`; every operation goes through the C functions, which lock.
unsafe impl Sync for Done {}

impl Done {
    /// Creates an initialiser for an unsignalled completion.
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid for writes; `init_completion` initialises all of it.
            inner <- Opaque::ffi_init(|slot| unsafe { bindings::init_completion(slot) }),
        })
    }

    /// Signals the completion (callable from hard-IRQ context).
    fn complete(&self) {
        // SAFETY: `inner` was initialised by `init_completion` in `new`.
        unsafe { bindings::complete(self.inner.get()) }
    }

    /// Waits until signalled or `timeout` passes; returns whether it was signalled.
    fn wait(&self, timeout: Jiffies) -> bool {
        // SAFETY: `inner` was initialised by `init_completion` in `new`.
        unsafe { bindings::wait_for_completion_timeout(self.inner.get(), timeout) != 0 }
    }

    /// Consumes a signal that came after its waiter timed out, if any.
    fn drain(&self) {
        // SAFETY: `inner` was initialised by `init_completion` in `new`.
        while unsafe { bindings::try_wait_for_completion(self.inner.get()) } {}
    }
}

/// An `irq_work` item whose function delivers the wire's job.
#[repr(transparent)]
#[pin_data]
struct DeliveryWork {
    #[pin]
    inner: Opaque<bindings::irq_work>,
}

// SAFETY: An `irq_work` may be queued and synchronised from any thread; the C code handles the
// concurrency with atomic flags.
unsafe impl Send for DeliveryWork {}
// SAFETY: See `Send`; every operation goes through the C functions.
unsafe impl Sync for DeliveryWork {}

impl DeliveryWork {
    /// Creates an initialiser for an idle work item that runs `func`.
    fn new(func: unsafe extern "C" fn(*mut bindings::irq_work)) -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- Opaque::ffi_init(move |slot: *mut bindings::irq_work| {
                // This is `init_irq_work()`: `IRQ_WORK_INIT(func)` is all zeroes but `func`.
                let work = bindings::irq_work {
                    func: Some(func),
                    ..Default::default()
                };
                // SAFETY: `slot` is valid for writes.
                unsafe { slot.write(work) };
            }),
        })
    }

    /// Queues the work on this CPU unless it is pending; it runs in hard-IRQ context.
    fn queue(&self) {
        // SAFETY: `inner` was initialised in `new`.
        unsafe { bindings::irq_work_queue(self.inner.get()) };
    }

    /// Waits until the work is neither pending nor running (process context only).
    fn sync(&self) {
        // SAFETY: `inner` was initialised in `new`.
        unsafe { bindings::irq_work_sync(self.inner.get()) };
    }
}

/// The `irq_work` function: delivers the next event(s) of its master's job (all of them, or
/// one when paced).
///
/// # Safety
///
/// Called only by the `irq_work` code, with `work` the `work` field of a [`Master`] of a
/// [`Wire`]. Both stay valid: only [`Wire::run_job`] queues the work and starts the timer
/// that queues it, and it waits for the work with [`DeliveryWork::sync`] before it returns.
unsafe extern "C" fn deliver_work(work: *mut bindings::irq_work) {
    // SAFETY: `work` is the `inner` field of a `DeliveryWork` (`repr(transparent)`), the `work`
    // field of a valid `Master` (function requirements).
    let master = unsafe { &*kernel::container_of!(work.cast::<DeliveryWork>(), Master, work) };
    // SAFETY: A `Master` lives in the `masters` of the `Wire` `wire` points to, which is valid
    // as long as the master is (type invariants of `Master`).
    let wire = unsafe { master.wire.as_ref() };
    wire.deliver(master);
}

/// The delivery machinery of one adapter's master transfers: its timer, its `irq_work`, and
/// the completion its master waits on. One per adapter, so that a master can start on a bus
/// that another master has just freed with its `STOP` while that one's thread has not yet run
/// (the other's timer, work and completion are its own).
///
/// # Invariants
///
/// `wire` points to the [`Wire`] whose `masters` hold `self`, at index `port`.
#[pin_data]
struct Master {
    /// Serialises the master transfers of the adapter (the I2C core's adapter lock does too,
    /// but the load source calls [`Wire::transfer`] directly).
    #[pin]
    lock: Mutex<()>,
    /// Raises `work` after the delay, then at every event when paced.
    #[pin]
    timer: HrTimer<Master>,
    /// Time between two events in nanoseconds, for the timer (0: not paced).
    interval_ns: Atomic<i64>,
    /// Delivers the job's events in hard-IRQ context.
    #[pin]
    work: DeliveryWork,
    /// Signalled by the delivery when the job is done.
    #[pin]
    done: Done,
    /// The adapter.
    port: usize,
    /// The wire.
    wire: NonNull<Wire>,
}

// SAFETY: `wire` is only read, through a shared reference; `Wire` is `Sync` (its state is
// behind locks), and the rest of `Master` is `Send`.
unsafe impl Send for Master {}
// SAFETY: See `Send`; `Master` has no interior mutability outside locks and atomics.
unsafe impl Sync for Master {}

impl Master {
    /// Creates an initialiser for the master of adapter `port` of the wire at `wire`.
    fn new(port: usize, wire: NonNull<Wire>) -> impl PinInit<Self> {
        // INVARIANT: The caller puts the master at index `port` of `wire`'s `masters`.
        pin_init!(Self {
            lock <- new_mutex!((), "Master::lock"),
            timer <- HrTimer::new(),
            interval_ns: Atomic::new(0),
            work <- DeliveryWork::new(deliver_work),
            done <- Done::new(),
            port,
            wire,
        })
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Master {
        mode: RelativeHardMode<Monotonic>,
        field: self.timer
    }
}

impl HrTimerCallback for Master {
    type Pointer<'a> = Pin<&'a Master>;

    fn run(this: Pin<&Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        this.work.queue();
        let interval = this.interval_ns.load(Relaxed);
        if interval > 0 {
            // Keeps ticking until the master cancels the timer; ticks after the job is done
            // find nothing to deliver.
            ctx.forward_now(Delta::from_nanos(interval));
            HrTimerRestart::Restart
        } else {
            HrTimerRestart::NoRestart
        }
    }
}

/// The virtual bus: adapters joined to one wire.
#[pin_data]
pub(crate) struct Wire {
    /// Targets, the masters' jobs and the bus's owner, shared with the hard-IRQ delivery.
    #[pin]
    state: IrqSpinLock<WireState>,
    /// Signalled when the bus is freed (`WireState::owner` cleared).
    #[pin]
    freed: CondVar,
    /// Per adapter: the delivery of its master transfers.
    #[pin]
    masters: [Master; MAX_ADAPTERS],
    /// The adapters; `algo_data` of each points back to this `Wire`.
    ports: [Adapter; MAX_ADAPTERS],
}

impl Wire {
    /// Creates an initialiser for a wire with no adapters registered yet.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            state <- new_irq_spinlock!(
                WireState {
                    targets: [None; MAX_ADAPTERS],
                    jobs: [const { Job::new() }; MAX_ADAPTERS],
                    owner: None,
                    foreign_open: [false; MAX_ADAPTERS],
                },
                c"Wire::state"
            ),
            freed <- new_condvar!("Wire::freed"),
            masters <- pin_init::pin_init_array_from_fn(|i| Master::new(i, this)),
            ports: [const { Adapter::new() }; MAX_ADAPTERS],
        }? Error)
    }

    /// Registers adapter `index` with the I2C core as `ipmb-vbus-<index>`.
    ///
    /// # Safety
    ///
    /// Adapter `index` must not have been added before, and it must be deleted with
    /// [`Wire::del_adapter`] before `self` is dropped.
    pub(crate) unsafe fn add_adapter(
        self: Pin<&Self>,
        index: usize,
        owner: &'static ThisModule,
    ) -> Result {
        let port = self.ports.get(index).ok_or(EINVAL)?;
        let data = core::ptr::from_ref(self.get_ref()).cast_mut().cast();
        // SAFETY: `self` is pinned, so `data` stays valid until the adapter is deleted, which
        // the caller guarantees happens before `self` is dropped; it was never added before.
        unsafe { port.add(index, owner, data) }
    }

    /// Deletes adapter `index`, which removes its clients (and so unregisters their targets).
    ///
    /// # Safety
    ///
    /// Adapter `index` must have been added with [`Wire::add_adapter`] and not deleted since.
    pub(crate) unsafe fn del_adapter(&self, index: usize) {
        if let Some(port) = self.ports.get(index) {
            // SAFETY: The adapter is registered (function requirements).
            unsafe { port.del() };
        }
    }

    /// Returns the raw pointer to adapter `index`, which may not be registered.
    pub(crate) fn adapter(&self, index: usize) -> Option<*mut bindings::i2c_adapter> {
        self.ports.get(index).map(Adapter::as_raw)
    }

    /// Returns the index of the adapter `adap` points to, if it is one of this wire's.
    pub(crate) fn port_index(&self, adap: *const bindings::i2c_adapter) -> Option<usize> {
        self.ports
            .iter()
            .position(|p| core::ptr::eq(p.as_raw().cast_const(), adap))
    }

    /// Records `target` as the target of adapter `port`.
    ///
    /// The general-call address is no target's own (the I2C core refuses it too).
    pub(crate) fn register_target(&self, port: usize, target: Target) -> Result {
        if target.addr == GENERAL_CALL {
            return Err(EINVAL);
        }
        let mut state = self.state.lock();
        if state
            .targets
            .iter()
            .flatten()
            .any(|t| t.addr == target.addr)
        {
            return Err(EBUSY);
        }
        let slot = state.targets.get_mut(port).ok_or(EINVAL)?;
        if slot.is_some() {
            return Err(EBUSY);
        }
        *slot = Some(target);
        Ok(())
    }

    /// Removes the target of adapter `port`, which must be `target`.
    ///
    /// The delivery holds the lock while it calls a target and checks the registry first, so
    /// once this returns no event is being, or will be, delivered to `target`.
    pub(crate) fn unregister_target(&self, port: usize, target: Target) -> Result {
        let mut state = self.state.lock();
        let slot = state.targets.get_mut(port).ok_or(EINVAL)?;
        if slot.map(|t| t.client) != Some(target.client) {
            return Err(ENOENT);
        }
        *slot = None;
        if let Some(open) = state.foreign_open.get_mut(port) {
            if core::mem::take(open) {
                // The target cannot tell it from a frame of its own cut by the removal.
                fault::count_delivery(port);
            }
        }
        Ok(())
    }

    /// Returns the targets that a message from adapter `port` to 7-bit address `addr` reaches:
    /// the target at `addr` on another adapter, or for a general-call write every target on
    /// the other adapters. A read from the general-call address reaches none.
    fn receivers(&self, port: usize, addr: u16, read: bool) -> Receivers {
        let state = self.state.lock();
        let mut out = Receivers::NONE;
        for (i, (slot, t)) in out.0.iter_mut().zip(state.targets.iter()).enumerate() {
            if i != port {
                *slot = t.filter(|t| {
                    if addr == GENERAL_CALL {
                        !read
                    } else {
                        t.addr == addr
                    }
                });
            }
        }
        out
    }

    /// Performs a master transfer from adapter `port`; returns the number of messages.
    ///
    /// It waits for the bus, which is busy from the start of a master transfer to its final
    /// `STOP` (the delivery frees it there, as on a real bus, not when the master's thread runs
    /// again), or to its end if it has none.
    pub(crate) fn transfer<'a>(
        self: Pin<&Self>,
        port: usize,
        msgs: impl ExactSizeIterator<Item = Msg<'a>>,
    ) -> Result<usize> {
        let enter = crate::load::trace_now();
        let master = self.master(port)?;
        let _serial = master.lock.lock();
        {
            let mut state = self.state.lock();
            while state.owner.is_some() {
                self.freed.wait(&mut state);
            }
            state.owner = Some(port);
        }
        let locked = crate::load::trace_now();
        let result = self.transfer_owned(master, msgs);
        let freed = {
            let mut state = self.state.lock();
            if state.owner == Some(port) {
                state.owner = None;
                true
            } else {
                false
            }
        };
        if freed {
            self.freed.notify_all();
        }
        crate::load::trace_transfer(port, enter, locked);
        result
    }

    /// The master of adapter `port`.
    fn master(self: Pin<&Self>, port: usize) -> Result<Pin<&Master>> {
        let master = self.get_ref().masters.get(port).ok_or(EINVAL)?;
        // SAFETY: `masters` is a structurally pinned field of the pinned `self`.
        Ok(unsafe { Pin::new_unchecked(master) })
    }

    /// [`Wire::transfer`] by `master`, which holds the bus.
    fn transfer_owned<'a>(
        &self,
        master: Pin<&Master>,
        msgs: impl ExactSizeIterator<Item = Msg<'a>>,
    ) -> Result<usize> {
        let port = master.port;
        let count = msgs.len();
        let fault = Fault::pick();

        // Arbitration is lost (or the address NAKed) before any target sees the transfer.
        if ARB_LOST_NEXT.take_one() || fault.arb_lost() {
            return Err(EAGAIN);
        }
        if NAK_NEXT.take_one() || fault.nak() {
            return Err(ENXIO);
        }

        // In 32-bit arithmetic: 32-bit kernels have no 64-bit division operator.
        let speed = SPEED_KHZ.get();
        let interval_ns = if speed > 0 {
            // At most 9 000 000: fits an `i32`.
            i64::from(BITS_PER_BYTE as i32 * 1_000_000 / speed)
        } else {
            0
        };
        let mut delay = Delta::from_micros(i64::from(DELAY_US.get()) + fault.delay_us());
        let mut drop_stop = false;
        // The targets that were addressed without a STOP yet.
        let mut open = Receivers::NONE;
        let mut result = Ok(count);

        for (i, mut msg) in msgs.enumerate() {
            if msg.flags() & (bindings::I2C_M_TEN | bindings::I2C_M_RECV_LEN) != 0
                || msg.len() > MAX_MSG_LEN
            {
                result = Err(errno(bindings::EOPNOTSUPP));
                break;
            }
            let receivers = self.receivers(port, msg.addr(), msg.is_read());
            if receivers.is_empty() {
                result = Err(ENXIO);
                break;
            }
            let mut corrupt = None;
            if i == 0 {
                drop_stop = DROP_STOP_NEXT.take_one() || fault.drop_stop();
                if !msg.is_read() {
                    corrupt = usize::try_from(CORRUPT_BYTE.replace(-1))
                        .ok()
                        .or_else(|| fault.corrupt(msg.addr(), msg.len()));
                }
            }
            // Another address is selected: the transfer is over for the targets it does not
            // reach again.
            let left = core::mem::replace(&mut open, Receivers::NONE).without(&receivers);
            if !left.is_empty() {
                let _ = self.deliver_stop(master, &left, interval_ns, delay);
                delay = Delta::ZERO;
            }

            let stop = i + 1 == count && !drop_stop;
            let outcome = {
                let mut state = self.state.lock();
                let Some(job) = state.jobs.get_mut(port) else {
                    return Err(EINVAL);
                };
                job.set_receivers(&receivers);
                job.addr = msg.addr();
                job.phase = Phase::Address;
                job.read = msg.is_read();
                job.len = msg.len();
                if !job.read {
                    let data = msg.data();
                    if let Some(dst) = job.buf.get_mut(..data.len()) {
                        dst.copy_from_slice(data);
                    }
                }
                job.corrupt = corrupt;
                job.stop = stop;
                job.interval_ns = interval_ns;
                job.outcome = Outcome::Acked;
                job.release = stop;
                job.stopped = false;
                drop(state);
                self.run_job(master, delay)
            };
            delay = Delta::ZERO;

            match outcome {
                Ok(Outcome::Acked) => {
                    if msg.is_read() {
                        let state = self.state.lock();
                        let data = msg.data_mut();
                        if let Some(src) =
                            state.jobs.get(port).and_then(|j| j.buf.get(..data.len()))
                        {
                            data.copy_from_slice(src);
                        }
                    }
                    if !stop {
                        open = receivers;
                    }
                }
                Ok(Outcome::AddressNak) | Ok(Outcome::Gone) => {
                    result = Err(ENXIO);
                    break;
                }
                Ok(Outcome::DataNak) => {
                    result = Err(EIO);
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }

        if result.is_err() && !open.is_empty() {
            let _ = self.deliver_stop(master, &open, interval_ns, delay);
        }
        result
    }

    /// Delivers a lone `STOP` to `targets` (the bus stays `master`'s).
    fn deliver_stop(
        &self,
        master: Pin<&Master>,
        targets: &Receivers,
        interval_ns: i64,
        delay: Delta,
    ) -> Result {
        let mut state = self.state.lock();
        let job = state.jobs.get_mut(master.port).ok_or(EINVAL)?;
        job.set_receivers(targets);
        job.phase = Phase::Stop;
        job.len = 0;
        job.interval_ns = interval_ns;
        job.outcome = Outcome::Acked;
        job.release = false;
        job.stopped = false;
        drop(state);
        self.run_job(master, delay).map(|_| ())
    }

    /// Delivers the next event(s) of `master`'s job, in hard-IRQ context (from
    /// [`deliver_work`]). The final `STOP` of a transfer frees the bus.
    fn deliver(&self, master: &Master) {
        let mut state = self.state.lock();
        let Some(mut line) = state.line(master.port) else {
            return;
        };
        if line.job.phase == Phase::Done {
            return;
        }
        let paced = line.job.interval_ns > 0;
        while line.step() {
            if paced {
                return;
            }
        }
        let freed = line.job.release && line.job.stopped;
        if freed {
            state.owner = None;
        }
        drop(state);
        if freed {
            self.freed.notify_all();
        }
        // The job moved to `Done` just now: one completion per job.
        master.done.complete();
    }

    /// Delivers `master`'s loaded job after `delay`, and waits until it is done.
    fn run_job(&self, master: Pin<&Master>, delay: Delta) -> Result<Outcome> {
        let (len, interval) = {
            let state = self.state.lock();
            let job = state.jobs.get(master.port).ok_or(EINVAL)?;
            (job.len, job.interval_ns)
        };
        master.interval_ns.store(interval, Relaxed);
        // Events: the address phase, one per byte, and STOP.
        let events = i64::try_from(len).unwrap_or(0) + 2;
        // Through `Delta`, which divides with the kernel's helpers on 32-bit kernels.
        let expected_ms = Delta::from_nanos(delay.as_nanos() + events * interval).as_millis();
        let timeout_ms = u32::try_from(DELIVERY_TIMEOUT_MS + expected_ms).unwrap_or(u32::MAX);
        let timeout = msecs_to_jiffies(timeout_ms);

        // Without delay or pacing no timer is needed: the work is queued at once, on this CPU,
        // whose `irq_work` interrupt runs it. A timer expiry costs far more than that under
        // QEMU TCG, whose main-loop thread delivers the emulated timer's interrupt (a host
        // thread that waits for the host's scheduler).
        //
        // Otherwise, the timer's first expiry is `delay` from now, and when paced the next ones
        // follow every 9 bit times from that expiry, not from when its interrupt ran: the
        // `STOP` of a message of N bytes comes (N + 1) times 9 bit times after the first
        // expiry, as on a real bus after the start, whatever the interrupts take. The handle of
        // the started timer is dropped when the closure returns, which cancels the timer and
        // waits for a running callback. Either way the work queued last is waited for: no
        // delivery runs after `sync`.
        let wait = || {
            let delivered = master.done.wait(timeout);
            crate::load::trace_woken(master.port);
            delivered
        };
        let delivered = if delay.is_zero() && interval == 0 {
            master.work.queue();
            wait()
        } else {
            master.start_scoped(delay, wait)
        };
        master.work.sync();
        master.done.drain();

        let mut state = self.state.lock();
        let job = state.jobs.get_mut(master.port).ok_or(EINVAL)?;
        let outcome = if job.phase == Phase::Done {
            Ok(job.outcome)
        } else {
            Err(ETIMEDOUT)
        };
        if !delivered && outcome.is_err() {
            pr_warn!("delivery timed out after {} ms\n", timeout_ms);
        }
        job.phase = Phase::Done;
        job.receivers = [None; MAX_ADAPTERS];
        outcome
    }
}
