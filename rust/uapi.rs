// SPDX-License-Identifier: GPL-2.0

//! The ioctl ABI of `/dev/ipmb-N`: Rust mirrors of `include/uapi/linux/ipmb.h`.
//!
//! This file uses only `core`: the host test crate compiles it too, and checks every size,
//! offset and ioctl number against the C header compiled by the C compiler (64- and 32-bit).
//! The compile-time assertions below pin the layouts: no implicit padding anywhere. The ioctl
//! command numbers are built from [`IOC_MAGIC`] and the `NR_*` numbers here by `kernel::ioctl`
//! in `rust/chardev/ioctl.rs`, whose bit layout is the architecture's (not every architecture
//! uses the asm-generic one). In the kernel (`CONFIG_RUST`) the structures also implement
//! `kernel::transmute::{AsBytes, FromBytes}` and `pin_init::Zeroable`.

use core::mem::{
    offset_of,
    size_of, //
};

use crate::proto::{
    frame,
    stats, //
};

/// `IPMB_ABI_VERSION`.
pub(crate) const ABI_VERSION: u32 = 4;
/// `IPMB_IOC_MAGIC`.
pub(crate) const IOC_MAGIC: u32 = 0xBB;
/// `IPMB_MAX_DATA`.
pub(crate) const MAX_DATA: usize = 240;
/// `IPMB_RETRIES_DEFAULT`.
pub(crate) const RETRIES_DEFAULT: u8 = 0xff;
/// `IPMB_MAX_RETRIES`.
pub(crate) const MAX_RETRIES: u8 = 15;
/// `IPMB_MAX_TIMEOUT_MS`.
pub(crate) const MAX_TIMEOUT_MS: u32 = 60000;
/// `IPMB_MSG_BROADCAST`.
pub(crate) const MSG_BROADCAST: u8 = 0x01;
/// `IPMB_MSG_SYNTHESIZED`.
pub(crate) const MSG_SYNTHESIZED: u8 = 0x02;
/// `IPMB_KIND_RESPONSE`.
pub(crate) const KIND_RESPONSE: u8 = 1;
/// `IPMB_KIND_REQUEST`.
pub(crate) const KIND_REQUEST: u8 = 2;
/// `IPMB_CC_TIMEOUT`.
pub(crate) const CC_TIMEOUT: u8 = frame::CC_TIMEOUT;
/// `IPMB_CC_BUS_ERROR`.
pub(crate) const CC_BUS_ERROR: u8 = 0x82;
/// `IPMB_CC_TOO_LONG`.
pub(crate) const CC_TOO_LONG: u8 = 0xc8;
/// `IPMB_CMD_DEFAULT`: `struct ipmb_cmd` names the default route, not one (netFn, cmd) pair.
pub(crate) const CMD_DEFAULT: u8 = 0x01;

/// The flags `IPMB_IOC_REQUEST` and `IPMB_IOC_SUBMIT` take.
pub(crate) const REQUEST_FLAGS: u8 = MSG_BROADCAST;
/// The flags `IPMB_IOC_RESPOND` takes: those `IPMB_IOC_RECEIVE` returns with a request.
pub(crate) const RESPOND_FLAGS: u8 = MSG_BROADCAST;

/// The `nr` of `IPMB_IOC_INFO` (`_IOR`, `struct ipmb_info`).
pub(crate) const NR_INFO: u32 = 0x00;
/// The `nr` of `IPMB_IOC_STATS` (`_IOR`, `struct ipmb_stats`).
pub(crate) const NR_STATS: u32 = 0x01;
/// The `nr` of `IPMB_IOC_REQUEST` (`_IOWR`, `struct ipmb_msg`).
pub(crate) const NR_REQUEST: u32 = 0x02;
/// The `nr` of `IPMB_IOC_SUBMIT` (`_IOWR`, `struct ipmb_msg`).
pub(crate) const NR_SUBMIT: u32 = 0x03;
/// The `nr` of `IPMB_IOC_RECEIVE` (`_IOR`, `struct ipmb_msg`).
pub(crate) const NR_RECEIVE: u32 = 0x04;
/// The `nr` of `IPMB_IOC_REGISTER` (`_IOW`, `struct ipmb_cmd`).
pub(crate) const NR_REGISTER: u32 = 0x05;
/// The `nr` of `IPMB_IOC_UNREGISTER` (`_IOW`, `struct ipmb_cmd`).
pub(crate) const NR_UNREGISTER: u32 = 0x06;
/// The `nr` of `IPMB_IOC_RESPOND` (`_IOW`, `struct ipmb_msg`).
pub(crate) const NR_RESPOND: u32 = 0x07;

