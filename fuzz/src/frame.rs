// SPDX-License-Identifier: GPL-2.0

//! Frame parse/build round trip and the checksum rules, against a re-implementation of the
//! frame rules of `Documentation/ipmb.rst` and the IPMB specification.
//!
//! Input: the maximum frame length (one byte), an output buffer length (one byte), then the
//! bytes, taken both as a received frame and as a header plus body to build.

use crate::{
    input::Input,
    proto::frame::{
        self,
        FrameError,
        Header, //
    },
};

/// The two's complement checksum, as the specification words it: the byte that makes the
/// 8-bit sum of the covered bytes and itself zero.
pub(crate) fn model_checksum(bytes: &[u8]) -> u8 {
    let sum: u32 = bytes.iter().map(|&b| u32::from(b)).sum();
    ((256 - sum % 256) % 256) as u8
}

/// Every rule a receiver checks, in the order the driver reports them (the first broken
/// rule names the drop's counter): length limit, minimum length (a response carries a
/// completion code), header checksum, data checksum, even addresses.
pub(crate) fn model_validate(f: &[u8], max_len: usize) -> Result<(), FrameError> {
    if f.len() > max_len {
        return Err(FrameError::TooLong);
    }
    if f.len() < 7 {
        return Err(FrameError::TooShort);
    }
    let response = (f[1] >> 2) % 2 == 1;
    if response && f.len() < 8 {
        return Err(FrameError::TooShort);
    }
    if (u32::from(f[0]) + u32::from(f[1]) + u32::from(f[2])) % 256 != 0 {
        return Err(FrameError::BadHeaderChecksum);
    }
    if f[3..].iter().map(|&b| u32::from(b)).sum::<u32>() % 256 != 0 {
        return Err(FrameError::BadDataChecksum);
    }
    if f[0] % 2 == 1 || f[3] % 2 == 1 {
        return Err(FrameError::BadAddress);
    }
    Ok(())
}

/// The frame the specification lays out for `hdr` and `body`, fields masked to their widths.
fn model_build(hdr: &Header, body: &[u8]) -> Vec<u8> {
    let mut f = vec![hdr.dest, (hdr.netfn % 64) * 4 + hdr.dest_lun % 4];
    f.push(model_checksum(&f));
    f.extend_from_slice(&[hdr.src, (hdr.seq % 64) * 4 + hdr.src_lun % 4, hdr.cmd]);
    f.extend_from_slice(body);
    f.push(model_checksum(&f[3..]));
    f
}

/// Checks one received frame: validation, and for a valid one the header, the rebuild and
/// the detection of any one corrupted byte.
fn check_received(f: &[u8], max_len: usize, flip: u8) {
    let got = frame::validate(f, max_len);
    assert_eq!(
        got,
        model_validate(f, max_len),
        "validate {f:02x?} max {max_len}"
    );
    if got.is_err() {
        return;
    }
    let hdr = Header::parse(f);
    let expected = Header {
        dest: f[0],
        netfn: f[1] >> 2,
        dest_lun: f[1] & 3,
        src: f[3],
        seq: f[4] >> 2,
        src_lun: f[4] & 3,
        cmd: f[5],
    };
    assert_eq!(hdr, Some(expected));
    assert_eq!(frame::is_response(f[1]), expected.netfn % 2 == 1);
    // Parse then build gives the same bytes back.
    let mut out = [0u8; 256];
    let body = &f[6..f.len() - 1];
    assert_eq!(
        frame::build(&mut out, max_len, &expected, body),
        Ok(f.len())
    );
    assert_eq!(&out[..f.len()], f);
    // Both checksums catch any one changed byte.
    let x = flip.max(1);
    for i in 0..f.len() {
        let mut g = f.to_vec();
        g[i] ^= x;
        assert!(
            frame::validate(&g, max_len).is_err(),
            "byte {i} ^ {x:#x} of {f:02x?} not detected"
        );
    }
}

/// Checks building a frame from arbitrary header fields and body into an `out_len` buffer.
fn check_build(b: &[u8], max_len: usize, out_len: usize) {
    if b.len() < 7 {
        return;
    }
    let hdr = Header {
        dest: b[0],
        netfn: b[1],
        dest_lun: b[2],
        src: b[3],
        seq: b[4],
        src_lun: b[5],
        cmd: b[6],
    };
    let body = &b[7..];
    let mut out = vec![0u8; out_len];
    let got = frame::build(&mut out, max_len, &hdr, body);
    let len = 7 + body.len();
    if len > max_len || len > out_len {
        assert_eq!(got, Err(FrameError::TooLong));
        return;
    }
    if hdr.dest % 2 == 1 || hdr.src % 2 == 1 {
        assert_eq!(got, Err(FrameError::BadAddress));
        return;
    }
    assert_eq!(got, Ok(len));
    let f = &out[..len];
    assert_eq!(f, &model_build(&hdr, body)[..]);
    // A built frame is valid, except a response without its completion code.
    let response = hdr.netfn % 2 == 1;
    let expected = if response && body.is_empty() {
        Err(FrameError::TooShort)
    } else {
        Ok(())
    };
    assert_eq!(frame::validate(f, max_len), expected);
    let masked = Header {
        netfn: hdr.netfn & 0x3f,
        dest_lun: hdr.dest_lun & 3,
        seq: hdr.seq & 0x3f,
        src_lun: hdr.src_lun & 3,
        ..hdr
    };
    assert_eq!(Header::parse(f), Some(masked));
}

/// The small predicates and the checksum itself.
fn check_rules(b: &[u8]) {
    assert_eq!(frame::checksum(b), model_checksum(b));
    let mut with = b.to_vec();
    with.push(frame::checksum(b));
    assert_eq!(model_checksum(&with), 0);
    for &x in b.iter().take(4) {
        assert_eq!(frame::valid_address(x), x % 2 == 0);
        assert_eq!(frame::is_response(x), (x / 4) % 2 == 1);
        assert_eq!(frame::request_netfn(x), x < 64 && x % 2 == 0);
    }
}

/// One fuzz input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let max_len = usize::from(input.u8());
    let out_len = usize::from(input.u8());
    let b = input.rest();
    check_rules(b);
    check_received(b, max_len, out_len as u8);
    // With the header checksum fixed up, the later rules are reached far more often.
    if b.len() >= 3 {
        let mut f = b.to_vec();
        f[2] = model_checksum(&f[..2]);
        check_received(&f, max_len, out_len as u8);
        let last = f.len() - 1;
        if last >= 3 {
            f[last] = model_checksum(&f[3..last]);
            check_received(&f, max_len, out_len as u8);
        }
    }
    check_build(b, max_len, out_len);
}
