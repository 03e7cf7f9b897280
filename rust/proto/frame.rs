// SPDX-License-Identifier: GPL-2.0

//! IPMB frame layout, checksums and validation.
//!
//! This file uses only `core`: it is compiled into the module (with its KUnit suite) and into
//! the host test crate under `tests/host`.
//!
//! A frame as the driver stores it starts with the responder's slave address, which is the I2C
//! address byte on the wire (a target backend never receives it as data, so the receiver puts
//! its own address back):
//!
//! ```text
//! request : rsSA | netFn<<2 | rsLUN | cs1 | rqSA | rqSeq<<2 | rqLUN | cmd | data... | cs2
//! response: rqSA | netFn<<2 | rqLUN | cs1 | rsSA | rqSeq<<2 | rsLUN | cmd | cc | data... | cs2
//! ```

/// Offset of the destination (responder) slave address.
pub(crate) const DEST_SA: usize = 0;
/// Offset of the netFn/LUN byte.
pub(crate) const NETFN_LUN: usize = 1;
/// Offset of the header checksum.
pub(crate) const CS1: usize = 2;
/// Offset of the source (requester) slave address.
pub(crate) const SRC_SA: usize = 3;
/// Offset of the seq/LUN byte.
pub(crate) const SEQ_LUN: usize = 4;
/// Offset of the command byte.
pub(crate) const CMD: usize = 5;

/// Length of a request without data, including the address byte.
pub(crate) const MIN_REQUEST_LEN: usize = 7;
/// Length of a response with only a completion code, including the address byte.
pub(crate) const MIN_RESPONSE_LEN: usize = 8;
/// Longest frame the IPMB specification allows, including the address byte: the tests'
/// limit, and what the frame buffers on the stack zero at least (the driver's limit is the
/// `max_frame_len` parameter).
pub(crate) const SPEC_MAX_LEN: usize = 32;

/// Completion code of a request that got no response in time (IPMI "timeout while processing
/// command"); `IPMB_CC_TIMEOUT` in the uapi header.
pub(crate) const CC_TIMEOUT: u8 = 0xc3;

/// Why a frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes than the smallest request (7) or response (8).
    TooShort,
    /// More bytes than the instance's maximum frame length.
    TooLong,
    /// The header checksum (cs1) does not match.
    BadHeaderChecksum,
    /// The data checksum (cs2) does not match.
    BadDataChecksum,
    /// An odd slave address (only even 8-bit addresses exist on IPMB).
    BadAddress,
}

/// Returns the two's complement checksum of `bytes`: their sum plus the result is 0 mod 256.
///
/// The data checksum of every received frame is computed at its STOP, in interrupt context,
/// and kernels build without vector registers: see [`sum`].
pub(crate) fn checksum(bytes: &[u8]) -> u8 {
    sum(bytes).wrapping_neg()
}

/// Returns the sum mod 256 of `bytes`: [`sum_lanes`] on 64-bit architectures, [`sum_bytes`]
/// on the others.
///
/// On x86 an unaligned 8-byte load is one instruction: the lanes cost about one instruction
/// per byte in all. 32-bit ARM kernels build for strict alignment, where each word is put
/// together from byte loads: about 26 instructions per 8 bytes in the lanes (measured in the
/// AST2600 bench build), against 18 for [`sum_bytes`]' unrolled loads and adds.
fn sum(bytes: &[u8]) -> u8 {
    if cfg!(target_pointer_width = "64") {
        sum_lanes(bytes)
    } else {
        sum_bytes(bytes)
    }
}

/// Returns the sum mod 256 of `bytes`, eight at a time in the 16-bit lanes of a `u64`
/// ([`sum_words`]).
fn sum_lanes(bytes: &[u8]) -> u8 {
    let mut sum = 0u8;
    // Blocks of at most `WORDS_PER_BLOCK` words, so that no lane overflows.
    for block in bytes.chunks(8 * WORDS_PER_BLOCK) {
        let words = block.chunks_exact(8);
        let rest = words.remainder();
        sum = sum.wrapping_add(sum_words(words));
        sum = rest.iter().fold(sum, |acc, b| acc.wrapping_add(*b));
    }
    sum
}

/// Returns the sum mod 256 of `bytes`, byte by byte in blocks of eight that the compiler
/// unrolls (a plain bytewise loop is not unrolled on 32-bit ARM: six instructions a byte).
fn sum_bytes(bytes: &[u8]) -> u8 {
    let (blocks, rest) = bytes.as_chunks::<8>();
    let sum = blocks.iter().fold(0u8, |acc, block| {
        block.iter().fold(acc, |acc, b| acc.wrapping_add(*b))
    });
    rest.iter().fold(sum, |acc, b| acc.wrapping_add(*b))
}

/// Words [`sum_words`] can add before a 16-bit lane could overflow (each word adds two
/// bytes of at most 255 to each lane).
const WORDS_PER_BLOCK: usize = 0xffff / (2 * 0xff);

