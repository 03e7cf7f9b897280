// SPDX-License-Identifier: GPL-2.0

//! A misc character device with `read`, `write` and `poll`, bound to shared per-device state.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h).
//!
//! The 7.2 `kernel::miscdevice` has no `poll`, no parent and no mode, and sets no file owner
//! (so the module could be unloaded under an open file). This is the smallest variant with
//! those, and per-file state: every open file has its own state, which holds an `Arc` of the
//! device's state, so the device state outlives the registration (unbind) for as long as
//! files are open, and the file operations hold a reference on this module.

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
    ffi::{
        c_char,
        c_int,
        c_long,
        c_uint,
        c_ulong, //
    },
    fs::File,
    prelude::*,
    str::CStr,
    sync::Arc,
    types::{
        ForeignOwnable,
        Opaque, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};

use super::poll_queue::PollTable;

/// The file operations of a device: `Self` is the state of one open file, created by
/// [`MiscFile::open`] from the device's shared state and dropped when the file is released.
pub(crate) trait MiscFile: Send + Sync + Sized + 'static {
    /// The state every file of the device shares.
    type Device: Send + Sync + 'static;
    /// Creates the state of a file being opened.
    fn open(dev: &Arc<Self::Device>) -> Result<Self>;
    /// Reads into `buf` (at most `buf.len()` bytes) and returns the count.
    fn read(&self, file: &File, buf: ReadTarget) -> Result<usize>;
    /// Writes from `buf` and returns the count consumed.
    fn write(&self, file: &File, buf: UserSliceReader) -> Result<usize>;
    /// Registers for wake-ups on `table` and returns the current `EPOLL*` mask.
    fn poll(&self, file: &File, table: PollTable<'_>) -> u32;
    /// Handles an ioctl; `arg` is a user pointer for every command this driver has.
    ///
    /// 32-bit userspace reaches the same method (through `compat_ptr_ioctl`), so every
    /// structure the ioctls exchange must have the same layout for both.
    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize>;
}

/// The user buffer of a `read()`: written through a [`UserSliceWriter`], or, where a page fault
/// must not be taken (under a spinlock), by [`ReadTarget::write_nofault`].
pub(crate) struct ReadTarget {
    ptr: UserPtr,
    len: usize,
}

impl ReadTarget {
    /// The length of the buffer.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `data` to the start of the buffer without taking a page fault, so in any context
    /// (`copy_to_user_nofault()`): true if it was copied whole. False if it does not fit, or if
    /// a page fault would have been needed, in which case part of it may have been written.
    pub(crate) fn write_nofault(&self, data: &[u8]) -> bool {
        if data.len() > self.len {
            return false;
        }
        // SAFETY: `data` is valid for reads of `data.len()` bytes. `copy_to_user_nofault()`
        // checks the user range (`access_ok()`) and copies with page faults disabled: it
        // never sleeps, and only writes userspace memory the caller gave for this `read()`.
        unsafe {
            bindings::copy_to_user_nofault(self.ptr.as_mut_ptr(), data.as_ptr().cast(), data.len())
                == 0
        }
    }

    /// The buffer as a [`UserSliceWriter`], for copies that may fault (process context).
    pub(crate) fn writer(self) -> UserSliceWriter {
        UserSlice::new(self.ptr, self.len).writer()
    }
}

/// Length of the device name buffer (`ipmb-` and an adapter number fit easily).
const NAME_LEN: usize = 32;

/// A registered misc device; deregistered by [`Self::deregister`] or on drop, whichever comes
/// first.
///
/// # Invariants
///
/// - While `registered` is true, `misc` is registered with `misc_register`.
/// - `misc.name` points to `name`, `misc.fops` to [`Vtable::<T>::FOPS`].
#[pin_data(PinnedDrop)]
#[repr(C)]
pub(crate) struct Registration<T: MiscFile> {
    // Must be the first field: `open` finds the registration from the `miscdevice` pointer.
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    name: [u8; NAME_LEN],
    registered: AtomicBool,
    state: Arc<T::Device>,
}

