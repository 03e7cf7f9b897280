// SPDX-License-Identifier: GPL-2.0

//! The ioctls of `/dev/ipmb-N`: the ABI of `include/uapi/linux/ipmb.h` (mirrored in
//! `rust/uapi.rs`).
//!
//! `IPMB_IOC_INFO` and `IPMB_IOC_STATS` describe the instance; `IPMB_IOC_REQUEST` sends a
//! request and waits for its response; `IPMB_IOC_SUBMIT` sends one whose completion arrives
//! in the file's inbox, read with `IPMB_IOC_RECEIVE`, as do the requests routed to the file by
//! `IPMB_IOC_REGISTER`, which it answers with `IPMB_IOC_RESPOND`. Structures cross the user
//! boundary only through [`IoctlIn`] and [`IoctlOut`].

use kernel::{
    fs::File,
    ioctl,
    prelude::*,
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceWriter, //
    },
};

use super::OpenFile;
use crate::{
    instance::{
        Instance,
        MAX_LEN_LIMIT,
        REC_HDR, //
    },
    proto::frame::{
        self,
        Header, //
    },
    uapi::{
        self,
        Msg, //
    },
};

/// A uapi structure on its way to userspace.
#[repr(transparent)]
struct IoctlOut<T>(T);

// SAFETY: `uapi::Info` is `#[repr(C)]` with integer fields only and, as `rust/uapi.rs` asserts
// at compile time, no padding: every byte is initialised.
unsafe impl AsBytes for IoctlOut<uapi::Info> {}
// SAFETY: `uapi::Stats` is `#[repr(C)]` with `u64` fields only, no padding (asserted likewise).
unsafe impl AsBytes for IoctlOut<uapi::Stats> {}
// SAFETY: `uapi::Msg` is `#[repr(C)]` with integer fields only, no padding (asserted likewise).
unsafe impl AsBytes for IoctlOut<uapi::Msg> {}

/// A uapi structure coming from userspace.
#[repr(transparent)]
#[derive(Default)]
struct IoctlIn<T>(T);

// SAFETY: `uapi::Msg` is `#[repr(C)]` with integer fields only: any bytes are a valid value.
unsafe impl FromBytes for IoctlIn<uapi::Msg> {}
// SAFETY: `uapi::Cmd` is `#[repr(C)]` with integer fields only: any bytes are a valid value.
unsafe impl FromBytes for IoctlIn<uapi::Cmd> {}

