// SPDX-License-Identifier: GPL-2.0

//! A read-only sysfs attribute group on a device, whose values come from the device's driver
//! data.
//!
//! C header: [`include/linux/sysfs.h`](srctree/include/linux/sysfs.h).
//!
//! The 7.2 `kernel` crate has no device attributes; this is the smallest abstraction the driver
//! needs: one group of `N` files, each showing one `u64`. The C tables are built at compile
//! time from the [`Group`] implementation, like the `file_operations` of
//! `kernel::miscdevice`.

use core::{
    marker::PhantomData,
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};
use kernel::{
    bindings,
    device::Device,
    error::to_result,
    ffi::c_char,
    prelude::*,
    str::{
        as_char_ptr_in_const_context,
        CStr, //
    },
};

/// A group of `N` read-only `u64` attributes, implemented by the driver data of the devices
/// that carry it.
pub(crate) trait Group<const N: usize>: Sized + 'static {
    /// The name of the group's directory.
    const NAME: &'static CStr;
    /// The names of the `N` attribute files, in order.
    const ATTRS: &'static [&'static CStr];
    /// Returns the value of attribute `index` (below `N`).
    fn show(&self, index: usize) -> u64;
}

/// The attribute pointers of a group with their NULL terminator (a C array of `N + 1`).
#[repr(C)]
struct AttrPtrs<const N: usize> {
    attrs: [*mut bindings::attribute; N],
    end: *mut bindings::attribute,
}

/// The C tables of `T`'s group.
struct Tables<T, const N: usize>(PhantomData<T>);

impl<T: Group<N>, const N: usize> Tables<T, N> {
    const ATTRS: &'static [bindings::device_attribute; N] = &{
        // SAFETY: All zeroes is a valid `device_attribute` (no name, no callbacks).
        let mut a: [bindings::device_attribute; N] = unsafe { core::mem::zeroed() };
        let mut i = 0;
        while i < N {
            a[i].attr.name = as_char_ptr_in_const_context(T::ATTRS[i]);
            a[i].attr.mode = 0o444;
            a[i].__bindgen_anon_1.show = Some(show::<T, N>);
            i += 1;
        }
        a
    };

    const ATTR_PTRS: &'static AttrPtrs<N> = &{
        let mut p = AttrPtrs {
            attrs: [core::ptr::null_mut(); N],
            end: core::ptr::null_mut(),
        };
        let mut i = 0;
        while i < N {
            p.attrs[i] = (&raw const Self::ATTRS[i].attr).cast_mut();
            i += 1;
        }
        p
    };

    const GROUP: &'static bindings::attribute_group = &bindings::attribute_group {
        name: as_char_ptr_in_const_context(T::NAME),
        __bindgen_anon_2: bindings::attribute_group__bindgen_ty_2 {
            attrs: (&raw const *Self::ATTR_PTRS).cast_mut().cast(),
        },
        // SAFETY: All zeroes is valid for the remaining fields (absent callbacks and lists).
        ..unsafe { core::mem::zeroed() }
    };

    const GROUPS: &'static [*const bindings::attribute_group; 2] =
        &[core::ptr::from_ref(Self::GROUP), core::ptr::null()];
}

/// Shows one attribute.
///
/// # Safety
///
/// Called by sysfs with a valid device carrying the group of `T` added by
/// [`Registration::add`], one of that group's attributes, and a page-sized buffer.
unsafe extern "C" fn show<T: Group<N>, const N: usize>(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut c_char,
) -> isize {
    // SAFETY: `attr` is one of the group's attributes, whose names are static C strings.
    let name = unsafe { CStr::from_char_ptr((*attr).attr.name.cast()) };
    let Some(index) = T::ATTRS
        .iter()
        .take(N)
        .position(|n| n.to_bytes() == name.to_bytes())
    else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: `dev` is valid for the duration of the call.
    let data = unsafe { bindings::dev_get_drvdata(dev) };
    if data.is_null() {
        return ENODEV.to_errno() as isize;
    }
    // SAFETY: By `Registration::add`'s requirements, non-null driver data of a device carrying
    // the group is a `T` stored by the driver core, fully initialised, and neither dropped nor
    // mutably borrowed while the group is added (removal waits for `show` calls).
    let value = unsafe { &*data.cast::<T>() }.show(index);
    // SAFETY: `buf` is a page-sized sysfs buffer; the format consumes one `u64`.
    unsafe { bindings::sysfs_emit(buf, c"%llu\n".as_char_ptr(), value) as isize }
}

/// The attribute group of `T`, added to a device; removed by [`Self::remove`] or on drop,
/// whichever comes first.
///
/// # Invariants
///
/// `dev` is a valid device that outlives `self`. While `added` is true, the group of `T` is
/// added to it.
pub(crate) struct Registration<T: Group<N>, const N: usize> {
    dev: *mut bindings::device,
    added: AtomicBool,
    _t: PhantomData<T>,
}

// SAFETY: `device_remove_groups` may be called from any thread.
unsafe impl<T: Group<N>, const N: usize> Send for Registration<T, N> {}
// SAFETY: The only `&self` method, `remove`, is made idempotent and race-free by the atomic
// flag.
unsafe impl<T: Group<N>, const N: usize> Sync for Registration<T, N> {}

impl<T: Group<N>, const N: usize> Registration<T, N> {
    /// Adds the group of `T` to `dev`.
    ///
    /// # Safety
    ///
    /// - `dev` must stay valid until the registration is dropped.
    /// - The driver data of `dev` must be null or a `T` stored by the kernel crate's driver
    ///   core, which is not dropped or borrowed mutably while the group is added: the driver
    ///   removes the group (from its `unbind`, or by dropping the registration) first.
    pub(crate) unsafe fn add(dev: &Device) -> Result<Self> {
        // `Device` is a `#[repr(transparent)]` wrapper of `Opaque<struct device>`.
        let dev = core::ptr::from_ref(dev)
            .cast_mut()
            .cast::<bindings::device>();
        // SAFETY: `dev` is valid; the group tables are constants with static storage.
        to_result(unsafe { bindings::device_add_groups(dev, Tables::<T, N>::GROUPS.as_ptr()) })?;
        // INVARIANT: the group is added to a device that outlives `self`.
        Ok(Self {
            dev,
            added: AtomicBool::new(true),
            _t: PhantomData,
        })
    }

    /// Removes the group, if it still is added. Removal waits for `show` calls in progress.
    pub(crate) fn remove(&self) {
        if self.added.swap(false, Ordering::AcqRel) {
            // SAFETY: By the type invariants the group was added to this valid device, and
            // the flag lets only one caller get here.
            unsafe { bindings::device_remove_groups(self.dev, Tables::<T, N>::GROUPS.as_ptr()) };
        }
    }
}

impl<T: Group<N>, const N: usize> Drop for Registration<T, N> {
    fn drop(&mut self) {
        self.remove();
    }
}