/// Returns the sum mod 256 of the bytes of `words` (at most [`WORDS_PER_BLOCK`] of them).
///
/// Each 8-byte word is split into its even and odd bytes, each in the low half of a 16-bit
/// lane, and both are added to four lanes; the lanes' sum is the bytes' sum. The order of the
/// bytes in a word does not matter.
fn sum_words(words: core::slice::ChunksExact<'_, u8>) -> u8 {
    const LOW_BYTES: u64 = 0x00ff_00ff_00ff_00ff;
    let mut lanes = 0u64;
    for w in words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_ne_bytes(b);
        lanes = lanes
            .wrapping_add(x & LOW_BYTES)
            .wrapping_add((x >> 8) & LOW_BYTES);
    }
    // Only the low byte of each lane counts mod 256: `as u8` keeps it.
    [0, 16, 32, 48]
        .iter()
        .fold(0u8, |acc, shift| acc.wrapping_add((lanes >> shift) as u8))
}

/// Returns true if `netfn_lun` carries a response netFn (odd).
pub(crate) fn is_response(netfn_lun: u8) -> bool {
    (netfn_lun >> 2) & 1 == 1
}

/// Returns true if `netfn` is a request netFn: 6 bits, even.
pub(crate) fn request_netfn(netfn: u8) -> bool {
    netfn < 64 && netfn & 1 == 0
}

/// Returns true if `addr` can be a slave address on IPMB (an even 8-bit address).
pub(crate) fn valid_address(addr: u8) -> bool {
    addr & 1 == 0
}

/// Checks a complete frame (address byte first) against every rule a receiver enforces.
///
/// `max_len` is the instance's maximum frame length, address byte included.
pub(crate) fn validate(frame: &[u8], max_len: usize) -> Result<(), FrameError> {
    if frame.len() > max_len {
        return Err(FrameError::TooLong);
    }
    if frame.len() < MIN_REQUEST_LEN {
        return Err(FrameError::TooShort);
    }
    if is_response(frame[NETFN_LUN]) && frame.len() < MIN_RESPONSE_LEN {
        return Err(FrameError::TooShort);
    }
    if checksum(&frame[DEST_SA..CS1]) != frame[CS1] {
        return Err(FrameError::BadHeaderChecksum);
    }
    let last = frame.len() - 1;
    if checksum(&frame[SRC_SA..last]) != frame[last] {
        return Err(FrameError::BadDataChecksum);
    }
    if !valid_address(frame[DEST_SA]) || !valid_address(frame[SRC_SA]) {
        return Err(FrameError::BadAddress);
    }
    Ok(())
}

/// The fields of a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Destination slave address (rsSA of a request, rqSA of a response).
    pub(crate) dest: u8,
    /// Network function (6 bits).
    pub(crate) netfn: u8,
    /// Destination LUN (2 bits).
    pub(crate) dest_lun: u8,
    /// Source slave address.
    pub(crate) src: u8,
    /// Sequence number (6 bits).
    pub(crate) seq: u8,
    /// Source LUN (2 bits).
    pub(crate) src_lun: u8,
    /// Command.
    pub(crate) cmd: u8,
}

impl Header {
    /// Decodes the header of a frame that passed [`validate`].
    pub(crate) fn parse(frame: &[u8]) -> Option<Header> {
        if frame.len() < MIN_REQUEST_LEN {
            return None;
        }
        Some(Header {
            dest: frame[DEST_SA],
            netfn: frame[NETFN_LUN] >> 2,
            dest_lun: frame[NETFN_LUN] & 3,
            src: frame[SRC_SA],
            seq: frame[SEQ_LUN] >> 2,
            src_lun: frame[SEQ_LUN] & 3,
            cmd: frame[CMD],
        })
    }
}

/// Builds a frame into `out` from a header and the body bytes that follow the command (the
/// completion code and data of a response, the data of a request), and returns its length.
///
/// Both checksums are computed here. Fails with [`FrameError::TooLong`] if the frame would
/// not fit `out` or `max_len`, and with [`FrameError::BadAddress`] for an odd address.
pub(crate) fn build(
    out: &mut [u8],
    max_len: usize,
    hdr: &Header,
    body: &[u8],
) -> Result<usize, FrameError> {
    let len = MIN_REQUEST_LEN + body.len();
    if len > max_len || len > out.len() {
        return Err(FrameError::TooLong);
    }
    if !valid_address(hdr.dest) || !valid_address(hdr.src) {
        return Err(FrameError::BadAddress);
    }
    out[DEST_SA] = hdr.dest;
    out[NETFN_LUN] = ((hdr.netfn & 0x3f) << 2) | (hdr.dest_lun & 3);
    out[CS1] = checksum(&out[DEST_SA..CS1]);
    out[SRC_SA] = hdr.src;
    out[SEQ_LUN] = ((hdr.seq & 0x3f) << 2) | (hdr.src_lun & 3);
    out[CMD] = hdr.cmd;
    out[CMD + 1..len - 1].copy_from_slice(body);
    out[len - 1] = checksum(&out[SRC_SA..len - 1]);
    Ok(len)
}

#[cfg(any(test, CONFIG_KUNIT))]
#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_frame))]
mod tests {
    use super::*;

