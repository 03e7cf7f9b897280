// SPDX-License-Identifier: GPL-2.0

//! The open files of `/dev/ipmb-N`: `read`, `write`, `poll` and the ioctls.
//!
//! Each file has its own state ([`OpenFile`]): the device's shared state and, for the first
//! `MAX_CLIENTS` (64) files open at a time, a place with an inbox for asynchronous requests and
//! registered requests. The rules for contexts and locks are those of `rust/driver.rs`.

use kernel::{
    fs::{
        file::flags::O_NONBLOCK,
        File, //
    },
    ioctl,
    prelude::*,
    sync::{
        poll::PollTable,
        Arc, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice,
        UserSliceReader,
        UserSliceWriter, //
    },
};

use crate::{
    driver::{
        route_index,
        Inbox,
        Shared,
        Wake,
        MAX_LEN_LIMIT,
        REC_HDR, //
    },
    frame::{
        self,
        Header, //
    },
    miscdev,
    seqtab::{
        Key,
        Owner, //
    },
    uapi::{
        self,
        Msg, //
    },
};

const EPOLLIN: u32 = 0x0001;
const EPOLLPRI: u32 = 0x0002;
const EPOLLOUT: u32 = 0x0004;
const EPOLLERR: u32 = 0x0008;
const EPOLLHUP: u32 = 0x0010;
const EPOLLRDNORM: u32 = 0x0040;

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

/// One open file of `/dev/ipmb-N`.
///
/// # Invariants
///
/// If `client` is `Some(c)`, inbox place `c` of the shared state belongs to this file until
/// it is dropped.
pub(crate) struct OpenFile {
    shared: Arc<Shared>,
    client: Option<usize>,
}

impl Drop for OpenFile {
    /// Releases the file's registrations and inbox, and abandons its asynchronous requests.
    fn drop(&mut self) {
        let Some(c) = self.client else {
            return;
        };
        let inbox = {
            let mut g = self.shared.rx.lock();
            let now = self.shared.now();
            let st = &mut g.st;
            // At most `MAX_CLIENTS` (64).
            let tag = c as u8 + 1;
            for r in st.routes.iter_mut().filter(|r| **r == tag) {
                *r = 0;
            }
            let n = st.seqs.abandon_client(c as u8, now);
            st.counters.req_aborted += n as u64;
            st.clients.get_mut(c).and_then(Option::take)
        };
        self.shared.seq_free.notify_all();
        // Freed outside the IRQ-disabling lock.
        drop(inbox);
    }
}

impl OpenFile {
    fn nonblock(file: &File) -> bool {
        file.flags() & O_NONBLOCK != 0
    }

    fn receive(&self, file: &File, out: &mut UserSliceWriter) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let shared = &self.shared;
        let n = {
            let mut g = shared.rx.lock();
            loop {
                if g.st.dead {
                    return Err(ENODEV);
                }
                let inbox = g.st.inbox(c).ok_or(EMFILE)?;
                if let Some(n) = inbox.ring.pop_into(&mut rec) {
                    break n;
                }
                if Self::nonblock(file) {
                    return Err(EAGAIN);
                }
                let Some(cv) = shared.client_wait(c) else {
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
            let mut g = shared.rx.lock();
            let kept =
                g.st.inbox(c)
                    .is_some_and(|inbox| inbox.ring.push_front(&rec[..n]).is_ok());
            if !kept {
                // A routed request took the place meanwhile: count the loss.
                g.st.counters.rx_route_overflow += 1;
            }
            return Err(e);
        }
        Ok(())
    }

    fn submit(&self, file: &File, m: &mut Msg) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        let shared = &self.shared;
        let (key, p) = shared.prepare(m)?;
        let owner = Owner::Async(c as u8);
        let Some(mut p) = p else {
            // Too long: completed at once, through the inbox like any other outcome.
            let mut wake = Wake::default();
            let mut g = shared.rx.lock();
            let st = &mut g.st;
            match st.inbox(c) {
                Some(inbox) if inbox.has_room() => inbox.outstanding += 1,
                _ => return Err(EAGAIN),
            }
            let id = st.next_id;
            st.next_id += 1;
            st.counters.req_sent += 1;
            st.complete_synthesized((owner, id, key), 0, uapi::CC_TOO_LONG, &mut wake);
            drop(g);
            shared.wake(wake);
            m.id = id;
            m.seq = 0;
            return Ok(());
        };
        let (seq, id) = Shared::start(shared, &mut p, owner, Self::nonblock(file))?;
        m.id = id;
        m.seq = seq;
        Ok(())
    }

