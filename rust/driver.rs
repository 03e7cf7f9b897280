// SPDX-License-Identifier: GPL-2.0

//! The `ipmb-dev` I2C driver: device tables, probe, the instance configuration, and the
//! driver data that ties an instance to its target backend, `/dev/ipmb-N` and the
//! `statistics/` sysfs group.

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
/// Fields drop in order: the target backend first (no more interrupts), then the character
/// device and the sysfs group, then the instance (freed when the last file closes).
#[pin_data(PinnedDrop)]
pub(crate) struct Ipmb {
    target: i2c_target::Registration<Ipmb>,
    #[pin]
    misc: miscdev::Registration<OpenFile>,
    stats: sysfs::Registration<Ipmb, { NAMES.len() }>,
    instance: Arc<Instance>,
}

impl i2c_target::Target for Ipmb {
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

#[pinned_drop]
impl PinnedDrop for Ipmb {
    fn drop(self: Pin<&mut Self>) {
        self.instance.kill();
    }
}

/// Driver names whose instances own `/dev/ipmb-<adapter nr>`: ours and the in-tree C driver.
const IPMB_DRIVERS: [&CStr; 2] = [c"ipmb", c"ipmb-dev"];

/// Reads the instance configuration from the module parameters and firmware properties.
fn config(client: &i2c::I2cClient<Core<'_>>) -> Result<Config> {
    let max_len = i2c_client::property_u32(client, c"max-frame-length")
        .unwrap_or(*crate::module_parameters::max_frame_len.value()) as usize;
    if !(frame::MIN_RESPONSE_LEN..=MAX_LEN_LIMIT).contains(&max_len) {
        return Err(EINVAL);
    }
    let req_timeout_ms = i2c_client::property_u32(client, c"retry-time")
        .unwrap_or(*crate::module_parameters::req_timeout_ms.value());
    if !(1..=uapi::MAX_TIMEOUT_MS).contains(&req_timeout_ms) {
        return Err(EINVAL);
    }
    let req_retries = i2c_client::property_u32(client, c"max-retries")
        .unwrap_or(*crate::module_parameters::req_retries.value());
    let req_retries = u8::try_from(req_retries)
        .ok()
        .filter(|r| *r <= uapi::MAX_RETRIES)
        .ok_or(EINVAL)?;
    let queue_len = *crate::module_parameters::queue_len.value() as usize;
    if !(1..=4096).contains(&queue_len) {
        return Err(EINVAL);
    }
    let smbus_prop = i2c_client::property_bool(client, c"smbus-block-write");
    let addr7 = i2c_client::address(client);
    let adapter = i2c_client::adapter_nr(client);
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
        let dev = idev.as_ref();
        let nr = i2c_client::adapter_nr(idev);
        let state = if i2c_client::other_client_bound_to(idev, &IPMB_DRIVERS) {
            dev_err!(
                dev,
                "/dev/ipmb-{nr} already exists: one instance per adapter\n"
            );
            Err(EBUSY)
        } else {
            // SAFETY: The client is bound while probe runs; unbind (`Instance::kill`, from
            // `Ipmb`'s drop) drops the `Client` under the `tx` mutex before it goes away.
            let client = unsafe { Client::new(idev) };
            config(idev).and_then(|cfg| Instance::new(&cfg, Some(client)))
        };
        let name = miscdev::name(format_args!("ipmb-{nr}"));
        try_pin_init!(&this in Ipmb {
            instance: state?,
            // SAFETY: The client device outlives its driver data, which owns the group; its
            // driver data is null or this `Ipmb` (set by the target registration below).
            stats: unsafe { sysfs::Registration::add(dev) }?,
            misc <- miscdev::Registration::register(name?, 0o600, dev, instance.clone()),
            // Last: the target goes live only once everything it touches is ready.
            // SAFETY: The client outlives its driver data; the driver core stores `this`
            // (the address of the `Ipmb` being built) as driver data after probe.
            target: unsafe { i2c_target::Registration::register(idev, this.as_ptr()) }
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