/// `struct ipmb_info`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[cfg_attr(CONFIG_RUST, derive(pin_init::Zeroable))]
pub(crate) struct Info {
    pub(crate) abi_version: u32,
    pub(crate) adapter: u32,
    pub(crate) own_addr: u8,
    pub(crate) smbus_block_write: u8,
    pub(crate) max_frame_len: u16,
    pub(crate) queue_len: u32,
    pub(crate) tx_retries: u32,
    pub(crate) req_timeout_ms: u32,
    pub(crate) req_retries: u32,
    pub(crate) seq_count: u32,
    pub(crate) seq_expiry_ms: u32,
    pub(crate) max_clients: u32,
    pub(crate) inbox_len: u32,
    pub(crate) max_registrations: u32,
    pub(crate) reserved: [u32; 4],
}

/// Number of counters in `struct ipmb_stats` before `rx_queued`.
pub(crate) const STATS_COUNTERS: usize = 23;
/// Number of counters in `struct ipmb_stats` after `req_inflight` (ABI version 4).
pub(crate) const STATS_MORE: usize = 4;

/// `struct ipmb_stats`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[cfg_attr(CONFIG_RUST, derive(pin_init::Zeroable))]
pub(crate) struct Stats {
    /// The counters, in the order of [`stats::NAMES`].
    pub(crate) counters: [u64; STATS_COUNTERS],
    pub(crate) rx_queued: u64,
    pub(crate) req_inflight: u64,
    /// The counters after the first [`STATS_COUNTERS`], in the order of [`stats::NAMES`].
    pub(crate) more: [u64; STATS_MORE],
    pub(crate) reserved: [u64; 7 - STATS_MORE],
}

impl Stats {
    /// Puts `values` (the counters in the order of [`stats::NAMES`]) into their fields.
    pub(crate) fn set_counters(&mut self, values: &[u64]) {
        let fields = self.counters.iter_mut().chain(self.more.iter_mut());
        for (field, value) in fields.zip(values) {
            *field = *value;
        }
    }
}

/// `struct ipmb_msg`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(CONFIG_RUST, derive(pin_init::Zeroable))]
pub(crate) struct Msg {
    pub(crate) id: u64,
    pub(crate) timeout_ms: u32,
    pub(crate) data_len: u16,
    pub(crate) retries: u8,
    pub(crate) flags: u8,
    pub(crate) kind: u8,
    pub(crate) addr: u8,
    pub(crate) netfn: u8,
    pub(crate) lun: u8,
    pub(crate) own_lun: u8,
    pub(crate) seq: u8,
    pub(crate) cmd: u8,
    pub(crate) cc: u8,
    pub(crate) reserved: [u32; 4],
    pub(crate) data: [u8; MAX_DATA],
}

/// For the tests, which the host crate runs too: it has no `pin_init::zeroed()`, which the
/// kernel code uses.
#[cfg(any(test, CONFIG_KUNIT))]
impl Default for Msg {
    fn default() -> Self {
        Self {
            id: 0,
            timeout_ms: 0,
            data_len: 0,
            retries: 0,
            flags: 0,
            kind: 0,
            addr: 0,
            netfn: 0,
            lun: 0,
            own_lun: 0,
            seq: 0,
            cmd: 0,
            cc: 0,
            reserved: [0; 4],
            data: [0; MAX_DATA],
        }
    }
}

