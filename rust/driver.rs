// SPDX-License-Identifier: GPL-2.0

//! The `ipmb-dev` I2C driver: probe, the target backend, and `/dev/ipmb-N`.
//!
//! Execution contexts and locking:
//!
//! - The target callback ([`Shared::rx_event`]) runs in the I2C controller's interrupt
//!   handler. It takes only `Shared::rx`, an IRQ-saving spinlock, never sleeps or allocates,
//!   and wakes readers after dropping the lock.
//! - `read`, `write` and `poll` run in process context. `read` waits on `Shared::wait` with
//!   `rx` released while asleep. `write` holds `Shared::tx` (a mutex) across the I2C transfer
//!   and its retries, which serialises transmissions and lets unbind wait for the one in
//!   flight; `rx` is taken only briefly, to count, and never while `tx` is being acquired.
//! - Unbind marks the state dead, wakes every reader, waits for a transmission in flight,
//!   then unregisters the target, the character device and the sysfs group. Open files keep
//!   the shared state (an `Arc`) alive and get `ENODEV` from then on.

use kernel::{
    acpi, bindings,
    device::Core,
    error::to_result,
    ffi::{
        c_int,
        c_void, //
    },
    fs::{
        file::flags::O_NONBLOCK,
        File, //
    },
    i2c, ioctl, new_mutex, new_poll_condvar, of,
    prelude::*,
    str::CStr,
    sync::{
        poll::{
            PollCondVar,
            PollTable, //
        },
        Arc,
        Mutex, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};

use crate::{
    assembler::{
        Action,
        Assembler,
        Event,
        READ_FILL, //
    },
    frame,
    irq_lock::{
        new_irq_spinlock,
        IrqSpinLock, //
    },
    miscdev,
    ring::FrameRing,
    stats::Counters,
    sysfs,
    target,
    uapi, //
};

/// The largest frame any instance accepts (the in-tree C driver's limit), address included.
pub(crate) const MAX_LEN_LIMIT: usize = 240;

const EPOLLIN: u32 = 0x0001;
const EPOLLOUT: u32 = 0x0004;
const EPOLLERR: u32 = 0x0008;
const EPOLLHUP: u32 = 0x0010;

/// Receive-side state, shared with the target callback.
struct RxState {
    asm: Assembler<MAX_LEN_LIMIT>,
    ring: FrameRing<Storage>,
    counters: Counters,
    /// The device is unbound: readers get `ENODEV`.
    dead: bool,
}

/// The receive ring's storage, allocated once at probe.
struct Storage(KVVec<u8>);

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
    /// Sends `bytes` to the 7-bit address `addr` as one plain I2C write.
    fn write(&self, addr: u8, bytes: &[u8]) -> Result {
        let mut buf = [0u8; MAX_LEN_LIMIT];
        let data = buf.get_mut(..bytes.len()).ok_or(EINVAL)?;
        data.copy_from_slice(bytes);
        // SAFETY: By the type invariants the client is valid.
        let (adapter, flags) = unsafe { ((*self.0).adapter, (*self.0).flags) };
        let mut msg = bindings::i2c_msg {
            addr: u16::from(addr),
            flags: (flags & bindings::I2C_CLIENT_PEC as u16),
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
}

impl Client {
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
        // SAFETY: By the type invariants the client is valid.
        let (adapter, flags) = unsafe { ((*self.0).adapter, (*self.0).flags) };
        // SAFETY: `adapter` is the valid adapter of a bound client; `data` lives across the call.
        let ret = unsafe {
            bindings::i2c_smbus_xfer(
                adapter,
                u16::from(frame[frame::DEST_SA] >> 1),
                flags & bindings::I2C_CLIENT_PEC as u16,
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
    rx: IrqSpinLock<RxState>,
    #[pin]
    wait: PollCondVar,
    #[pin]
    tx: Mutex<TxState>,
    max_len: usize,
    retries: u32,
    smbus: bool,
    info: uapi::Info,
}

/// Probe-time configuration of an instance.
struct Config {
    adapter: u32,
    addr: u8,
    max_len: usize,
    queue_len: usize,
    retries: u32,
    smbus: bool,
}

impl Shared {
    /// Creates the state of an instance; `client` is `None` only in tests (nothing is sent).
    fn new(cfg: &Config, client: Option<Client>) -> Result<Arc<Self>> {
        let storage = Storage(KVVec::from_elem(
            0u8,
            FrameRing::<Storage>::storage_len(cfg.queue_len, cfg.max_len),
            GFP_KERNEL,
        )?);
        let ring = FrameRing::new(storage, cfg.queue_len, cfg.max_len).ok_or(EINVAL)?;
        let rx = RxState {
            asm: Assembler::new(cfg.addr, cfg.max_len),
            ring,
            counters: Counters::default(),
            dead: false,
        };
        Arc::pin_init(
            try_pin_init!(Self {
                rx <- new_irq_spinlock!(rx, c"Shared::rx"),
                wait <- new_poll_condvar!("Shared::wait"),
                tx <- new_mutex!(TxState { client }, "Shared::tx"),
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
                    reserved: [0; 5],
                },
            }),
            GFP_KERNEL,
        )
    }

    /// Handles one target event (interrupt context); see [`target::Target::event`].
    fn rx_event(&self, ev: Event) -> Result<u8> {
        let mut queued = false;
        let ret = {
            let mut guard = self.rx.lock();
            let st = &mut *guard;
            match st.asm.event(ev) {
                Action::None => Ok(READ_FILL),
                // Any error NAKs the byte; the frame is counted as too long at its end.
                Action::Nak => Err(EINVAL),
                Action::ReadByte(b) => Ok(b),
                Action::Frame(f) => {
                    match st.ring.push(f) {
                        Ok(()) => {
                            st.counters.rx_frames += 1;
                            queued = true;
                        }
                        Err(_) => st.counters.rx_overflow += 1,
                    }
                    Ok(READ_FILL)
                }
                Action::Dropped(e) => {
                    st.counters.count_rx_drop(e);
                    Ok(READ_FILL)
                }
            }
        };
        // Wake readers only once the lock is released.
        if queued {
            self.wait.notify_all();
        }
        ret
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.rx.lock().counters);
    }

    /// Sends one frame (destination address first), retrying NAKs and arbitration losses.
    fn send(&self, frame: &[u8]) -> Result {
        let tx = self.tx.lock();
        let client = tx.client.as_ref().ok_or(ENODEV)?;
        let mut attempt = 0;
        loop {
            let sent = if self.smbus {
                client.smbus_block_write(frame)
            } else {
                client.write(frame[frame::DEST_SA] >> 1, &frame[1..])
            };
            match sent {
                Ok(()) => {
                    self.count(|c| c.tx_frames += 1);
                    return Ok(());
                }
                Err(e) if is_retryable(e) && attempt < self.retries => {
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

    fn invalid(&self) -> Error {
        self.count(|c| c.tx_invalid += 1);
        EINVAL
    }

    fn kill(&self) {
        self.rx.lock().dead = true;
        self.wait.notify_all();
        // Waits for a transmission in flight; none can start afterwards.
        self.tx.lock().client = None;
    }
}

/// A uapi structure on its way to userspace.
#[repr(transparent)]
struct IoctlOut<T>(T);

// SAFETY: `uapi::Info` is `#[repr(C)]` with integer fields only and, as `rust/uapi.rs` asserts
// at compile time, no padding: every byte is initialised.
unsafe impl AsBytes for IoctlOut<uapi::Info> {}
// SAFETY: `uapi::Stats` is `#[repr(C)]` with `u64` fields only, no padding (asserted likewise).
unsafe impl AsBytes for IoctlOut<uapi::Stats> {}

/// NAK (address or data) and arbitration loss: the conditions worth another try.
fn is_retryable(e: Error) -> bool {
    e == ENXIO || e == EIO || e == EAGAIN
}

impl miscdev::MiscFile for Shared {
    fn read(&self, file: &File, mut buf: UserSliceWriter) -> Result<usize> {
        let mut out = [0u8; 1 + MAX_LEN_LIMIT];
        let n = {
            let mut guard = self.rx.lock();
            loop {
                if guard.dead {
                    return Err(ENODEV);
                }
                if let Some(n) = guard.ring.pop_into(&mut out[1..]) {
                    break n;
                }
                if file.flags() & O_NONBLOCK != 0 {
                    return Err(EAGAIN);
                }
                if self.wait.wait_interruptible(&mut guard) {
                    return Err(ERESTARTSYS);
                }
            }
        };
        // The length byte counts every byte after itself; frames are at most 240 bytes.
        out[0] = n as u8;
        let count = buf.len().min(n + 1);
        if let Err(e) = buf.write_slice(&out[..count]) {
            // The reader did not get the frame: put it back at the head for the next one.
            let mut guard = self.rx.lock();
            if guard.ring.push_front(&out[1..=n]).is_err() {
                guard.counters.rx_overflow += 1;
            }
            drop(guard);
            self.wait.notify_all();
            return Err(e);
        }
        Ok(count)
    }

    fn write(&self, _file: &File, mut buf: UserSliceReader) -> Result<usize> {
        let count = buf.len();
        let mut msg = [0u8; 1 + MAX_LEN_LIMIT];
        if count == 0 || count > msg.len() {
            return Err(self.invalid());
        }
        buf.read_slice(&mut msg[..count])?;
        let len = usize::from(msg[0]);
        if len < frame::MIN_REQUEST_LEN || count < len + 1 {
            return Err(self.invalid());
        }
        let frame = &msg[1..=len];
        if frame::validate(frame, self.max_len).is_err() {
            return Err(self.invalid());
        }
        self.send(frame)?;
        Ok(count)
    }

    fn ioctl(&self, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let mut out = UserSlice::new(UserPtr::from_addr(arg), ioctl::_IOC_SIZE(cmd)).writer();
        match cmd {
            uapi::IOC_INFO => {
                if self.rx.lock().dead {
                    return Err(ENODEV);
                }
                out.write(&IoctlOut(self.info))?;
            }
            uapi::IOC_STATS => {
                let stats = {
                    let guard = self.rx.lock();
                    uapi::Stats {
                        counters: guard.counters.values(),
                        rx_queued: guard.ring.len() as u64,
                        reserved: [0; 4],
                    }
                };
                out.write(&IoctlOut(stats))?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        table.register_wait(file, &self.wait);
        let guard = self.rx.lock();
        let mut mask = EPOLLOUT;
        if !guard.ring.is_empty() {
            mask |= EPOLLIN;
        }
        if guard.dead {
            mask |= EPOLLIN | EPOLLHUP | EPOLLERR;
        }
        mask
    }
}

/// One bound instance: the driver data of its I2C client.
///
/// Fields drop in order: the target backend first (no more interrupts), then the character
/// device and the sysfs group, then the shared state (freed when the last file closes).
#[pin_data(PinnedDrop)]
pub(crate) struct Ipmb {
    target: target::Registration<Ipmb>,
    #[pin]
    misc: miscdev::Registration<Shared>,
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
    let counters = ipmb.shared.rx.lock().counters;
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

/// Reads the instance configuration from the module parameters and firmware properties.
fn config(client: *mut bindings::i2c_client) -> Result<Config> {
    let max_len = *crate::module_parameters::max_frame_len.value() as usize;
    let mut prop: u32 = 0;
    // SAFETY: `client` is valid during probe; the property name is a static C string and
    // `prop` is valid for one `u32`.
    let has_prop = unsafe {
        bindings::device_property_read_u32_array(
            &raw mut (*client).dev,
            c"max-frame-length".as_char_ptr(),
            &mut prop,
            1,
        )
    } == 0;
    let max_len = if has_prop { prop as usize } else { max_len };
    if !(frame::MIN_RESPONSE_LEN..=MAX_LEN_LIMIT).contains(&max_len) {
        return Err(EINVAL);
    }
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
        let n = s.rx.lock().ring.pop_into(&mut out)?;
        Some((out, n))
    }

    #[test]
    fn frames_queued_in_order() -> Result {
        let s = shared(8)?;
        for seq in 0..5 {
            deliver(&s, &response(seq)?.0)?;
        }
        assert_eq!(s.rx.lock().counters.rx_frames, 5);
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
        let c = s.rx.lock().counters;
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
        let c = s.rx.lock().counters;
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
        assert_eq!(s.rx.lock().counters.rx_too_long, 1);
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
        assert!(s.send(&f[..n]) == Err(ENODEV));
        assert_eq!(s.rx.lock().counters.tx_frames, 0);
        Ok(())
    }
}
