// SPDX-License-Identifier: GPL-2.0

//! The ioctls of `/dev/ipmb-N`: the ABI of `include/uapi/linux/ipmb.h` (mirrored in
//! `rust/uapi.rs`).
//!
//! `IPMB_IOC_INFO` and `IPMB_IOC_STATS` describe the instance; `IPMB_IOC_REQUEST` sends a
//! request and waits for its response; `IPMB_IOC_SUBMIT` sends one whose completion arrives
//! in the file's inbox, read with `IPMB_IOC_RECEIVE`, as do the requests routed to the file by
//! `IPMB_IOC_REGISTER` (a pair, or the default route), which it answers with
//! `IPMB_IOC_RESPOND`. The structures cross the
//! user boundary whole, through their `kernel::transmute` byte views (`rust/uapi.rs`); every
//! message read from userspace is checked for unknown flags and reserved bits first.

use core::mem::{
    offset_of,
    MaybeUninit, //
};
use kernel::{
    fs::File,
    ioctl::{
        self,
        _IOR,
        _IOW,
        _IOWR, //
    },
    prelude::*,
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceWriter, //
    },
};

use super::OpenFile;
use crate::{
    abstractions::stack_buf::zeroed_prefix,
    instance::{
        Instance,
        Queue,
        Wake,
        MAX_LEN_LIMIT,
        REC_HDR, //
    },
    proto::frame::{
        self,
        Header, //
    },
    uapi::{
        self,
        Cmd,
        Info,
        Msg,
        Stats, //
    },
};

/// `IPMB_IOC_INFO`.
const IOC_INFO: u32 = _IOR::<Info>(uapi::IOC_MAGIC, uapi::NR_INFO);
/// `IPMB_IOC_STATS`.
const IOC_STATS: u32 = _IOR::<Stats>(uapi::IOC_MAGIC, uapi::NR_STATS);
/// `IPMB_IOC_REQUEST`.
const IOC_REQUEST: u32 = _IOWR::<Msg>(uapi::IOC_MAGIC, uapi::NR_REQUEST);
/// `IPMB_IOC_SUBMIT`.
const IOC_SUBMIT: u32 = _IOWR::<Msg>(uapi::IOC_MAGIC, uapi::NR_SUBMIT);
/// `IPMB_IOC_RECEIVE`.
const IOC_RECEIVE: u32 = _IOR::<Msg>(uapi::IOC_MAGIC, uapi::NR_RECEIVE);
/// `IPMB_IOC_REGISTER`.
const IOC_REGISTER: u32 = _IOW::<Cmd>(uapi::IOC_MAGIC, uapi::NR_REGISTER);
/// `IPMB_IOC_UNREGISTER`.
const IOC_UNREGISTER: u32 = _IOW::<Cmd>(uapi::IOC_MAGIC, uapi::NR_UNREGISTER);
/// `IPMB_IOC_RESPOND`.
const IOC_RESPOND: u32 = _IOW::<Msg>(uapi::IOC_MAGIC, uapi::NR_RESPOND);

/// The part of `m` that `IPMB_IOC_REQUEST` and `IPMB_IOC_SUBMIT` write back: every field and
/// the used part of `data`. The rest of `data` is what the caller passed in (`m` was read from
/// it), so writing it back would change nothing but cost a copy of up to 240 bytes.
fn written_back(m: &Msg) -> &[u8] {
    let bytes = m.as_bytes();
    let used = offset_of!(Msg, data) + usize::from(m.data_len);
    bytes.get(..used).unwrap_or(bytes)
}

