// SPDX-License-Identifier: GPL-2.0

//! Integer module parameters that stay readable and writable in sysfs while the module runs.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h).
//!
//! The `module!` macro of the 7.2 `kernel` crate declares only parameters that are set at load
//! time and hidden from sysfs. The fault-injection knobs of the virtual bus must change while it
//! runs, so [`module_param_int!`] declares the `struct kernel_param` entries by hand, with `set`
//! and `get` operations that go through an atomic integer ([`Param`]).

use core::{
    ffi::c_void,
    fmt::Write, //
};
use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int, //
    },
    page::PAGE_SIZE,
    prelude::*,
    str::Formatter,
    sync::atomic::{
        Atomic,
        Relaxed, //
    }, //
};

/// An `int` module parameter with an inclusive range of accepted values.
///
/// # Invariants
///
/// `min <= value <= max`.
pub(crate) struct Param {
    value: Atomic<i32>,
    min: i32,
    max: i32,
}

impl Param {
    /// Creates a parameter with the value `default`, accepting writes in `min..=max`.
    pub(crate) const fn new(default: i32, min: i32, max: i32) -> Self {
        build_assert!(min <= default && default <= max);
        // INVARIANT: `default` is in range, checked above (at build time: the parameters are
        // `static`s, so this runs in constant evaluation).
        Self {
            value: Atomic::new(default),
            min,
            max,
        }
    }

    /// Returns the current value.
    pub(crate) fn get(&self) -> i32 {
        self.value.load(Relaxed)
    }

    /// Consumes one unit of a countdown: decrements the value if it is positive (and above
    /// `min`).
    ///
    /// Returns whether it was decremented, i.e. whether the caller must apply the fault.
    pub(crate) fn take_one(&self) -> bool {
        let mut cur = self.get();
        while cur > 0 && cur > self.min {
            // INVARIANT: `cur > min`, so `min <= cur - 1 < cur <= max`.
            match self.value.cmpxchg(cur, cur - 1, Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }

    /// Stores `new` and returns the previous value.
    ///
    /// `new` must be in range; it is the reset value of a one-shot parameter.
    pub(crate) fn replace(&self, new: i32) -> i32 {
        if new < self.min || new > self.max {
            return self.get();
        }
        // INVARIANT: `new` is in range, checked above.
        self.value.xchg(new, Relaxed)
    }

    /// Stores a value written by the user, if it is in range.
    fn set(&self, new: i32) -> Result {
        if new < self.min || new > self.max {
            return Err(EINVAL);
        }
        // INVARIANT: `new` is in range, checked above.
        self.value.store(new, Relaxed);
        Ok(())
    }

    /// Returns the pointer that goes into `kernel_param::arg`.
    pub(crate) const fn as_arg(&'static self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }
}

/// Returns the [`Param`] a `kernel_param` declared by [`module_param_int!`] refers to.
///
/// # Safety
///
/// `kp` must point to a `kernel_param` declared by [`module_param_int!`].
unsafe fn param_of(kp: *const bindings::kernel_param) -> &'static Param {
    // SAFETY: By the function's requirements `kp` is valid, and `module_param_int!` initialises
    // its `arg` member with `Param::as_arg` of a `static Param`, which lives forever.
    unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<Param>() }
}

/// The `set` operation: parses a decimal (or `0x` hex) integer and stores it if in range.
///
/// # Safety
///
/// Called only by the module parameter code of the kernel, with `val` a NUL-terminated string
/// (or null) and `kp` a parameter declared by [`module_param_int!`].
unsafe extern "C" fn param_set(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
    if val.is_null() {
        return EINVAL.to_errno();
    }
    let mut new: c_int = 0;
    // SAFETY: `val` is a NUL-terminated string (function requirements) and `new` is a valid
    // `int` to write to. `kstrtoint` accepts the trailing newline a sysfs write carries.
    let ret = unsafe { bindings::kstrtoint(val, 0, &mut new) };
    if ret != 0 {
        return ret;
    }
    // SAFETY: `kp` was declared by `module_param_int!` (function requirements).
    let param = unsafe { param_of(kp) };
    match param.set(new) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// The `get` operation: prints the value and a newline.
///
/// # Safety
///
/// Called only by the module parameter code of the kernel, with `buf` a sysfs buffer of
/// `PAGE_SIZE` bytes and `kp` a parameter declared by [`module_param_int!`].
unsafe extern "C" fn param_get(buf: *mut c_char, kp: *const bindings::kernel_param) -> c_int {
    // SAFETY: `kp` was declared by `module_param_int!` (function requirements).
    let param = unsafe { param_of(kp) };
    // SAFETY: `buf` is a sysfs buffer of `PAGE_SIZE` bytes that nothing else accesses during
    // this call (function requirements).
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), PAGE_SIZE) };
    let mut f = Formatter::new(out);
    if writeln!(f, "{}", param.get()).is_err() {
        return EINVAL.to_errno();
    }
    c_int::try_from(f.bytes_written()).unwrap_or(0)
}

/// The operations of every parameter declared by [`module_param_int!`].
pub(crate) static PARAM_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(param_set),
    get: Some(param_get),
    free: None,
};

/// Copies a string into a byte array of exactly its length (for `.modinfo` entries).
pub(crate) const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Declares a `static` [`Param`] and registers it as the module parameter `$name` with
/// permissions `$perm` in `/sys/module/<module>/parameters/`, with a `modinfo` description.
macro_rules! module_param_int {
    (
        $(#[$meta:meta])*
        $vis:vis static $ident:ident: $name:ident = $default:expr, $min:expr, $max:expr,
        perm: $perm:expr, $desc:literal $(,)?
    ) => {
        $(#[$meta])*
        $vis static $ident: $crate::param::Param = $crate::param::Param::new($default, $min, $max);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static KP: ::kernel::module_param::KernelParam =
                ::kernel::module_param::KernelParam::new(::kernel::bindings::kernel_param {
                    name: ::core::concat!(::core::stringify!($name), "\0")
                        .as_ptr()
                        .cast::<::kernel::ffi::c_char>(),
                    mod_: &raw mut ::kernel::bindings::__this_module,
                    ops: &$crate::param::PARAM_OPS,
                    perm: $perm,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $ident.as_arg(),
                    },
                });

            const PARMTYPE: &str = ::core::concat!("parmtype=", ::core::stringify!($name), ":int\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_TYPE: [u8; PARMTYPE.len()] = $crate::param::modinfo(PARMTYPE);

            const PARM: &str = ::core::concat!("parm=", ::core::stringify!($name), ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_DESC: [u8; PARM.len()] = $crate::param::modinfo(PARM);
        };
    };
}
pub(crate) use module_param_int;