impl OpenFile {
    /// Handles ioctl `cmd` with the user pointer `arg` (every command of `ipmb.h` takes one).
    pub(super) fn dispatch_ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let size = ioctl::_IOC_SIZE(cmd);
        let user = UserSlice::new(UserPtr::from_addr(arg), size);
        match cmd {
            uapi::IOC_INFO => {
                if self.instance.rx.lock().st.dead {
                    return Err(ENODEV);
                }
                user.writer().write(&IoctlOut(self.instance.info))?;
            }
            uapi::IOC_STATS => user.writer().write(&IoctlOut(self.stats()?))?,
            uapi::IOC_REQUEST | uapi::IOC_SUBMIT => {
                let (mut reader, mut writer) = user.reader_writer();
                let IoctlIn(mut m) = reader.read::<IoctlIn<Msg>>()?;
                if cmd == uapi::IOC_REQUEST {
                    Instance::request(&self.instance, &mut m, Self::nonblock(file))?;
                } else {
                    self.submit(file, &mut m)?;
                }
                writer.write(&IoctlOut(m))?;
            }
            uapi::IOC_RECEIVE => self.receive(file, &mut user.writer())?,
            uapi::IOC_REGISTER | uapi::IOC_UNREGISTER => {
                let IoctlIn(c) = user.reader().read::<IoctlIn<uapi::Cmd>>()?;
                self.register(&c, cmd == uapi::IOC_REGISTER)?;
            }
            uapi::IOC_RESPOND => {
                let IoctlIn(m) = user.reader().read::<IoctlIn<Msg>>()?;
                self.respond(&m)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    fn receive(&self, file: &File, out: &mut UserSliceWriter) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let instance = &self.instance;
        let n = {
            let mut g = instance.rx.lock();
            loop {
                if g.st.dead {
                    return Err(ENODEV);
                }
                let inbox = g.st.clients.inbox(c).ok_or(EMFILE)?;
                if let Some(n) = inbox.pop_into(&mut rec) {
                    break n;
                }
                if Self::nonblock(file) {
                    return Err(EAGAIN);
                }
                let Some(cv) = instance.client_wait(c) else {
                    return Err(EMFILE);
                };
                if cv.wait_interruptible(&mut g) {
                    return Err(ERESTARTSYS);
                }
            }
        };
        let mut m = Msg::default();
        let f = rec.get(REC_HDR..n).unwrap_or(&[]);
        m.kind = rec[0];
        m.flags = rec[1];
        let mut id = [0u8; 8];
        id.copy_from_slice(&rec[2..REC_HDR]);
        m.id = u64::from_le_bytes(id);
        if m.kind == uapi::KIND_REQUEST {
            m.set_request(f);
        } else {
            m.set_response(f);
        }
        if let Err(e) = out.write(&IoctlOut(m)) {
            // Not delivered: put it back at the head for the next call.
            let mut g = instance.rx.lock();
            if !g.st.clients.requeue(c, &rec[..n]) {
                // A routed request took the place meanwhile: count the loss.
                g.st.counters.rx_route_overflow += 1;
            }
            return Err(e);
        }
        Ok(())
    }

    fn submit(&self, file: &File, m: &mut Msg) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        Instance::submit(&self.instance, c, m, Self::nonblock(file))
    }

    fn register(&self, cmd: &uapi::Cmd, add: bool) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        if !frame::request_netfn(cmd.netfn) || cmd.reserved != 0 {
            return Err(EINVAL);
        }
        let mut g = self.instance.rx.lock();
        if g.st.dead {
            return Err(ENODEV);
        }
        g.st.clients.register(c, cmd.netfn, cmd.cmd, add)
    }

    fn respond(&self, m: &Msg) -> Result {
        let c = self.client.ok_or(ENOENT)?;
        let instance = &self.instance;
        let ok = m.addressing_valid() && m.seq < 64;
        let data = match m.payload() {
            Some(d) if ok => d,
            _ => return Err(instance.invalid()),
        };
        {
            let g = instance.rx.lock();
            if g.st.dead {
                return Err(ENODEV);
            }
            if g.st.clients.route(m.netfn, m.cmd) != Some(c) {
                return Err(ENOENT);
            }
        }
        let hdr = Header {
            dest: m.addr,
            netfn: m.netfn | 1,
            dest_lun: m.lun,
            src: instance.info.own_addr,
            seq: m.seq,
            src_lun: m.own_lun,
            cmd: m.cmd,
        };
        let mut body = [0u8; MAX_LEN_LIMIT];
        body[0] = m.cc;
        let body = body.get_mut(..data.len() + 1).ok_or(EMSGSIZE)?;
        body[1..].copy_from_slice(data);
        let mut f = [0u8; MAX_LEN_LIMIT];
        let len = frame::build(&mut f, instance.max_len, &hdr, body).map_err(|_| EMSGSIZE)?;
        instance.send(&f[..len], false)
    }

    fn stats(&self) -> Result<uapi::Stats> {
        let g = self.instance.rx.lock();
        if g.st.dead {
            return Err(ENODEV);
        }
        Ok(uapi::Stats {
            counters: g.st.counters.values(),
            rx_queued: g.st.ring.len() as u64,
            req_inflight: g.st.seqs.busy() as u64,
            reserved: [0; 7],
        })
    }
}