    fn register(&self, cmd: &uapi::Cmd, add: bool) -> Result {
        let c = self.client.ok_or(EMFILE)?;
        if !frame::request_netfn(cmd.netfn) || cmd.reserved != 0 {
            return Err(EINVAL);
        }
        let mut g = self.shared.rx.lock();
        if g.st.dead {
            return Err(ENODEV);
        }
        let slot =
            g.st.routes
                .get_mut(route_index(cmd.netfn, cmd.cmd))
                .ok_or(EINVAL)?;
        // At most `MAX_CLIENTS` (64).
        let tag = c as u8 + 1;
        match (add, *slot) {
            (true, 0) => *slot = tag,
            (true, t) if t == tag => {}
            (true, _) => return Err(EBUSY),
            (false, t) if t == tag => *slot = 0,
            (false, _) => return Err(ENOENT),
        }
        Ok(())
    }

    fn respond(&self, m: &Msg) -> Result {
        let c = self.client.ok_or(ENOENT)?;
        let shared = &self.shared;
        let ok = m.addressing_valid() && m.seq < 64;
        let data = match m.payload() {
            Some(d) if ok => d,
            _ => return Err(shared.invalid()),
        };
        {
            let g = shared.rx.lock();
            if g.st.dead {
                return Err(ENODEV);
            }
            if g.st.route(m.netfn, m.cmd) != Some(c) {
                return Err(ENOENT);
            }
        }
        let hdr = Header {
            dest: m.addr,
            netfn: m.netfn | 1,
            dest_lun: m.lun,
            src: shared.info.own_addr,
            seq: m.seq,
            src_lun: m.own_lun,
            cmd: m.cmd,
        };
        let mut body = [0u8; MAX_LEN_LIMIT];
        body[0] = m.cc;
        let body = body.get_mut(..data.len() + 1).ok_or(EMSGSIZE)?;
        body[1..].copy_from_slice(data);
        let mut f = [0u8; MAX_LEN_LIMIT];
        let len = frame::build(&mut f, shared.max_len, &hdr, body).map_err(|_| EMSGSIZE)?;
        shared.send(&f[..len], false)
    }

