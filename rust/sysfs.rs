// SPDX-License-Identifier: GPL-2.0

//! The `statistics/` attribute group on the I2C client: one read-only file per counter.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h).

use kernel::{
    bindings,
    error::to_result,
    ffi::c_char,
    prelude::*,
    str::{
        as_char_ptr_in_const_context,
        CStr, //
    },
};

use crate::stats::NAMES;

const N: usize = NAMES.len();

/// C attribute structures in statics (they hold pointers, so they are not `Sync` themselves).
#[repr(transparent)]
struct Sync<T>(T);
// SAFETY: The wrapped tables are never written after initialisation.
unsafe impl<T> core::marker::Sync for Sync<T> {}

static ATTRS: Sync<[bindings::device_attribute; N]> = {
    // SAFETY: All zeroes is a valid `device_attribute` (no name, no callbacks).
    let mut a: [bindings::device_attribute; N] = unsafe { core::mem::zeroed() };
    let mut i = 0;
    while i < N {
        a[i].attr.name = as_char_ptr_in_const_context(NAMES[i]);
        a[i].attr.mode = 0o444;
        a[i].__bindgen_anon_1.show = Some(show);
        i += 1;
    }
    Sync(a)
};

static ATTR_PTRS: Sync<[*mut bindings::attribute; N + 1]> = {
    let mut p = [core::ptr::null_mut(); N + 1];
    let mut i = 0;
    while i < N {
        p[i] = (&raw const ATTRS.0[i].attr).cast_mut();
        i += 1;
    }
    Sync(p)
};

static GROUP: Sync<bindings::attribute_group> = Sync(bindings::attribute_group {
    name: as_char_ptr_in_const_context(c"statistics"),
    __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
        attrs: (&raw const ATTR_PTRS.0).cast_mut().cast(),
    },
    // SAFETY: All zeroes is valid for the remaining fields (absent callbacks and lists).
    ..unsafe { core::mem::zeroed() }
});

static GROUPS: Sync<[*const bindings::attribute_group; 2]> =
    Sync([&raw const GROUP.0, core::ptr::null()]);

/// Shows one counter.
///
/// # Safety
///
/// Called by sysfs with a valid device, one of [`ATTRS`], and a page-sized buffer.
unsafe extern "C" fn show(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `attr` is one of `ATTRS`, whose names are static C strings.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name.cast()) };
    let Some(index) = NAMES.iter().position(|n| n.to_bytes() == name.to_bytes()) else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: `dev` is valid for the duration of the call.
    let Some(counters) = (unsafe { crate::driver::counters_of(dev) }) else {
        return ENODEV.to_errno() as isize;
    };
    let value: u64 = counters.values()[index];
    // SAFETY: `buf` is a page-sized sysfs buffer; the format consumes one `u64`.
    unsafe { bindings::sysfs_emit(buf, c"%llu\n".as_char_ptr(), value) as isize }
}

/// The attribute group, added to a device; removed on drop.
///
/// # Invariants
///
/// `dev` is a valid device with [`GROUP`] added, which outlives `self`.
pub(crate) struct Registration {
    dev: *mut bindings::device,
}

// SAFETY: `device_remove_group` may be called from any thread.
unsafe impl Send for Registration {}
// SAFETY: No `&self` methods.
unsafe impl core::marker::Sync for Registration {}

impl Registration {
    /// Adds the group to `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must stay valid until the registration is dropped.
    pub(crate) unsafe fn add(dev: *mut bindings::device) -> Result<Self> {
        // SAFETY: `dev` is valid; `GROUP` is static.
        to_result(unsafe { bindings::device_add_groups(dev, GROUPS.0.as_ptr().cast_mut()) })?;
        // INVARIANT: the group is added to a device that outlives `self`.
        Ok(Self { dev })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the group was added to this valid device. Removal
        // waits for `show` calls in progress.
        unsafe { bindings::device_remove_groups(self.dev, GROUPS.0.as_ptr().cast_mut()) };
    }
}