// SAFETY: `misc_deregister` may be called from any thread; the device state is `Send + Sync`.
unsafe impl<T: MiscFile> Send for Registration<T> {}
// SAFETY: The only `&self` method that changes anything, `deregister`, is made idempotent and
// race-free by the atomic flag.
unsafe impl<T: MiscFile> Sync for Registration<T> {}

impl<T: MiscFile> Registration<T> {
    /// Registers `/dev/<name>` with `parent` as its parent device and the given `mode`.
    ///
    /// Fails with `EINVAL` if the name does not fit, or with `misc_register`'s error
    /// (`EEXIST` if the name is taken, `EBUSY` if no minor is left).
    pub(crate) fn register<'a>(
        name: [u8; NAME_LEN],
        mode: u16,
        parent: &'a Device,
        state: Arc<T::Device>,
    ) -> impl PinInit<Self, Error> + 'a {
        try_pin_init!(&this in Self {
            name,
            // INVARIANT: set before `misc`, whose initialiser fails unless it registers.
            registered: AtomicBool::new(true),
            state,
            misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                // SAFETY: `this` points to the registration being initialised: its `name`
                // field is already written and will not move (the registration is pinned).
                let name_ptr = unsafe { &raw const (*this.as_ptr()).name };
                let parent_raw = core::ptr::from_ref(parent).cast_mut().cast::<bindings::device>();
                // SAFETY: All zeroes is a valid `miscdevice`; `slot` is valid for writes.
                unsafe {
                    slot.write(pin_init::zeroed());
                    (*slot).minor = bindings::MISC_DYNAMIC_MINOR as c_int;
                    (*slot).name = name_ptr.cast();
                    (*slot).fops = &Vtable::<T>::FOPS.0;
                    (*slot).parent = parent_raw;
                    (*slot).mode = mode;
                }
                // `Device` is a `#[repr(transparent)]` wrapper of `Opaque<struct device>`, so
                // `parent` is a valid `struct device` pointer for the call.
                // SAFETY: `slot` holds a filled-in `miscdevice` whose name and fops outlive
                // the registration; it is deregistered (`deregister`, at the latest on drop)
                // before the memory goes.
                // INVARIANT: on success the device is registered with our name and fops.
                to_result(unsafe { bindings::misc_register(slot) }).inspect_err(|e| {
                    if *e == EEXIST {
                        // SAFETY: `name_ptr` points to the initialised, pinned name field.
                        let bytes = unsafe { &*name_ptr };
                        let shown = CStr::from_bytes_until_nul(bytes).unwrap_or(c"?");
                        dev_err!(parent, "/dev/{} already exists\n", shown);
                    }
                })
            }),
        })
    }
}

/// Formats a device name into a NUL-terminated buffer for [`Registration::register`].
pub(crate) fn name(args: core::fmt::Arguments<'_>) -> Result<[u8; NAME_LEN]> {
    let mut buf = [0u8; NAME_LEN];
    if fmt_name(&mut buf, args) {
        Ok(buf)
    } else {
        Err(EINVAL)
    }
}

/// Formats `args` into `buf` as a NUL-terminated string; false if it does not fit.
fn fmt_name(buf: &mut [u8; NAME_LEN], args: core::fmt::Arguments<'_>) -> bool {
    struct W<'b>(&'b mut [u8], usize);
    impl core::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            // Keep room for the NUL terminator.
            if end >= self.0.len() {
                return Err(core::fmt::Error);
            }
            self.0[self.1..end].copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
    let mut w = W(&mut buf[..], 0);
    core::fmt::write(&mut w, args).is_ok()
}

impl<T: MiscFile> Registration<T> {
    /// Removes `/dev/<name>`, if it still is registered. Files already open keep their own
    /// `Arc` of the device state; no new open can start after this returns.
    pub(crate) fn deregister(&self) {
        if self.registered.swap(false, Ordering::AcqRel) {
            // SAFETY: By the type invariants the device was registered, and the flag lets only
            // one caller get here.
            unsafe { bindings::misc_deregister(self.misc.get()) };
        }
    }
}

