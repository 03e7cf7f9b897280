// SPDX-License-Identifier: GPL-2.0

//! A kernel-side load source for benchmarks, and the time target callbacks take.
//!
//! `/sys/kernel/debug/i2c_vbus_load/` has two files:
//!
//! - `run` (write-only): `<port> <addr> <count> <gap_ns> <frame> [<frame>...]` plays `count`
//!   write messages from adapter `port` to the 7-bit address `addr`, taking the frames (hex
//!   bytes, the message without its address byte) in turn, and returns when the last one is
//!   delivered. Each message is an ordinary master transfer of the wire ([`Wire::transfer`]):
//!   its events reach the target byte by byte in hard-IRQ context, all in one interrupt, or
//!   one per interrupt at the `speed_khz` wire clock, and the fault injection parameters apply.
//!   With `gap_ns` > 0 message `i` starts no earlier than `i * gap_ns` after the first (an
//!   offered rate; the source sleeps on an hrtimer until then, it never busy-waits, so other
//!   tasks of its CPU run between messages); with 0 each starts as soon as the previous one
//!   is delivered. The load involves no userspace and no i2c-dev between its messages. A
//!   signal ends the run early (`-EINTR`).
//! - `stats` (read; any write resets it): the time spent in the target callback per event kind
//!   (`address`, `byte`, `stop`, `other`: count, sum, min, max in ns, and `hist_<kind>`: a
//!   histogram, `bucket:count` for the non-empty buckets of `bucket_ns` (1 ns), so that medians
//!   can be taken whatever a few descheduled events cost), the monotonic time of
//!   the start of the last `STOP` callback (`last_stop_ns`, comparable with userspace's
//!   `CLOCK_MONOTONIC`), the last run's messages delivered and failed with its start and end
//!   times, and `clock_ns`, the least time between two clock reads (the floor of every figure).
//!
//! - `transfers` (read; a write of `1` clears it and starts recording, `0` stops): while on,
//!   the times of the last [`TRACE_LEN`] master transfers of any source, oldest first, one
//!   line each: `<port> <enter> <locked> <first> <stop> <woken> <exit>`, monotonic ns: the
//!   transfer's call, the wire's bus lock taken, the first event and the `STOP` delivered (the
//!   start of their callbacks; 0 if none), the master woken after its last message, and its
//!   return. For breaking a round trip down into stages; off (the default) it reads no clock.
//!
//! Every event the wire delivers is timed, not only those of a run; `stats` is global to the
//! module (there is one wire).

use crate::{
    adapter::Msg,
    wire::{
        Wire,
        MAX_ADAPTERS, //
    },
};
use core::{
    pin::Pin,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    current,
    debugfs::Scope,
    fmt,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
    time::Delta,
    uaccess::UserSliceReader, //
};

/// Longest command `run` accepts, in bytes.
const MAX_CMD: usize = 8192;

/// Most messages one run plays.
const MAX_COUNT: u32 = 10_000_000;

/// Returns the monotonic clock in nanoseconds (`ktime_get()`), as userspace's
/// `CLOCK_MONOTONIC`.
pub(crate) fn now_ns() -> i64 {
    // SAFETY: `ktime_get` has no requirements; it may be called in any context.
    unsafe { bindings::ktime_get() }
}

/// Count, sum, least and greatest of a kind of duration.
///
/// Written only under the wire's lock (one writer at a time); the atomics let `stats` read it
/// without the lock, a field at a time.
struct Summary {
    count: Atomic<i64>,
    sum: Atomic<i64>,
    min: Atomic<i64>,
    max: Atomic<i64>,
    /// Durations in buckets of 1 ns ([`BUCKET_SHIFT`]); the last one takes everything longer.
    hist: [Atomic<u32>; BUCKETS],
}

