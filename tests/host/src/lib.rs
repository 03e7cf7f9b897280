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
            (
                "info_smbus_block_write",
                offset_of!(Info, smbus_block_write) as u64,
            ),
            ("info_max_frame_len", offset_of!(Info, max_frame_len) as u64),
            ("info_queue_len", offset_of!(Info, queue_len) as u64),
            ("info_tx_retries", offset_of!(Info, tx_retries) as u64),
            ("info_reserved", offset_of!(Info, reserved) as u64),
            ("stats_size", size_of::<Stats>() as u64),
            ("stats_rx_queued", offset_of!(Stats, rx_queued) as u64),
            (
                "stats_tx_invalid",
                (offset_of!(Stats, counters) + 10 * 8) as u64,
            ),
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

/// Randomized check of the receive state machine against a reference model: any sequence of
/// target events, valid frames or garbage, never panics and delivers exactly the valid frames.
#[cfg(test)]
mod assembler_model {
    use crate::{
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
