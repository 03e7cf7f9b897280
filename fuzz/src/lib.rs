// SPDX-License-Identifier: GPL-2.0

//! libFuzzer targets for the module's core-only protocol code, each against a reference model.
//!
//! The protocol files are the module's own `rust/proto.rs` with `rust/proto/`, included by
//! path exactly as the host test crate (`tests/host`) includes them. Each target module has a
//! `run` function that decodes the fuzzer's bytes into calls, makes them on the real code and
//! on a plain re-implementation of the documented rules (the model), and asserts that every
//! result agrees: a disagreement or a panic is a crash that libFuzzer saves. The entry points
//! are in `fuzz_targets/`; `make fuzz` runs them (see `Documentation/ipmb.rst`, Testing).

#![deny(warnings)]

/// The module's `rust/` folder, by path: only `proto/` (through `proto.rs`).
#[path = "../../rust"]
#[allow(dead_code)]
mod module {
    pub(crate) mod proto;
}

pub(crate) use module::proto;

pub mod assembler;
pub mod frame;
pub mod input;
pub mod ring;
pub mod seqtab;
