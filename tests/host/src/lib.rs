// SPDX-License-Identifier: GPL-2.0

//! Host build of the module's core-only protocol files.
//!
//! The files are the module's own (`rust/proto.rs` with `rust/proto/`, and `rust/uapi.rs`),
//! included by path: their `#[test]` cases run here under `cargo test` and as KUnit suites
//! inside the module.

#![no_std]
#![deny(warnings)]
// The items are `pub(crate)` for the module; outside tests nothing here calls them.
#![cfg_attr(not(test), allow(dead_code))]

#[cfg(test)]
extern crate std;

/// The module's `rust/` folder, by path: only `proto/` (through `proto.rs`) and `uapi.rs`.
#[path = "../../../rust"]
mod module {
    pub mod proto;
    pub mod uapi;
}

pub use module::{
    proto,
    uapi, //
};

/// Checks `rust/uapi.rs` against `include/uapi/linux/ipmb.h` as C, C++ and 32-bit C see it.
#[cfg(test)]
mod uapi_layout {
    use crate::{
        proto::stats::NAMES,
        uapi::*, //
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

    /// `_IOC(dir, IPMB_IOC_MAGIC, nr, size)` as the host's C compiler computes it: the
    /// asm-generic layout of x86 (the module builds its numbers with `kernel::ioctl`, which
    /// uses the target architecture's; `tests/uapi/ioctl_probe.c` checks those in the guest).
    fn ioc(dir: u64, nr: u32, size: usize) -> u64 {
        (dir << 30) | ((size as u64) << 16) | (u64::from(IOC_MAGIC) << 8) | u64::from(nr)
    }

    /// Every name the probe prints, with the value the Rust side has for it.
    fn expected() -> Vec<(String, u64)> {
        const W: u64 = 1;
        const R: u64 = 2;
        macro_rules! o {
            ($v:ident, $s:literal, $t:ty, $($f:ident),*) => {
                $($v.push((format!("{}.{}", $s, stringify!($f)), offset_of!($t, $f) as u64));)*
            };
        }
        let mut v: Vec<(String, u64)> = [
            ("abi_version", u64::from(ABI_VERSION)),
            ("max_data", MAX_DATA as u64),
            ("retries_default", u64::from(RETRIES_DEFAULT)),
            ("max_retries", u64::from(MAX_RETRIES)),
            ("max_timeout_ms", u64::from(MAX_TIMEOUT_MS)),
            ("msg_broadcast", u64::from(MSG_BROADCAST)),
            ("msg_synthesized", u64::from(MSG_SYNTHESIZED)),
            ("kind_response", u64::from(KIND_RESPONSE)),
            ("kind_request", u64::from(KIND_REQUEST)),
            ("cc_timeout", u64::from(CC_TIMEOUT)),
            ("cc_bus_error", u64::from(CC_BUS_ERROR)),
            ("cc_too_long", u64::from(CC_TOO_LONG)),
            ("cmd_default", u64::from(CMD_DEFAULT)),
            ("ipmb_info", size_of::<Info>() as u64),
            ("ipmb_stats", size_of::<Stats>() as u64),
            ("ipmb_msg", size_of::<Msg>() as u64),
            ("ipmb_cmd", size_of::<Cmd>() as u64),
            ("ioc_info", ioc(R, NR_INFO, size_of::<Info>())),
            ("ioc_stats", ioc(R, NR_STATS, size_of::<Stats>())),
            ("ioc_request", ioc(R | W, NR_REQUEST, size_of::<Msg>())),
            ("ioc_submit", ioc(R | W, NR_SUBMIT, size_of::<Msg>())),
            ("ioc_receive", ioc(R, NR_RECEIVE, size_of::<Msg>())),
            ("ioc_register", ioc(W, NR_REGISTER, size_of::<Cmd>())),
            ("ioc_unregister", ioc(W, NR_UNREGISTER, size_of::<Cmd>())),
            ("ioc_respond", ioc(W, NR_RESPOND, size_of::<Msg>())),
        ]
        .iter()
        .map(|(k, v)| (String::from(*k), *v))
        .collect();
        o!(v, "ipmb_info", Info, adapter, own_addr, smbus_block_write, max_frame_len,
            queue_len, tx_retries, req_timeout_ms, req_retries, seq_count, seq_expiry_ms,
            max_clients, inbox_len, max_registrations, reserved);
        o!(v, "ipmb_stats", Stats, rx_queued, req_inflight, reserved);
        o!(v, "ipmb_msg", Msg, id, timeout_ms, data_len, retries, flags, kind, addr, netfn,
            lun, own_lun, seq, cmd, cc, reserved, data);
        o!(v, "ipmb_cmd", Cmd, netfn, cmd, flags, reserved);
        // The counters: the C field names are the sysfs names, in the same order.
        // The first STATS_COUNTERS are before rx_queued, the others (ABI version 4) after
        // req_inflight.
        for (i, name) in NAMES.iter().enumerate() {
            let offset = if i < STATS_COUNTERS {
                offset_of!(Stats, counters) + i * 8
            } else {
                offset_of!(Stats, more) + (i - STATS_COUNTERS) * 8
            };
            v.push((
                format!("ipmb_stats.{}", name.to_str().unwrap_or("?")),
                offset as u64,
            ));
        }
        v
    }

    #[test]
    fn probe_covers_every_counter() {
        let got = probe("cc", &[]);
        let printed = got.keys().filter(|k| k.starts_with("ipmb_stats.")).count();
        // Every counter plus rx_queued, req_inflight and reserved.
        assert_eq!(printed, NAMES.len() + 3);
    }

    fn check(compiler: &str, extra: &[&str]) {
        let got = probe(compiler, extra);
        for (k, v) in expected() {
            assert_eq!(got.get(&k), Some(&v), "{compiler} {extra:?}: {k}");
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

/// Randomized check of the receive state machine against a reference model: any sequence of
/// target events, valid frames or garbage, never panics and delivers exactly the valid frames.
#[cfg(test)]
mod assembler_model {
    use crate::proto::{
        assembler::{
            Action,
            Assembler,
            Event, //
        },
        frame::{
            self,
            SPEC_MAX_LEN, //
        },
    };
    use std::{
        vec,
        vec::Vec, //
    };

    const OWN: u8 = 0x20;

    /// xorshift64*: deterministic, no dependencies.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_event_streams_match_model() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut asm = Assembler::<240>::new(OWN, SPEC_MAX_LEN);
        // The model: bytes of the frame in progress, if a write is open.
        let mut open: Option<Vec<u8>> = None;
        for _ in 0..200_000 {
            let ev = match rng.below(10) {
                0 => Event::WriteRequested,
                1 => Event::Stop,
                2 => Event::ReadRequested,
                3 => Event::ReadProcessed,
                _ => Event::WriteReceived(rng.next() as u8),
            };
            // What the model expects to end now, if anything.
            let ending = match ev {
                Event::WriteRequested | Event::Stop | Event::ReadRequested => open.take(),
                _ => None,
            };
            if let Event::WriteReceived(b) = ev {
                let f = open.get_or_insert_with(|| vec![OWN]);
                f.push(b);
            }
            if ev == Event::WriteRequested {
                open = Some(vec![OWN]);
            }
            let action = asm.event(ev);
            match (&ending, &action) {
                (Some(f), Action::Frame(got)) => {
                    assert_eq!(frame::validate(f, SPEC_MAX_LEN), Ok(()));
                    assert_eq!(&f[..], *got);
                }
                (Some(f), Action::Dropped(e)) if f.len() > 1 => {
                    let expected = if f.len() > SPEC_MAX_LEN {
                        Err(frame::FrameError::TooLong)
                    } else {
                        frame::validate(f, SPEC_MAX_LEN)
                    };
                    assert_eq!(expected, Err(*e));
                }
                (Some(f), Action::None | Action::ReadByte(_)) => assert!(f.len() <= 1),
                (None, Action::Frame(_) | Action::Dropped(_)) => {
                    panic!("delivered a frame the model did not end")
                }
                (_, Action::Nak) => {
                    assert!(open.as_ref().is_some_and(|f| f.len() > SPEC_MAX_LEN))
                }
                (None, _) => {}
                (Some(_), other) => panic!("unexpected action {other:?}"),
            }
            if matches!(ev, Event::ReadRequested | Event::ReadProcessed) {
                assert!(matches!(
                    action,
                    Action::ReadByte(0xff) | Action::Frame(_) | Action::Dropped(_)
                ));
            }
        }
        // Random bytes rarely make a valid frame; now feed valid ones among the noise.
        let hdr = frame::Header {
            dest: OWN,
            netfn: 0x07,
            dest_lun: 0,
            src: 0x72,
            seq: 0,
            src_lun: 0,
            cmd: 1,
        };
        let mut buf = [0u8; SPEC_MAX_LEN];
        for i in 0..1000u32 {
            let n = frame::build(&mut buf, SPEC_MAX_LEN, &hdr, &[i as u8]);
            assert_eq!(n, Ok(8));
            asm.event(Event::WriteRequested);
            for b in &buf[1..8] {
                assert_eq!(asm.event(Event::WriteReceived(*b)), Action::None);
            }
            let end = if rng.below(2) == 0 {
                Event::Stop
            } else {
                Event::ReadRequested
            };
            assert_eq!(asm.event(end), Action::Frame(&buf[..8]));
            // Noise in between: a short garbage write.
            asm.event(Event::WriteRequested);
            asm.event(Event::WriteReceived(rng.next() as u8));
            asm.event(Event::Stop);
        }
    }
}