impl OpenFile {
    /// Handles ioctl `cmd` with the user pointer `arg` (every command of `ipmb.h` takes one).
    pub(super) fn dispatch_ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let size = ioctl::_IOC_SIZE(cmd);
        let user = UserSlice::new(UserPtr::from_addr(arg), size);
        match cmd {
            IOC_INFO => {
                if self.instance.rx.lock().st.dead {
                    return Err(ENODEV);
                }
                user.writer().write(&self.instance.info)?;
            }
            IOC_STATS => user.writer().write(&self.stats()?)?,
            IOC_REQUEST | IOC_SUBMIT => {
                let (mut reader, mut writer) = user.reader_writer();
                let mut m = reader.read::<Msg>()?;
                if !m.input_valid(uapi::REQUEST_FLAGS) {
                    return Err(self.instance.invalid());
                }
                if cmd == IOC_REQUEST {
                    Instance::request(&self.instance, &mut m, Self::nonblock(file))?;
                } else {
                    self.submit(file, &mut m)?;
                }
                writer.write_slice(written_back(&m))?;
            }
            IOC_RECEIVE => self.receive(file, &mut user.writer())?,
            IOC_REGISTER | IOC_UNREGISTER => {
                let c = user.reader().read::<Cmd>()?;
                self.register(&c, cmd == IOC_REGISTER)?;
            }
            IOC_RESPOND => {
                let m = user.reader().read::<Msg>()?;
                if !m.input_valid(uapi::RESPOND_FLAGS) {
                    return Err(self.instance.invalid());
                }
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
                if g.st.clients.inbox(c).is_none() {
                    return Err(EMFILE);
                }
                // Its place stays reserved until the copy below is done.
                if let Some(n) = g.st.clients.take(c, Queue::Inbox, &mut rec) {
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
        let mut m: Msg = pin_init::zeroed();
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
        let copied = out.write(&m);
        let mut wake = Wake::default();
        {
            let mut g = instance.rx.lock();
            if copied.is_ok() {
                g.st.clients.delivered(c, Queue::Inbox);
            } else if !g.st.clients.put_back(c, Queue::Inbox, &rec[..n], &mut wake) {
                // Not delivered, and the file has no inbox to put it back into: count the
                // loss (the place was kept for it, so this does not happen).
                g.st.counters.rx_route_overflow += 1;
            }
        }
        instance.wake(wake);
        copied
    }

    fn submit(&self, file: &File, m: &mut Msg) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        Instance::submit(&self.instance, c, m, Self::nonblock(file))
    }

    /// `IPMB_IOC_REGISTER` (`add`) and `IPMB_IOC_UNREGISTER`: a (netFn, cmd) pair, or with
    /// `IPMB_CMD_DEFAULT` (netFn and cmd 0) the default route.
    fn register(&self, cmd: &Cmd, add: bool) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        let default = cmd.flags == uapi::CMD_DEFAULT;
        let valid = match cmd.flags {
            0 => frame::request_netfn(cmd.netfn),
            uapi::CMD_DEFAULT => cmd.netfn == 0 && cmd.cmd == 0,
            _ => false,
        };
        if !valid || cmd.reserved != 0 {
            return Err(EINVAL);
        }
        let mut g = self.instance.rx.lock();
        if g.st.dead {
            return Err(ENODEV);
        }
        if default {
            g.st.clients.register_default(c, add)
        } else {
            g.st.clients.register(c, cmd.netfn, cmd.cmd, add)
        }
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
        // Only the parts the answer fills are initialised, at least IPMB's 32 bytes, in line
        // ([`zeroed_prefix`]).
        if data.len() >= MAX_LEN_LIMIT {
            return Err(EMSGSIZE);
        }
        let mut body = MaybeUninit::<[u8; MAX_LEN_LIMIT]>::uninit();
        let body = zeroed_prefix::<_, { frame::SPEC_MAX_LEN }>(&mut body, data.len() + 1);
        body[0] = m.cc;
        body[1..].copy_from_slice(data);
        let mut f = MaybeUninit::<[u8; MAX_LEN_LIMIT]>::uninit();
        // A frame longer than the buffer is refused by `build` as before.
        let f = zeroed_prefix::<_, { frame::SPEC_MAX_LEN }>(
            &mut f,
            frame::MIN_REQUEST_LEN + body.len(),
        );
        let len = frame::build(f, instance.max_len, &hdr, body).map_err(|_| EMSGSIZE)?;
        instance.send(&f[..len], false)
    }

    fn stats(&self) -> Result<Stats> {
        let g = self.instance.rx.lock();
        if g.st.dead {
            return Err(ENODEV);
        }
        let mut stats = Stats {
            rx_queued: g.st.ring.len() as u64,
            req_inflight: g.st.seqs.busy() as u64,
            ..pin_init::zeroed()
        };
        stats.set_counters(&g.st.counters.values());
        Ok(stats)
    }
}
