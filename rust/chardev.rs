// SPDX-License-Identifier: GPL-2.0

//! The open files of `/dev/ipmb-N`: `open`, `read`, `write`, `poll` and release, the file ABI
//! of the in-tree C driver `ipmb_dev_int`.
//!
//! `read()` returns the oldest queued frame as `[len, frame without its address byte...]`
//! (truncated to the buffer); `write()` takes a frame in the same format and sends it.
//! Each file has its own state ([`OpenFile`]): the instance and, for the first `MAX_CLIENTS`
//! (64) files open at a time, a client place with an inbox for asynchronous requests and
//! registered requests. The ioctls (the `ipmb.h` ABI) are in `chardev/ioctl.rs`. The rules for
//! contexts and locks are those of `rust/instance.rs`.

use kernel::{
    fs::{
        file::flags::O_NONBLOCK,
        File, //
    },
    prelude::*,
    sync::{
        poll::PollTable,
        Arc, //
    },
    uaccess::{
        UserSliceReader,
        UserSliceWriter, //
    },
};

use crate::{
    abstractions::miscdev,
    instance::{
        Inbox,
        Instance,
        MAX_LEN_LIMIT, //
    },
    proto::{
        frame::{
            self,
            Header, //
        },
        seqtab::Key,
    },
};

mod ioctl;

const EPOLLIN: u32 = 0x0001;
const EPOLLPRI: u32 = 0x0002;
const EPOLLOUT: u32 = 0x0004;
const EPOLLERR: u32 = 0x0008;
const EPOLLHUP: u32 = 0x0010;
const EPOLLRDNORM: u32 = 0x0040;

/// One open file of `/dev/ipmb-N`.
///
/// # Invariants
///
/// If `client` is `Some(c)`, inbox place `c` of the instance belongs to this file until
/// it is dropped.
pub(crate) struct OpenFile {
    instance: Arc<Instance>,
    client: Option<usize>,
}

impl Drop for OpenFile {
    /// Releases the file's registrations and inbox, and abandons its asynchronous requests.
    fn drop(&mut self) {
        let Some(c) = self.client else {
            return;
        };
        let inbox = {
            let mut g = self.instance.rx.lock();
            let now = self.instance.now();
            let st = &mut g.st;
            let n = st.seqs.abandon_client(c as u8, now);
            st.counters.req_aborted += n as u64;
            st.clients.release(c)
        };
        self.instance.seq_free.notify_all();
        // Freed outside the IRQ-disabling lock.
        drop(inbox);
    }
}

impl OpenFile {
    /// True if `file` was opened with `O_NONBLOCK`.
    fn nonblock(file: &File) -> bool {
        file.flags() & O_NONBLOCK != 0
    }
}

impl miscdev::MiscFile for OpenFile {
    type Device = Instance;

    fn open(dev: &Arc<Instance>) -> Result<Self> {
        // A place for an inbox, if one is free: files beyond `MAX_CLIENTS` can still read,
        // write and make synchronous requests.
        let mut inbox = Some(Inbox::new(dev.max_len)?);
        let client = dev.rx.lock().st.clients.open(&mut inbox);
        drop(inbox);
        if let Some(c) = client {
            if let Err(e) = dev.add_client_wait(c) {
                // Give the place back: without a wait queue its inbox cannot be waited on.
                let freed = dev.rx.lock().st.clients.release(c);
                drop(freed);
                return Err(e);
            }
        }
        // INVARIANT: place `client` was free and now holds this file's inbox.
        Ok(Self {
            instance: dev.clone(),
            client,
        })
    }

    fn read(&self, file: &File, mut buf: UserSliceWriter) -> Result<usize> {
        let instance = &self.instance;
        let mut out = [0u8; 1 + MAX_LEN_LIMIT];
        let n = {
            let mut guard = instance.rx.lock();
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
                if instance.wait.wait_interruptible(&mut guard) {
                    return Err(ERESTARTSYS);
                }
            }
        };
        // The length byte counts every byte after itself; frames are at most 240 bytes.
        out[0] = n as u8;
        let count = buf.len().min(n + 1);
        if let Err(e) = buf.write_slice(&out[..count]) {
            // The reader did not get the frame: put it back at the head for the next one.
            let mut guard = instance.rx.lock();
            if guard.st.ring.push_front(&out[1..=n]).is_err() {
                guard.st.counters.rx_overflow += 1;
            }
            drop(guard);
            instance.wait.notify_all();
            return Err(e);
        }
        Ok(count)
    }

    fn write(&self, _file: &File, mut buf: UserSliceReader) -> Result<usize> {
        let instance = &self.instance;
        let count = buf.len();
        let mut msg = [0u8; 1 + MAX_LEN_LIMIT];
        if count == 0 || count > msg.len() {
            return Err(instance.invalid());
        }
        buf.read_slice(&mut msg[..count])?;
        let len = usize::from(msg[0]);
        if len < frame::MIN_REQUEST_LEN || count < len + 1 {
            return Err(instance.invalid());
        }
        let frame = &msg[1..=len];
        if frame::validate(frame, instance.max_len).is_err() {
            return Err(instance.invalid());
        }
        if !frame::is_response(frame[frame::NETFN_LUN]) {
            // Keep the seq of a request sent this way away from our own requests for the
            // same exchange: its response belongs to read().
            if let Some(h) = Header::parse(frame) {
                let mut g = instance.rx.lock();
                let now = instance.now();
                if !g.st.seqs.note_external(Key::of_request(&h), h.seq, now) {
                    return Err(EBUSY);
                }
            }
        }
        instance.send(frame, false)?;
        Ok(count)
    }

    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        self.dispatch_ioctl(file, cmd, arg)
    }

    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        let instance = &self.instance;
        table.register_wait(file, &instance.wait);
        if let Some(cv) = self.client.and_then(|c| instance.client_wait(c)) {
            table.register_wait(file, cv);
        }
        let mut g = instance.rx.lock();
        let mut mask = EPOLLOUT;
        if !g.st.ring.is_empty() {
            mask |= EPOLLIN | EPOLLRDNORM;
        }
        if let Some(inbox) = self.client.and_then(|c| g.st.clients.inbox(c)) {
            if !inbox.is_empty() {
                mask |= EPOLLPRI;
            }
        }
        if g.st.dead {
            mask |= EPOLLIN | EPOLLHUP | EPOLLERR;
        }
        mask
    }
}
