// SPDX-License-Identifier: GPL-2.0

//! The `ipmb-dev` I2C driver: device tables, probe, the instance configuration, and the
//! driver data that ties an instance to its target backend, `/dev/ipmb-N` and the
//! `statistics/` sysfs group.

use core::sync::atomic::{
    AtomicU64,
    Ordering, //
};
use kernel::{
    acpi,
    device::Core,
    i2c,
    of,
    prelude::*,
    str::CStr,
    sync::Arc, //
};

use crate::{
    abstractions::{
        i2c::{
            self as i2c_client,
            Client, //
        },
        i2c_target,
        miscdev,
        sysfs, //
    },
    chardev::OpenFile,
    instance::{
        Config,
        Instance,
        MAX_LEN_LIMIT, //
    },
    proto::{
        assembler::Event,
        frame,
        stats::NAMES, //
    },
    uapi,
};

/// One bound instance: the driver data of its I2C client.
///
/// Built by probe in this order, so that each part goes live only once what it uses is ready:
/// the instance, the teardown guard, the adapter claim, the sysfs group, the target backend
/// and last `/dev/ipmb-N` (no file can be opened before everything behind it works). If a
/// step fails, the parts built so far are dropped in reverse order and the guard kills the
/// instance. On unbind, [`IpmbDriver::unbind`] takes the parts down while the driver data is
/// still alive and shared; dropping it afterwards finds nothing left to do.
#[pin_data]
pub(crate) struct Ipmb {
    instance: Arc<Instance>,
    _alive: Alive,
    _claim: AdapterClaim,
    stats: sysfs::Registration<Ipmb, { NAMES.len() }>,
    target: i2c_target::Registration<Ipmb>,
    #[pin]
    misc: miscdev::Registration<OpenFile>,
}

impl Ipmb {
    /// Stops everything that reaches the driver data or the client, in order: no new file, no
    /// more interrupts, the instance dead (waiters woken with `ENODEV`, the transmission in
    /// flight waited for), no sysfs reader. Idempotent.
    fn teardown(&self) {
        self.misc.deregister();
        self.target.unregister();
        self.instance.kill();
        self.stats.remove();
    }
}

impl i2c_target::Target for Ipmb {
    #[inline]
    fn event(&self, ev: Event) -> Result<u8> {
        self.instance.rx_event(ev)
    }
}

/// The `statistics/` group: one read-only file per counter.
impl sysfs::Group<{ NAMES.len() }> for Ipmb {
    const NAME: &'static CStr = c"statistics";
    const ATTRS: &'static [&'static CStr] = NAMES;

    fn show(&self, index: usize) -> u64 {
        let counters = self.instance.rx.lock().st.counters;
        counters.values().get(index).copied().unwrap_or(0)
    }
}

