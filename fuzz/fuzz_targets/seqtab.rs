// SPDX-License-Identifier: GPL-2.0

//! libFuzzer entry point: [`ipmb_fuzz::seqtab::run`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ipmb_fuzz::seqtab::run(data));
