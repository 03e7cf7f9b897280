// SPDX-License-Identifier: GPL-2.0

//! An `ipmb-dev` client described by firmware properties, as a board's device tree describes one.
//!
//! C headers: [`include/linux/property.h`](srctree/include/linux/property.h),
//! [`include/linux/i2c.h`](srctree/include/linux/i2c.h).
//!
//! `new_device` in sysfs makes clients without firmware properties. The x86 test guest has no
//! device tree, so the module can instead make one client with a software node: properties a
//! driver reads with `device_property_read_*()` exactly as it reads those of a device tree
//! node. The tests use it to compare the drivers on a node with `i2c-protocol`, and to check
//! the firmware contract of the binding on one without it.

use core::ptr::NonNull;
use kernel::{
    bindings,
    error::from_err_ptr,
    prelude::*, //
};

/// The 7-bit address of the client: 0x20 as an 8-bit IPMB address, the BMC's.
const ADDR: u16 = 0x10;

/// The `i2c_board_info` type of the client: the compatible the IPMB drivers match.
const TYPE: &[u8] = b"ipmb-dev";

/// Properties the software node can carry; each is absent unless asked for.
pub(crate) struct Props {
    /// The boolean `i2c-protocol`.
    pub(crate) i2c_protocol: bool,
    /// `max-frame-length`, if not zero.
    pub(crate) max_frame_length: u32,
}

/// An empty inline value of a property entry.
const NO_VALUE: bindings::property_entry__bindgen_ty_1 = bindings::property_entry__bindgen_ty_1 {
    value: bindings::property_entry__bindgen_ty_1__bindgen_ty_1 { u64_data: [0] },
};

/// The entry that ends a property array (no name).
const END: bindings::property_entry = bindings::property_entry {
    name: core::ptr::null(),
    length: 0,
    is_inline: false,
    type_: 0,
    __bindgen_anon_1: NO_VALUE,
};

/// The software node and its properties, at a fixed address while the client uses them.
struct Node {
    props: [bindings::property_entry; 3],
    node: bindings::software_node,
}

/// The client made with a software node.
///
/// # Invariants
///
/// `client` is a registered I2C client whose software node is `node.node`, until drop.
pub(crate) struct FwClient {
    client: NonNull<bindings::i2c_client>,
    // Dropped after `client` is unregistered (`Drop` runs before the fields are dropped).
    _node: KBox<Node>,
}

// SAFETY: The client is only unregistered, once, from whichever thread drops this; the node
// is read by the driver core with its own locking.
unsafe impl Send for FwClient {}
// SAFETY: `&FwClient` gives no access to anything.
unsafe impl Sync for FwClient {}

impl FwClient {
    /// Makes the client on `adap` at [`ADDR`] as an own-target address, with `props`.
    ///
    /// # Safety
    ///
    /// `adap` must be a registered adapter that stays registered until the value is dropped.
    pub(crate) unsafe fn new(adap: *mut bindings::i2c_adapter, props: &Props) -> Result<Self> {
        let mut entries = [END; 3];
        let mut n = 0;
        if props.i2c_protocol {
            entries[n] = bindings::property_entry {
                name: c"i2c-protocol".as_char_ptr(),
                length: 0,
                is_inline: true,
                type_: 0,
                __bindgen_anon_1: NO_VALUE,
            };
            n += 1;
        }
        if props.max_frame_length != 0 {
            entries[n] = bindings::property_entry {
                name: c"max-frame-length".as_char_ptr(),
                length: core::mem::size_of::<u32>(),
                is_inline: true,
                type_: bindings::dev_prop_type_DEV_PROP_U32,
                __bindgen_anon_1: bindings::property_entry__bindgen_ty_1 {
                    value: bindings::property_entry__bindgen_ty_1__bindgen_ty_1 {
                        u32_data: [props.max_frame_length, 0],
                    },
                },
            };
        }
        let mut node = KBox::new(
            Node {
                props: entries,
                node: bindings::software_node {
                    name: c"ipmb-vbus-fw".as_char_ptr(),
                    parent: core::ptr::null(),
                    properties: core::ptr::null(),
                },
            },
            GFP_KERNEL,
        )?;
        // The array ends with an `END` entry: at most two of the three are filled in.
        node.node.properties = node.props.as_ptr();
        let mut info = bindings::i2c_board_info::default();
        for (dst, src) in info.type_.iter_mut().zip(TYPE) {
            *dst = *src;
        }
        info.flags = bindings::I2C_CLIENT_SLAVE as u16;
        info.addr = ADDR;
        info.swnode = &node.node;
        // SAFETY: `adap` is registered (function requirements); `info` is valid for the call,
        // and the software node it points to lives in `node`, which outlives the client.
        let client = from_err_ptr(unsafe { bindings::i2c_new_client_device(adap, &info) })?;
        let client = NonNull::new(client).ok_or(EINVAL)?;
        // INVARIANT: the client is registered with `node.node` as its software node.
        Ok(Self {
            client,
            _node: node,
        })
    }
}

impl Drop for FwClient {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the client is registered; it is unregistered once,
        // which also releases its software node.
        unsafe { bindings::i2c_unregister_device(self.client.as_ptr()) };
    }
}