/// A histogram bucket is `1 << BUCKET_SHIFT` ns (1 ns) wide: under the bench's instruction
/// counting clock one instruction is 1 ns, and a callback's cost differs between the drivers by
/// a few instructions per byte.
const BUCKET_SHIFT: u32 = 0;

/// Buckets per histogram: up to 4 us in steps of 1 ns, then one for the rest (no callback of
/// either driver takes that long unless the emulated CPU was descheduled).
const BUCKETS: usize = 4097;

impl Summary {
    /// An empty summary.
    const fn new() -> Self {
        Self {
            count: Atomic::new(0),
            sum: Atomic::new(0),
            min: Atomic::new(i64::MAX),
            max: Atomic::new(0),
            hist: [const { Atomic::new(0) }; BUCKETS],
        }
    }

    /// Adds one duration.
    fn add(&self, ns: i64) {
        self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        self.sum
            .store(self.sum.load(Relaxed).saturating_add(ns), Relaxed);
        if ns < self.min.load(Relaxed) {
            self.min.store(ns, Relaxed);
        }
        if ns > self.max.load(Relaxed) {
            self.max.store(ns, Relaxed);
        }
        // A shift: 32-bit kernels have no 64-bit division operator.
        let bucket =
            usize::try_from(ns.max(0) >> BUCKET_SHIFT).map_or(BUCKETS - 1, |b| b.min(BUCKETS - 1));
        if let Some(h) = self.hist.get(bucket) {
            h.store(h.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// Empties the summary.
    fn reset(&self) {
        self.count.store(0, Relaxed);
        self.sum.store(0, Relaxed);
        self.min.store(i64::MAX, Relaxed);
        self.max.store(0, Relaxed);
        for h in &self.hist {
            h.store(0, Relaxed);
        }
    }

    /// Prints `<name> <count> <sum> <min> <max>` (min 0 when empty), then
    /// `hist_<name>` and `<bucket>:<count>` for each non-empty bucket.
    fn show(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.count.load(Relaxed);
        let min = if count == 0 {
            0
        } else {
            self.min.load(Relaxed)
        };
        writeln!(
            f,
            "{} {} {} {} {}",
            name,
            Dec(count),
            Dec(self.sum.load(Relaxed)),
            Dec(min),
            Dec(self.max.load(Relaxed))
        )?;
        write!(f, "hist_{}", name)?;
        for (i, h) in self.hist.iter().enumerate() {
            let n = h.load(Relaxed);
            if n != 0 {
                write!(f, " {}:{}", i, n)?;
            }
        }
        writeln!(f)
    }
}

/// A number in decimal through 32-bit divisions only.
///
/// core's `Display` of a 64-bit integer divides 64-bit numbers, which 32-bit ARM kernels do not
/// link for Rust (the builtin is a stub that stops the kernel: an Oops in the first read of
/// `stats` on the AST2600).
struct Dec(i64);

impl core::fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0.unsigned_abs();
        // Digits in base 10000, least significant first: `u64::MAX` has 5.
        let mut parts = [0u32; 5];
        let mut len = 0;
        for part in &mut parts {
            // `v / 10000` by 16-bit limbs, most significant first: each step divides a `u32`
            // below `10000 << 16`.
            let (mut q, mut rem) = (0u64, 0u32);
            for shift in [48, 32, 16, 0] {
                let cur = (rem << 16) | u32::from((v >> shift) as u16);
                q |= u64::from(cur / 10_000) << shift;
                rem = cur % 10_000;
            }
            *part = rem;
            len += 1;
            v = q;
            if v == 0 {
                break;
            }
        }
        if self.0 < 0 {
            f.write_str("-")?;
        }
        let mut parts = parts.iter().take(len).rev();
        if let Some(first) = parts.next() {
            write!(f, "{}", first)?;
        }
        for part in parts {
            write!(f, "{:04}", part)?;
        }
        Ok(())
    }
}

/// What `stats` shows.
struct Stats {
    address: Summary,
    byte: Summary,
    stop: Summary,
    other: Summary,
    last_stop_ns: Atomic<i64>,
    run_ok: Atomic<i64>,
    run_failed: Atomic<i64>,
    run_start_ns: Atomic<i64>,
    run_end_ns: Atomic<i64>,
    clock_ns: Atomic<i64>,
}

/// The module's statistics (one wire per module).
static STATS: Stats = Stats {
    address: Summary::new(),
    byte: Summary::new(),
    stop: Summary::new(),
    other: Summary::new(),
    last_stop_ns: Atomic::new(0),
    run_ok: Atomic::new(0),
    run_failed: Atomic::new(0),
    run_start_ns: Atomic::new(0),
    run_end_ns: Atomic::new(0),
    clock_ns: Atomic::new(0),
};

/// Records a target callback for `event` of a transfer of adapter `master` that started at
/// `start` (from [`now_ns`]) and has just returned. Called by the wire's delivery, in hard-IRQ
/// context, under the wire's lock.
pub(crate) fn record(event: bindings::i2c_slave_event, start: i64, master: usize) {
    let ns = now_ns() - start;
    let on = TRACE.on.load(Relaxed);
    if let Some(first) = of(&TRACE.first, master).filter(|f| on && f.load(Relaxed) == 0) {
        first.store(start, Relaxed);
    }
    let summary = match event {
        bindings::i2c_slave_event_I2C_SLAVE_WRITE_REQUESTED => &STATS.address,
        bindings::i2c_slave_event_I2C_SLAVE_WRITE_RECEIVED => &STATS.byte,
        bindings::i2c_slave_event_I2C_SLAVE_STOP => {
            STATS.last_stop_ns.store(start, Relaxed);
            if let Some(stop) = of(&TRACE.stop, master).filter(|_| on) {
                stop.store(start, Relaxed);
            }
            &STATS.stop
        }
        _ => &STATS.other,
    };
    summary.add(ns);
}

/// Transfers `transfers` keeps.
pub(crate) const TRACE_LEN: usize = 64;

/// Times per transfer in `transfers`: the port, then six clock readings.
const TRACE_FIELDS: usize = 7;

/// The `transfers` record: on or off, the ring, and the transfers in progress.
///
/// Written by the masters and the delivery (a transfer's first event and `STOP` by the
/// delivery, under the wire's lock, the rest by its master); the atomics let `transfers` read
/// it without that lock.
struct Trace {
    on: Atomic<bool>,
    /// Transfers recorded since the last clear; the ring slot of the next is this modulo
    /// [`TRACE_LEN`].
    count: Atomic<usize>,
    ring: [[Atomic<i64>; TRACE_FIELDS]; TRACE_LEN],
    /// Per adapter, its transfer in progress: its first event, its `STOP`, and its master's
    /// wake-up.
    first: [Atomic<i64>; MAX_ADAPTERS],
    stop: [Atomic<i64>; MAX_ADAPTERS],
    woken: [Atomic<i64>; MAX_ADAPTERS],
}

/// The module's transfer record (one wire per module).
static TRACE: Trace = Trace {
    on: Atomic::new(false),
    count: Atomic::new(0),
    ring: [const { [const { Atomic::new(0) }; TRACE_FIELDS] }; TRACE_LEN],
    first: [const { Atomic::new(0) }; MAX_ADAPTERS],
    stop: [const { Atomic::new(0) }; MAX_ADAPTERS],
    woken: [const { Atomic::new(0) }; MAX_ADAPTERS],
};

/// Adapter `port`'s entry of one of the per-adapter times of [`TRACE`].
fn of(times: &[Atomic<i64>; MAX_ADAPTERS], port: usize) -> Option<&Atomic<i64>> {
    times.get(port)
}

/// The time now if `transfers` records, else 0 (no clock read).
pub(crate) fn trace_now() -> i64 {
    if TRACE.on.load(Relaxed) {
        now_ns()
    } else {
        0
    }
}

/// Notes that the master of adapter `port` is woken after its message (if on).
pub(crate) fn trace_woken(port: usize) {
    if let Some(woken) = of(&TRACE.woken, port).filter(|_| TRACE.on.load(Relaxed)) {
        woken.store(now_ns(), Relaxed);
    }
}

/// Records the transfer that is returning (if on): from adapter `port`, called at `enter`,
/// holding the bus lock from `locked` (both from [`trace_now`]).
pub(crate) fn trace_transfer(port: usize, enter: i64, locked: i64) {
    if !TRACE.on.load(Relaxed) {
        return;
    }
    let n = TRACE.count.load(Relaxed);
    let take = |times| of(times, port).map_or(0, |a| a.xchg(0, Relaxed));
    let fields = [
        port as i64,
        enter,
        locked,
        take(&TRACE.first),
        take(&TRACE.stop),
        take(&TRACE.woken),
        now_ns(),
    ];
    if let Some(slot) = TRACE.ring.get(n % TRACE_LEN) {
        for (a, v) in slot.iter().zip(fields) {
            a.store(v, Relaxed);
        }
    }
    TRACE.count.store(n + 1, Relaxed);
}

/// The `transfers` read callback.
fn show_transfers(_: &LoadTarget, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let n = TRACE.count.load(Relaxed);
    for i in n.saturating_sub(TRACE_LEN)..n {
        let Some(slot) = TRACE.ring.get(i % TRACE_LEN) else {
            continue;
        };
        for (k, a) in slot.iter().enumerate() {
            let sep = if k == 0 { "" } else { " " };
            write!(f, "{}{}", sep, Dec(a.load(Relaxed)))?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// The `transfers` write callback: `1` clears the record and starts it, `0` stops it.
fn set_transfers(_: &LoadTarget, reader: &mut UserSliceReader) -> Result {
    let mut c = [0u8; 1];
    reader.read_slice(&mut c)?;
    reader.skip(reader.len())?;
    match c[0] {
        b'0' => TRACE.on.store(false, Relaxed),
        b'1' => {
            TRACE.on.store(false, Relaxed);
            TRACE.count.store(0, Relaxed);
            for a in [&TRACE.first, &TRACE.stop, &TRACE.woken]
                .into_iter()
                .flatten()
            {
                a.store(0, Relaxed);
            }
            TRACE.on.store(true, Relaxed);
        }
        _ => return Err(EINVAL),
    }
    Ok(())
}

/// Empties the statistics and measures the clock's floor again.
fn reset() {
    for s in [&STATS.address, &STATS.byte, &STATS.stop, &STATS.other] {
        s.reset();
    }
    for a in [
        &STATS.last_stop_ns,
        &STATS.run_ok,
        &STATS.run_failed,
        &STATS.run_start_ns,
        &STATS.run_end_ns,
    ] {
        a.store(0, Relaxed);
    }
    let mut floor = i64::MAX;
    for _ in 0..100 {
        let t = now_ns();
        floor = floor.min(now_ns() - t);
    }
    STATS.clock_ns.store(floor, Relaxed);
}

/// The `stats` read callback.
fn show_stats(_: &LoadTarget, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    STATS.address.show("address", f)?;
    STATS.byte.show("byte", f)?;
    STATS.stop.show("stop", f)?;
    STATS.other.show("other", f)?;
    for (name, a) in [
        ("last_stop_ns", &STATS.last_stop_ns),
        ("run_ok", &STATS.run_ok),
        ("run_failed", &STATS.run_failed),
        ("run_start_ns", &STATS.run_start_ns),
        ("run_end_ns", &STATS.run_end_ns),
        ("clock_ns", &STATS.clock_ns),
    ] {
        writeln!(f, "{} {}", name, Dec(a.load(Relaxed)))?;
    }
    writeln!(f, "bucket_ns {}", 1u32 << BUCKET_SHIFT)
}

/// The `stats` write callback: any write resets.
fn reset_stats(_: &LoadTarget, reader: &mut UserSliceReader) -> Result {
    reader.skip(reader.len())?;
    reset();
    Ok(())
}

/// The value of one hexadecimal digit.
fn hex_digit(c: u8) -> Result<u8> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(EINVAL),
    }
}

/// Parses a decimal number, or a hexadecimal one with `0x`.
fn number(token: Option<&[u8]>) -> Result<u64> {
    let token = token.ok_or(EINVAL)?;
    let (digits, radix) = match token {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (token, 10),
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    digits.iter().try_fold(0u64, |acc, &c| {
        let d = hex_digit(c)?;
        if u64::from(d) >= radix {
            return Err(EINVAL);
        }
        acc.checked_mul(radix)
            .and_then(|v| v.checked_add(d.into()))
            .ok_or(EINVAL)
    })
}

/// A parsed `run` command.
struct Command {
    port: usize,
    addr: u16,
    count: u32,
    gap_ns: i64,
    /// The frames' bytes, one after the other.
    bytes: KVec<u8>,
    /// The end of each frame in `bytes`.
    ends: KVec<usize>,
}

impl Command {
    /// Parses `<port> <addr> <count> <gap_ns> <frame>...`.
    fn parse(text: &[u8]) -> Result<Self> {
        let mut tokens = text
            .split(|c| c.is_ascii_whitespace())
            .filter(|t| !t.is_empty());
        let port = usize::try_from(number(tokens.next())?).map_err(|_| EINVAL)?;
        let addr = u16::try_from(number(tokens.next())?).map_err(|_| EINVAL)?;
        let count = u32::try_from(number(tokens.next())?).map_err(|_| EINVAL)?;
        let gap_ns = i64::try_from(number(tokens.next())?).map_err(|_| EINVAL)?;
        if addr > 0x7f || count > MAX_COUNT {
            return Err(EINVAL);
        }
        let mut bytes = KVec::new();
        let mut ends = KVec::new();
        for frame in tokens {
            if frame.len() % 2 != 0 || frame.len() / 2 > crate::wire::MAX_MSG_LEN {
                return Err(EINVAL);
            }
            for pair in frame.chunks_exact(2) {
                let [hi, lo] = pair else {
                    return Err(EINVAL);
                };
                bytes.push((hex_digit(*hi)? << 4) | hex_digit(*lo)?, GFP_KERNEL)?;
            }
            ends.push(bytes.len(), GFP_KERNEL)?;
        }
        if ends.is_empty() {
            return Err(EINVAL);
        }
        Ok(Self {
            port,
            addr,
            count,
            gap_ns,
            bytes,
            ends,
        })
    }
}

/// The data of the debugfs files: the wire they play into.
///
/// # Invariants
///
/// `wire` points to a pinned [`Wire`] that outlives the files ([`Load`] is dropped first).
struct LoadTarget {
    wire: NonNull<Wire>,
}

// SAFETY: The wire is `Sync` (its state is behind locks) and outlives the files (type
// invariants); the pointer is only read.
unsafe impl Send for LoadTarget {}
// SAFETY: See `Send`.
unsafe impl Sync for LoadTarget {}

impl LoadTarget {
    /// The wire.
    fn wire(&self) -> Pin<&Wire> {
        // SAFETY: By the type invariants the wire is pinned and valid while the files exist,
        // which is while `self` is used.
        unsafe { Pin::new_unchecked(self.wire.as_ref()) }
    }
}

/// Sleeps `wait_ns` (> 0), rounded up to a microsecond, on an hrtimer without slack.
///
/// Never busy-waits, unlike `fsleep()` (a `udelay()` loop up to 10 us): a controller leaves
/// the CPU to others between frames, and a reader on the CPU of the load runs meanwhile. A
/// late wake-up is made up for by the next message, which is due `gap_ns` after the previous
/// one's due time, not after the wake-up.
fn sleep_until_due(wait_ns: i64) {
    let us = Delta::from_nanos(wait_ns).as_micros_ceil();
    let us = kernel::ffi::c_ulong::try_from(us).unwrap_or(kernel::ffi::c_ulong::MAX);
    // SAFETY: `usleep_range_state` may be called from process context with any range; the
    // `run` write callback is process context and holds no lock.
    unsafe { bindings::usleep_range_state(us, us, bindings::TASK_UNINTERRUPTIBLE) };
}

/// The `run` write callback: parses the command and plays it.
fn run(target: &LoadTarget, reader: &mut UserSliceReader) -> Result {
    let len = reader.len();
    if len > MAX_CMD {
        return Err(EINVAL);
    }
    let mut text = KVec::from_elem(0u8, len, GFP_KERNEL)?;
    reader.read_slice(&mut text)?;
    let mut cmd = Command::parse(&text)?;
    let wire = target.wire();

    let start = now_ns();
    STATS.run_start_ns.store(start, Relaxed);
    STATS.run_ok.store(0, Relaxed);
    STATS.run_failed.store(0, Relaxed);
    let mut result = Ok(());
    let mut begin = 0;
    let mut frame = 0;
    for i in 0..cmd.count {
        if current!().signal_pending() {
            result = Err(EINTR);
            break;
        }
        if cmd.gap_ns > 0 {
            let wait = start + i64::from(i) * cmd.gap_ns - now_ns();
            if wait > 0 {
                sleep_until_due(wait);
            }
        }
        let end = cmd.ends.get(frame).copied().unwrap_or(0);
        let Some(bytes) = cmd.bytes.get_mut(begin..end) else {
            return Err(EINVAL);
        };
        let mut raw = bindings::i2c_msg {
            addr: cmd.addr,
            flags: 0,
            // At most `MAX_MSG_LEN` (checked by `parse`).
            len: bytes.len() as u16,
            buf: bytes.as_mut_ptr(),
        };
        // SAFETY: `buf` is valid for reads and writes of `len` bytes (a slice of `cmd.bytes`),
        // which nothing else accesses while `msg` lives.
        let msg = unsafe { Msg::from_raw(&mut raw) };
        let counter = match wire.transfer(cmd.port, core::iter::once(msg)) {
            Ok(_) => &STATS.run_ok,
            Err(_) => &STATS.run_failed,
        };
        counter.store(counter.load(Relaxed) + 1, Relaxed);
        frame += 1;
        begin = end;
        if frame == cmd.ends.len() {
            frame = 0;
            begin = 0;
        }
    }
    STATS.run_end_ns.store(now_ns(), Relaxed);
    result
}

/// The debugfs directory of the load source; dropping it removes the files (and waits for a
/// write in progress).
pub(crate) struct Load {
    _files: Pin<KBox<Scope<LoadTarget>>>,
}

impl Load {
    /// Creates `/sys/kernel/debug/i2c_vbus_load/` for `wire`.
    ///
    /// # Safety
    ///
    /// `wire` must stay pinned and valid until the returned value is dropped.
    pub(crate) unsafe fn new(wire: Pin<&Wire>) -> Result<Self> {
        reset();
        // INVARIANT: The caller keeps the wire valid while the files exist.
        let data = LoadTarget {
            wire: NonNull::from(wire.get_ref()),
        };
        let scope = Scope::dir(Ok::<_, Error>(data), c"i2c_vbus_load", |data, dir| {
            dir.write_only_callback_file(c"run", data, &run);
            dir.read_write_callback_file(c"stats", data, &show_stats, &reset_stats);
            dir.read_write_callback_file(c"transfers", data, &show_transfers, &set_transfers);
        });
        Ok(Self {
            _files: KBox::pin_init(scope, GFP_KERNEL)?,
        })
    }
}