    fn stats(&self) -> Result<uapi::Stats> {
        let g = self.shared.rx.lock();
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

impl miscdev::MiscFile for OpenFile {
    type Device = Shared;

    fn open(dev: &Arc<Shared>) -> Result<Self> {
        // A place for an inbox, if one is free: files beyond `MAX_CLIENTS` can still read,
        // write and make synchronous requests.
        let mut inbox = Some(Inbox::new(dev.max_len)?);
        let client = {
            let mut g = dev.rx.lock();
            let free = g.st.clients.iter().position(Option::is_none);
            if let Some(place) = free.and_then(|c| g.st.clients.get_mut(c)) {
                *place = inbox.take();
            }
            free
        };
        drop(inbox);
        if let Some(c) = client {
            if let Err(e) = dev.add_client_wait(c) {
                // Give the place back: without a wait queue its inbox cannot be waited on.
                let freed = dev.rx.lock().st.clients.get_mut(c).and_then(Option::take);
                drop(freed);
                return Err(e);
            }
        }
        // INVARIANT: place `client` was free and now holds this file's inbox.
        Ok(Self {
            shared: dev.clone(),
            client,
        })
    }

    fn read(&self, file: &File, mut buf: UserSliceWriter) -> Result<usize> {
        let shared = &self.shared;
        let mut out = [0u8; 1 + MAX_LEN_LIMIT];
        let n = {
            let mut guard = shared.rx.lock();
            loop {
                if guard.st.dead {
                    return Err(ENODEV);
                }
                if let Some(n) = guard.st.ring.pop_into(&mut out[1..]) {
                    break n;
                }
                if Self::nonblock(file) {
                    return Err(EAGAIN);
                }
                if shared.wait.wait_interruptible(&mut guard) {
                    return Err(ERESTARTSYS);
                }
            }
        };
        // The length byte counts every byte after itself; frames are at most 240 bytes.
        out[0] = n as u8;
        let count = buf.len().min(n + 1);
        if let Err(e) = buf.write_slice(&out[..count]) {
            // The reader did not get the frame: put it back at the head for the next one.
            let mut guard = shared.rx.lock();
            if guard.st.ring.push_front(&out[1..=n]).is_err() {
                guard.st.counters.rx_overflow += 1;
            }
            drop(guard);
            shared.wait.notify_all();
            return Err(e);
        }
        Ok(count)
    }

    fn write(&self, _file: &File, mut buf: UserSliceReader) -> Result<usize> {
        let shared = &self.shared;
        let count = buf.len();
        let mut msg = [0u8; 1 + MAX_LEN_LIMIT];
        if count == 0 || count > msg.len() {
            return Err(shared.invalid());
        }
        buf.read_slice(&mut msg[..count])?;
        let len = usize::from(msg[0]);
        if len < frame::MIN_REQUEST_LEN || count < len + 1 {
            return Err(shared.invalid());
        }
        let frame = &msg[1..=len];
        if frame::validate(frame, shared.max_len).is_err() {
            return Err(shared.invalid());
        }
        if !frame::is_response(frame[frame::NETFN_LUN]) {
            // Keep the seq of a request sent this way away from our own requests for the
            // same exchange: its response belongs to read().
            if let Some(h) = Header::parse(frame) {
                let mut g = shared.rx.lock();
                let now = shared.now();
                if !g.st.seqs.note_external(Key::of_request(&h), h.seq, now) {
                    return Err(EBUSY);
                }
            }
        }
        shared.send(frame, false)?;
        Ok(count)
    }

    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let size = ioctl::_IOC_SIZE(cmd);
        let user = UserSlice::new(UserPtr::from_addr(arg), size);
        match cmd {
            uapi::IOC_INFO => {
                if self.shared.rx.lock().st.dead {
                    return Err(ENODEV);
                }
                user.writer().write(&IoctlOut(self.shared.info))?;
            }
            uapi::IOC_STATS => user.writer().write(&IoctlOut(self.stats()?))?,
            uapi::IOC_REQUEST | uapi::IOC_SUBMIT => {
                let (mut reader, mut writer) = user.reader_writer();
                let IoctlIn(mut m) = reader.read::<IoctlIn<Msg>>()?;
                if cmd == uapi::IOC_REQUEST {
                    Shared::request(&self.shared, &mut m, Self::nonblock(file))?;
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

    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        let shared = &self.shared;
        table.register_wait(file, &shared.wait);
        if let Some(cv) = self.client.and_then(|c| shared.client_wait(c)) {
            table.register_wait(file, cv);
        }
        let mut g = shared.rx.lock();
        let mut mask = EPOLLOUT;
        if !g.st.ring.is_empty() {
            mask |= EPOLLIN | EPOLLRDNORM;
        }
        if let Some(inbox) = self.client.and_then(|c| g.st.inbox(c)) {
            if !inbox.ring.is_empty() {
                mask |= EPOLLPRI;
            }
        }
        if g.st.dead {
            mask |= EPOLLIN | EPOLLHUP | EPOLLERR;
        }
        mask
    }
}