    // Get Device ID request from 0x20 (BMC) to 0x72 (satellite), seq 1.
    const GET_DEVICE_ID: [u8; 7] = [0x72, 0x18, 0x76, 0x20, 0x04, 0x01, 0xdb];

    #[test]
    fn checksum_is_twos_complement() {
        assert_eq!(checksum(&[]), 0);
        assert_eq!(checksum(&[0x72, 0x18]), 0x76);
        assert_eq!(checksum(&[0x01]), 0xff);
        assert_eq!(checksum(&[0x80, 0x80]), 0);
    }

    #[test]
    fn checksum_matches_bytewise_sum_at_every_length() {
        // Every length up to 80 (around the 8-byte words), then lengths past one and two
        // blocks of 128 words; mostly 0xff bytes (the lanes' worst case: a block of 140 words
        // would overflow them), with other values between.
        let mut bytes = [0u8; 2 * 1024 + 40];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = if i % 7 == 3 {
                (i * 37 + 11) as u8
            } else {
                0xff
            };
        }
        let lengths = (0..=80)
            .chain((81..=bytes.len() - 8).step_by(37))
            .chain([1024, 2048]);
        for len in lengths {
            for start in 0..8 {
                let s = &bytes[start..start + len];
                let sum = s.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
                assert_eq!(checksum(s), sum.wrapping_neg());
                assert_eq!(sum_lanes(s), sum);
                assert_eq!(sum_bytes(s), sum);
            }
        }
    }

    #[test]
    fn valid_request_passes() {
        assert_eq!(validate(&GET_DEVICE_ID, SPEC_MAX_LEN), Ok(()));
    }

    #[test]
    fn short_frames_fail() {
        assert_eq!(
            validate(&GET_DEVICE_ID[..6], SPEC_MAX_LEN),
            Err(FrameError::TooShort)
        );
        assert_eq!(validate(&[], SPEC_MAX_LEN), Err(FrameError::TooShort));
        // A response needs a completion code: 7 bytes is a request's minimum, not a response's.
        let mut rsp = [0x20, 0x1c, 0xc4, 0x72, 0x04, 0x01, 0x00];
        rsp[6] = checksum(&rsp[3..6]);
        assert_eq!(validate(&rsp, SPEC_MAX_LEN), Err(FrameError::TooShort));
    }

    #[test]
    fn long_frames_fail() {
        let mut buf = [0u8; 33];
        let hdr = Header {
            dest: 0x20,
            netfn: 0x30,
            dest_lun: 0,
            src: 0x72,
            seq: 3,
            src_lun: 0,
            cmd: 1,
        };
        assert_eq!(build(&mut buf, 33, &hdr, &[0u8; 26]), Ok(33));
        assert_eq!(validate(&buf, SPEC_MAX_LEN), Err(FrameError::TooLong));
        assert_eq!(validate(&buf, 33), Ok(()));
    }

    #[test]
    fn header_checksum_checked() {
        let mut f = GET_DEVICE_ID;
        f[CS1] ^= 1;
        assert_eq!(
            validate(&f, SPEC_MAX_LEN),
            Err(FrameError::BadHeaderChecksum)
        );
    }

    #[test]
    fn data_checksum_checked() {
        let mut f = GET_DEVICE_ID;
        f[CMD] = 0x02;
        assert_eq!(validate(&f, SPEC_MAX_LEN), Err(FrameError::BadDataChecksum));
    }

    #[test]
    fn odd_addresses_fail() {
        let mut f = GET_DEVICE_ID;
        f[SRC_SA] = 0x21;
        f[6] = checksum(&f[SRC_SA..6]);
        assert_eq!(validate(&f, SPEC_MAX_LEN), Err(FrameError::BadAddress));
    }

    #[test]
    fn build_round_trips() {
        let hdr = Header {
            dest: 0x72,
            netfn: 0x06,
            dest_lun: 0,
            src: 0x20,
            seq: 1,
            src_lun: 0,
            cmd: 0x01,
        };
        let mut buf = [0u8; SPEC_MAX_LEN];
        assert_eq!(build(&mut buf, SPEC_MAX_LEN, &hdr, &[]), Ok(7));
        assert_eq!(buf[..7], GET_DEVICE_ID);
        assert_eq!(Header::parse(&buf[..7]), Some(hdr));
        assert!(!is_response(buf[NETFN_LUN]));
    }

    #[test]
    fn build_rejects_overflow_and_odd_address() {
        let mut hdr = Header {
            dest: 0x72,
            netfn: 0x06,
            dest_lun: 0,
            src: 0x20,
            seq: 1,
            src_lun: 0,
            cmd: 0x01,
        };
        let mut buf = [0u8; SPEC_MAX_LEN];
        assert_eq!(
            build(&mut buf, SPEC_MAX_LEN, &hdr, &[0u8; 26]),
            Err(FrameError::TooLong)
        );
        assert_eq!(
            build(&mut buf[..8], 40, &hdr, &[0u8; 2]),
            Err(FrameError::TooLong)
        );
        hdr.dest = 0x73;
        assert_eq!(
            build(&mut buf, SPEC_MAX_LEN, &hdr, &[]),
            Err(FrameError::BadAddress)
        );
    }
}