#[pinned_drop]
impl<T: MiscFile> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        self.deregister();
    }
}

/// `file_operations` in a static (C structures with pointers are not `Sync` by themselves).
#[repr(transparent)]
struct SyncFops(bindings::file_operations);
// SAFETY: The table is never written after initialisation.
unsafe impl Sync for SyncFops {}

struct Vtable<T>(PhantomData<T>);

impl<T: MiscFile> Vtable<T> {
    const FOPS: SyncFops = SyncFops(bindings::file_operations {
        owner: crate::THIS_MODULE.as_ptr(),
        open: Some(Self::open),
        release: Some(Self::release),
        read: Some(Self::read),
        write: Some(Self::write),
        poll: Some(Self::poll),
        unlocked_ioctl: Some(Self::ioctl),
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: bindings::compat_ptr_ioctl,
        // SAFETY: All zeroes is a valid `file_operations` (every callback absent).
        ..unsafe { core::mem::MaybeUninit::zeroed().assume_init() }
    });

    /// # Safety
    ///
    /// Called by `misc_open` for a file of a device registered by [`Registration`], with
    /// `private_data` pointing to its `miscdevice`, and the registration pinned alive.
    unsafe extern "C" fn open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `misc_open` set `private_data` to our `miscdevice`, the first field of a
        // `#[repr(C)]` `Registration<T>`; `misc_open` holds `misc_mtx`, so the registration
        // cannot be dropped during this call.
        let reg = unsafe { &*(*file).private_data.cast::<Registration<T>>() };
        let opened = T::open(&reg.state).and_then(|f| KBox::new(f, GFP_KERNEL).map_err(Into::into));
        match opened {
            Ok(f) => {
                // SAFETY: The open call owns `private_data` from now on.
                unsafe { (*file).private_data = f.into_foreign().cast() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// Called once per file opened by [`Self::open`], after every other operation.
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
        // SAFETY: `private_data` came from `KBox::into_foreign` in `open`, and release is the
        // last operation on the file.
        drop(unsafe { KBox::<T>::from_foreign((*file).private_data.cast()) });
        0
    }

    /// Borrows the state of an open file.
    ///
    /// # Safety
    ///
    /// `file` must be a file opened by [`Self::open`] and not yet released.
    unsafe fn state<'a>(file: *mut bindings::file) -> &'a T {
        // SAFETY: `private_data` came from `KBox::into_foreign` and the file is open.
        unsafe { KBox::<T>::borrow((*file).private_data.cast()) }
    }

    /// # Safety
    ///
    /// Called by the VFS for an open file, with a user buffer of `count` bytes.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut c_char,
        count: usize,
        _ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The file is open for the duration of the call.
        let (state, f) = unsafe { (Self::state(file), File::from_raw_file(file)) };
        let target = ReadTarget {
            ptr: UserPtr::from_ptr(buf.cast()),
            len: count,
        };
        match state.read(f, target) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for an open file, with a user buffer of `count` bytes.
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const c_char,
        count: usize,
        _ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: The file is open for the duration of the call.
        let (state, f) = unsafe { (Self::state(file), File::from_raw_file(file)) };
        let reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
        match state.write(f, reader) {
            Ok(n) => n as isize,
            Err(e) => e.to_errno() as isize,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for an open file.
    unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
        // SAFETY: The file is open for the duration of the call.
        let (state, f) = unsafe { (Self::state(file), File::from_raw_file(file)) };
        match state.ioctl(f, cmd, arg) {
            Ok(n) => n as c_long,
            Err(e) => e.to_errno() as c_long,
        }
    }

    /// # Safety
    ///
    /// Called by the VFS for an open file, with a null or valid `poll_table`.
    unsafe extern "C" fn poll(
        file: *mut bindings::file,
        wait: *mut bindings::poll_table,
    ) -> c_uint {
        // SAFETY: The file is open, and `wait` is null or valid, for the duration of the call.
        let (state, f, table) = unsafe {
            (
                Self::state(file),
                File::from_raw_file(file),
                PollTable::from_raw(wait),
            )
        };
        state.poll(f, table)
    }
}