impl Msg {
    /// Returns true if the message, as an ioctl's input, sets no flag outside `allowed` and
    /// no reserved bit: what every ioctl that reads a message requires (else `EINVAL`), so
    /// that a later ABI can give them a meaning.
    pub(crate) fn input_valid(&self, allowed: u8) -> bool {
        self.flags & !allowed == 0 && self.reserved == [0; 4]
    }

    /// Returns true if the addressing fields can go into a frame: an even peer address, a
    /// request netFn, LUNs of 2 bits.
    pub(crate) fn addressing_valid(&self) -> bool {
        frame::valid_address(self.addr)
            && frame::request_netfn(self.netfn)
            && self.lun <= 3
            && self.own_lun <= 3
    }

    /// The used part of `data`, or `None` if `data_len` is out of range.
    pub(crate) fn payload(&self) -> Option<&[u8]> {
        self.data.get(..usize::from(self.data_len))
    }

    /// Fills the fields a response carries from a validated response frame (address byte
    /// first): the request's netFn, the responder's address and LUN, our LUN, seq, cmd, cc
    /// and the data after cc.
    pub(crate) fn set_response(&mut self, f: &[u8]) {
        if f.len() < frame::MIN_RESPONSE_LEN {
            return;
        }
        self.addr = f[frame::SRC_SA];
        self.netfn = (f[frame::NETFN_LUN] >> 2) & !1;
        self.lun = f[frame::SEQ_LUN] & 3;
        self.own_lun = f[frame::NETFN_LUN] & 3;
        self.seq = f[frame::SEQ_LUN] >> 2;
        self.cmd = f[frame::CMD];
        self.cc = f[frame::CMD + 1];
        self.set_data(&f[frame::CMD + 2..f.len() - 1]);
    }

    /// Fills the fields of a received request from a validated request frame: the
    /// requester's address and LUN, the LUN it addressed, netFn, seq, cmd and data.
    pub(crate) fn set_request(&mut self, f: &[u8]) {
        if f.len() < frame::MIN_REQUEST_LEN {
            return;
        }
        self.addr = f[frame::SRC_SA];
        self.netfn = f[frame::NETFN_LUN] >> 2;
        self.lun = f[frame::SEQ_LUN] & 3;
        self.own_lun = f[frame::NETFN_LUN] & 3;
        self.seq = f[frame::SEQ_LUN] >> 2;
        self.cmd = f[frame::CMD];
        self.cc = 0;
        self.set_data(&f[frame::CMD + 1..f.len() - 1]);
    }

    fn set_data(&mut self, d: &[u8]) {
        let n = d.len().min(MAX_DATA);
        self.data[..n].copy_from_slice(&d[..n]);
        // At most `MAX_DATA` (240).
        self.data_len = n as u16;
    }
}

/// `struct ipmb_cmd`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[cfg_attr(CONFIG_RUST, derive(pin_init::Zeroable))]
pub(crate) struct Cmd {
    pub(crate) netfn: u8,
    pub(crate) cmd: u8,
    pub(crate) flags: u8,
    pub(crate) reserved: u8,
}

