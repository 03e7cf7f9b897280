// SPDX-License-Identifier: GPL-2.0

//! Host build of the module's core-only protocol files.
//!
//! The files are the module's own (`rust/*.rs`), included by path: their `#[test]` cases run
//! here under `cargo test` and as KUnit suites inside the module.

#![no_std]
#![deny(warnings)]
// The items are `pub(crate)` for the module; outside tests nothing here calls them.
#![cfg_attr(not(test), allow(dead_code))]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/frame.rs"]
pub mod frame;

#[path = "../../../rust/assembler.rs"]
pub mod assembler;

#[path = "../../../rust/ring.rs"]
pub mod ring;

#[path = "../../../rust/stats.rs"]
pub mod stats;

#[path = "../../../rust/uapi.rs"]
pub mod uapi;

/// Checks `rust/uapi.rs` against `include/uapi/linux/ipmb.h` as C, C++ and 32-bit C see it.
#[cfg(test)]
mod uapi_layout {
    use crate::uapi::{
        Info,
        Stats,
        ABI_VERSION,
        IOC_INFO,
        IOC_STATS, //
    };
    use core::mem::{
        offset_of,
        size_of, //
    };
    use std::{
        collections::HashMap,
        format,
        path::PathBuf,
        process::Command,
        string::String,
        vec,
        vec::Vec, //
    };

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Compiles and runs the probe; returns what it printed.
    fn probe(compiler: &str, extra: &[&str]) -> HashMap<String, u64> {
        let out = std::env::temp_dir().join(format!(
            "ipmb-layout-{}-{}-{}",
            compiler,
            extra.join(""),
            std::process::id()
        ));
        let mut args: Vec<String> = vec![
            "-Wall".into(),
            "-Wextra".into(),
            "-Werror".into(),
            "-I".into(),
            format!("{}", repo().join("include/uapi").display()),
        ];
        args.extend(extra.iter().map(|s| String::from(*s)));
        args.push(format!("{}", repo().join("tests/uapi/layout.c").display()));
        args.push("-o".into());
        args.push(format!("{}", out.display()));
        let st = Command::new(compiler).args(&args).status();
        assert!(
            matches!(st, Ok(s) if s.success()),
            "{compiler} {args:?} failed"
        );
        let run = Command::new(&out).output();
        let _ = std::fs::remove_file(&out);
        assert!(run.is_ok(), "running the {compiler} probe failed");
        let Ok(run) = run else {
            return HashMap::new();
        };
        String::from_utf8_lossy(&run.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((String::from(k), v.parse().ok()?))
            })
            .collect()
    }

    fn expected() -> Vec<(&'static str, u64)> {
        vec![
            ("abi_version", u64::from(ABI_VERSION)),
            ("info_size", size_of::<Info>() as u64),
            ("info_adapter", offset_of!(Info, adapter) as u64),
            ("info_own_addr", offset_of!(Info, own_addr) as u64),
            ("info_smbus_block_write", offset_of!(Info, smbus_block_write) as u64),
            ("info_max_frame_len", offset_of!(Info, max_frame_len) as u64),
            ("info_queue_len", offset_of!(Info, queue_len) as u64),
            ("info_tx_retries", offset_of!(Info, tx_retries) as u64),
            ("info_reserved", offset_of!(Info, reserved) as u64),
            ("stats_size", size_of::<Stats>() as u64),
            ("stats_rx_queued", offset_of!(Stats, rx_queued) as u64),
            ("stats_tx_invalid", (offset_of!(Stats, counters) + 10 * 8) as u64),
            ("stats_reserved", offset_of!(Stats, reserved) as u64),
            ("ioc_info", u64::from(IOC_INFO)),
            ("ioc_stats", u64::from(IOC_STATS)),
        ]
    }

    fn check(compiler: &str, extra: &[&str]) {
        let got = probe(compiler, extra);
        for (k, v) in expected() {
            assert_eq!(got.get(k), Some(&v), "{compiler} {extra:?}: {k}");
        }
    }

    #[test]
    fn c_layout_matches() {
        check("cc", &["-std=c99"]);
    }

    #[test]
    fn cxx_layout_matches() {
        check("c++", &["-x", "c++"]);
    }

    #[test]
    fn c_32bit_layout_matches() {
        check("cc", &["-m32"]);
    }
}