/// Kills its instance when dropped: on every failed probe after the instance exists, as on
/// unbind.
struct Alive(Arc<Instance>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// Adapters with an instance of this driver, one bit per adapter number below
/// [`CLAIMABLE`]: `/dev/ipmb-<nr>` can exist once.
static CLAIMED: [AtomicU64; CLAIMABLE / 64] = [const { AtomicU64::new(0) }; CLAIMABLE / 64];
/// Adapter numbers [`CLAIMED`] covers. Numbers are allocated lowest first, so higher ones
/// need thousands of adapters; for those, `misc_register` refusing the duplicate name
/// (`EEXIST`) is the only check.
const CLAIMABLE: usize = 4096;

/// This driver's claim on an adapter, released on drop.
///
/// # Invariants
///
/// If `bit` is `Some((word, mask))`, this value set `mask` in `CLAIMED[word]`, and nothing
/// else clears it.
struct AdapterClaim {
    bit: Option<(usize, u64)>,
}

impl AdapterClaim {
    /// Claims adapter `nr`: `EBUSY` if an instance of this driver already has it.
    ///
    /// An atomic test-and-set, so two probes on one adapter cannot both win, and nothing of
    /// another device is read (its driver may be unbinding).
    fn new(nr: i32) -> Result<Self> {
        let Some((word, mask)) = usize::try_from(nr)
            .ok()
            .filter(|n| *n < CLAIMABLE)
            .map(|n| (n / 64, 1u64 << (n % 64)))
        else {
            return Ok(Self { bit: None });
        };
        let slot = CLAIMED.get(word).ok_or(EINVAL)?;
        if slot.fetch_or(mask, Ordering::AcqRel) & mask != 0 {
            return Err(EBUSY);
        }
        // INVARIANT: this call set the bit.
        Ok(Self {
            bit: Some((word, mask)),
        })
    }
}

impl Drop for AdapterClaim {
    fn drop(&mut self) {
        if let Some((word, mask)) = self.bit {
            if let Some(slot) = CLAIMED.get(word) {
                slot.fetch_and(!mask, Ordering::AcqRel);
            }
        }
    }
}

/// The most resends of a frame after a NAK or an arbitration loss (`tx_retries`), as for
/// requests (`max-retries`): with the back-off, a frame gives up within about 0.2 s. A send
/// stops retrying once the instance is dead, so unbind waits for one transfer, not for all.
const MAX_TX_RETRIES: u32 = 15;

/// Reads the instance configuration from the module parameters and firmware properties.
fn config(client: &i2c::I2cClient<Core<'_>>) -> Result<Config> {
    let dev = client.as_ref();
    let fwnode = dev.fwnode();
    let prop = |name: &'static CStr| -> Option<u32> {
        fwnode.and_then(|fw| fw.property_read::<u32>(name).optional())
    };
    let max_len = prop(c"max-frame-length")
        .unwrap_or(*crate::module_parameters::max_frame_len.value()) as usize;
    if !(frame::MIN_RESPONSE_LEN..=MAX_LEN_LIMIT).contains(&max_len) {
        return Err(EINVAL);
    }
    let req_timeout_ms =
        prop(c"retry-time").unwrap_or(*crate::module_parameters::req_timeout_ms.value());
    if !(1..=uapi::MAX_TIMEOUT_MS).contains(&req_timeout_ms) {
        return Err(EINVAL);
    }
    let req_retries =
        prop(c"max-retries").unwrap_or(*crate::module_parameters::req_retries.value());
    let req_retries = u8::try_from(req_retries)
        .ok()
        .filter(|r| *r <= uapi::MAX_RETRIES)
        .ok_or(EINVAL)?;
    let queue_len = *crate::module_parameters::queue_len.value() as usize;
    if !(1..=4096).contains(&queue_len) {
        return Err(EINVAL);
    }
    let retries = *crate::module_parameters::tx_retries.value();
    if retries > MAX_TX_RETRIES {
        return Err(EINVAL);
    }
    let smbus = match fwnode {
        // A firmware description (device tree, ACPI, software node) follows the binding:
        // without `i2c-protocol`, SMBus block writes, as ipmb_dev_int does.
        Some(fw) => !fw.property_read_bool(c"i2c-protocol"),
        // A client made through sysfs `new_device` has no firmware contract: plain I2C (IPMB
        // on the wire) unless the parameter asks for SMBus.
        None => *crate::module_parameters::smbus_block_write.value() != 0,
    };
    let addr7 = i2c_client::address(client);
    let adapter = i2c_client::adapter_nr(client);
    Ok(Config {
        adapter: u32::try_from(adapter).map_err(|_| EINVAL)?,
        // The 8-bit IPMB address; I2C 7-bit addresses fit after the shift.
        addr: ((addr7 & 0x7f) << 1) as u8,
        max_len,
        queue_len,
        retries,
        smbus,
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
        let dev = idev.as_ref();
        let nr = i2c_client::adapter_nr(idev);
        // SAFETY: The client is bound while probe runs; the teardown (`Instance::kill`, from
        // `unbind` or from `Alive` on a failed probe) drops the `Client` under the `tx` mutex
        // before the client is unbound.
        let client = unsafe { Client::new(idev) };
        let state = config(idev)
            .inspect_err(|_| dev_err!(dev, "invalid configuration (see the parameters)\n"))
            .and_then(|cfg| Instance::new(&cfg, Some(client)));
        let name = miscdev::name(format_args!("ipmb-{nr}"));
        try_pin_init!(Ipmb {
            instance: state?,
            _alive: Alive(instance.clone()),
            _claim: AdapterClaim::new(nr).inspect_err(|_| {
                dev_err!(dev, "/dev/ipmb-{nr} already exists: one instance per adapter\n")
            })?,
            // SAFETY: The client device outlives its driver data, which owns the group; the
            // driver data is null or this `Ipmb` stored by the driver core, and `unbind`
            // removes the group before the driver core drops it.
            stats: unsafe { sysfs::Registration::add(dev) }?,
            // SAFETY: The client outlives its driver data, which owns the registration; the
            // driver data is null or this `Ipmb` stored by the driver core, and `unbind`
            // unregisters the backend before the driver core drops it.
            target: unsafe { i2c_target::Registration::register(idev) }.inspect_err(|e| {
                dev_err!(dev, "adapter {nr}: target registration failed: {}\n", e.to_errno());
            })?,
            // Last: no file can be opened before everything behind it works.
            misc <- miscdev::Registration::register(name?, 0o600, dev, instance.clone()),
        })
        .pin_chain(move |_| {
            dev_info!(dev, "/dev/ipmb-{nr} ready\n");
            Ok(())
        })
    }

    fn unbind<'bound>(_idev: &'bound i2c::I2cClient<Core<'_>>, this: Pin<&Ipmb>) {
        this.teardown();
    }
}