// The layouts, field by field: the sum of the field sizes equals the size, so there is no
// padding, and the offsets are those of the C header.
const _: () = {
    assert!(size_of::<Info>() == 64);
    assert!(offset_of!(Info, adapter) == 4);
    assert!(offset_of!(Info, own_addr) == 8);
    assert!(offset_of!(Info, smbus_block_write) == 9);
    assert!(offset_of!(Info, max_frame_len) == 10);
    assert!(offset_of!(Info, queue_len) == 12);
    assert!(offset_of!(Info, tx_retries) == 16);
    assert!(offset_of!(Info, req_timeout_ms) == 20);
    assert!(offset_of!(Info, req_retries) == 24);
    assert!(offset_of!(Info, seq_count) == 28);
    assert!(offset_of!(Info, seq_expiry_ms) == 32);
    assert!(offset_of!(Info, max_clients) == 36);
    assert!(offset_of!(Info, inbox_len) == 40);
    assert!(offset_of!(Info, max_registrations) == 44);
    assert!(offset_of!(Info, reserved) == 48);
    assert!(size_of::<Stats>() == 32 * 8);
    assert!(offset_of!(Stats, rx_queued) == STATS_COUNTERS * 8);
    assert!(offset_of!(Stats, req_inflight) == (STATS_COUNTERS + 1) * 8);
    assert!(offset_of!(Stats, more) == (STATS_COUNTERS + 2) * 8);
    assert!(offset_of!(Stats, reserved) == (STATS_COUNTERS + 2 + STATS_MORE) * 8);
    assert!(stats::NAMES.len() == STATS_COUNTERS + STATS_MORE);
    assert!(size_of::<Msg>() == 40 + MAX_DATA);
    assert!(offset_of!(Msg, timeout_ms) == 8);
    assert!(offset_of!(Msg, data_len) == 12);
    assert!(offset_of!(Msg, retries) == 14);
    assert!(offset_of!(Msg, flags) == 15);
    assert!(offset_of!(Msg, kind) == 16);
    assert!(offset_of!(Msg, addr) == 17);
    assert!(offset_of!(Msg, netfn) == 18);
    assert!(offset_of!(Msg, lun) == 19);
    assert!(offset_of!(Msg, own_lun) == 20);
    assert!(offset_of!(Msg, seq) == 21);
    assert!(offset_of!(Msg, cmd) == 22);
    assert!(offset_of!(Msg, cc) == 23);
    assert!(offset_of!(Msg, reserved) == 24);
    assert!(offset_of!(Msg, data) == 40);
    assert!(size_of::<Cmd>() == 4);
    assert!(offset_of!(Cmd, cmd) == 1);
    assert!(offset_of!(Cmd, flags) == 2);
    assert!(offset_of!(Cmd, reserved) == 3);
};

/// The kernel's byte views of the structures, for copying them from and to userspace.
#[cfg(CONFIG_RUST)]
mod transmute {
    use super::{
        Cmd,
        Info,
        Msg,
        Stats, //
    };
    use kernel::transmute::{
        AsBytes,
        FromBytes, //
    };

    // SAFETY: `Info` is `#[repr(C)]` with integer fields only and, as asserted above, no
    // padding: every byte is initialised.
    unsafe impl AsBytes for Info {}
    // SAFETY: `Stats` is `#[repr(C)]` with integer fields only and, as asserted above, no
    // padding: every byte is initialised.
    unsafe impl AsBytes for Stats {}
    // SAFETY: `Msg` is `#[repr(C)]` with integer fields only and, as asserted above, no
    // padding: every byte is initialised.
    unsafe impl AsBytes for Msg {}
    // SAFETY: `Cmd` is `#[repr(C)]` with integer fields only and, as asserted above, no
    // padding: every byte is initialised.
    unsafe impl AsBytes for Cmd {}
    // SAFETY: `Info` has integer fields only, without interior mutability: any bytes are a
    // valid value.
    unsafe impl FromBytes for Info {}
    // SAFETY: `Stats` has integer fields only, without interior mutability: any bytes are a
    // valid value.
    unsafe impl FromBytes for Stats {}
    // SAFETY: `Msg` has integer fields only, without interior mutability: any bytes are a
    // valid value.
    unsafe impl FromBytes for Msg {}
    // SAFETY: `Cmd` has integer fields only, without interior mutability: any bytes are a
    // valid value.
    unsafe impl FromBytes for Cmd {}
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_uapi))]
mod tests {
    use super::*;
    use crate::proto::frame::{
        build,
        Header,
        SPEC_MAX_LEN, //
    };

    #[test]
    fn response_fields_from_frame() {
        // 0x72 answers 0x20's request netFn 6 (App) cmd 1, seq 9, rqLUN 2, rsLUN 1.
        let hdr = Header {
            dest: 0x20,
            netfn: 0x07,
            dest_lun: 2,
            src: 0x72,
            seq: 9,
            src_lun: 1,
            cmd: 0x01,
        };
        let mut f = [0u8; SPEC_MAX_LEN];
        let n = build(&mut f, SPEC_MAX_LEN, &hdr, &[0xc1, 0xaa, 0xbb]).unwrap_or(0);
        let mut m = Msg::default();
        m.set_response(&f[..n]);
        assert_eq!(
            (m.addr, m.netfn, m.lun, m.own_lun, m.seq, m.cmd, m.cc),
            (0x72, 0x06, 1, 2, 9, 0x01, 0xc1)
        );
        assert_eq!(m.payload(), Some(&[0xaa, 0xbb][..]));
    }

    #[test]
    fn request_fields_from_frame() {
        let hdr = Header {
            dest: 0x72,
            netfn: 0x06,
            dest_lun: 1,
            src: 0x20,
            seq: 33,
            src_lun: 3,
            cmd: 0x04,
        };
        let mut f = [0u8; SPEC_MAX_LEN];
        let n = build(&mut f, SPEC_MAX_LEN, &hdr, &[7]).unwrap_or(0);
        let mut m = Msg::default();
        m.set_request(&f[..n]);
        assert_eq!(
            (m.addr, m.netfn, m.lun, m.own_lun, m.seq, m.cmd),
            (0x20, 0x06, 3, 1, 33, 0x04)
        );
        assert_eq!(m.payload(), Some(&[7][..]));
        m.data_len = 241;
        assert_eq!(m.payload(), None);
    }

    #[test]
    fn addressing_checked() {
        let ok = Msg {
            addr: 0x72,
            netfn: 0x06,
            lun: 3,
            own_lun: 3,
            ..Msg::default()
        };
        assert!(ok.addressing_valid());
        assert!(!Msg { addr: 0x73, ..ok }.addressing_valid());
        assert!(!Msg { netfn: 0x07, ..ok }.addressing_valid());
        assert!(!Msg { netfn: 0x40, ..ok }.addressing_valid());
        assert!(!Msg { lun: 4, ..ok }.addressing_valid());
        assert!(!Msg { own_lun: 4, ..ok }.addressing_valid());
    }

    #[test]
    fn input_flags_checked() {
        let m = Msg {
            flags: MSG_BROADCAST,
            ..Msg::default()
        };
        assert!(m.input_valid(REQUEST_FLAGS));
        assert!(!m.input_valid(0));
        for bit in 1..8 {
            let m = Msg {
                flags: 1 << bit,
                ..Msg::default()
            };
            assert!(!m.input_valid(REQUEST_FLAGS));
            assert!(!m.input_valid(RESPOND_FLAGS));
        }
    }

    #[test]
    fn counters_fill_both_blocks_in_order() {
        let mut values = [0u64; stats::NAMES.len()];
        for (i, v) in values.iter_mut().enumerate() {
            *v = i as u64 + 1;
        }
        let mut s = Stats::default();
        s.set_counters(&values);
        assert_eq!(s.counters[0], 1);
        assert_eq!(s.counters[STATS_COUNTERS - 1], STATS_COUNTERS as u64);
        assert_eq!(s.more[0], STATS_COUNTERS as u64 + 1);
        assert_eq!(s.more[STATS_MORE - 1], stats::NAMES.len() as u64);
        assert_eq!(
            (s.rx_queued, s.req_inflight, s.reserved),
            (0, 0, [0; 7 - STATS_MORE])
        );
    }

    #[test]
    fn input_reserved_must_be_zero() {
        for i in 0..4 {
            let mut m = Msg::default();
            m.reserved[i] = 1 << (8 * i);
            assert!(!m.input_valid(REQUEST_FLAGS));
        }
        assert!(Msg::default().input_valid(REQUEST_FLAGS));
    }
}
