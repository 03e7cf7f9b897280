// SPDX-License-Identifier: GPL-2.0

//! The open files of `/dev/ipmb-N`: `open`, `read`, `write`, `poll` and release, the file ABI
//! of the in-tree C driver `ipmb_dev_int`.
//!
//! `read()` returns the oldest queued frame as `[len, frame without its address byte...]`
//! (truncated to the buffer); `write()` takes a frame in the same format and sends it.
//! Each file has its own state ([`OpenFile`]): the instance and, for the first `MAX_CLIENTS`
//! (64) files open at a time, a client place with an inbox for asynchronous requests and
//! registered requests, and a reply box for the responses to the requests it wrote: its
//! `read()` takes those and the shared queue's frames in arrival order
//! (`instance/writers.rs`). The ioctls (the `ipmb.h` ABI) are in `chardev/ioctl.rs`. The rules for
//! contexts and locks are those of `rust/instance.rs`.

use core::mem::MaybeUninit;
use kernel::{
    fs::{
        file::flags::O_NONBLOCK,
        File, //
    },
    prelude::*,
    sync::Arc,
    uaccess::UserSliceReader,
};

use crate::{
    abstractions::{
        miscdev::{
            self,
            ReadTarget, //
        },
        poll_queue::PollTable,
        stack_buf::zeroed_prefix, //
    },
    instance::{
        Inbox,
        Instance,
        ReadBuf,
        Reopen,
        Source,
        Wake,
        MAX_LEN_LIMIT,
        REPLY_HDR, //
    },
    proto::frame::{
        self,
        Header, //
    },
};

mod ioctl;

const EPOLLIN: u32 = 0x0001;
const EPOLLPRI: u32 = 0x0002;
const EPOLLOUT: u32 = 0x0004;
const EPOLLERR: u32 = 0x0008;
const EPOLLHUP: u32 = 0x0010;
const EPOLLRDNORM: u32 = 0x0040;

/// Bytes `read()` zeroes in its buffer at least ([`zeroed_prefix`]): a fixed count the
/// compiler zeroes in line, which covers a frame of IPMB's 32 bytes and its header.
const ZEROED_MIN: usize = 64;

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
        let (abandoned, inbox) = {
            let mut g = self.instance.rx.lock();
            let st = &mut g.st;
            // Every asynchronous request in flight holds a place of its client's inbox
            // (`instance/clients.rs`): without one there is none to abandon, and no seq table
            // to scan or clock to read.
            let n = if st.clients.has_reservations(c) {
                let now = self.instance.now();
                st.seqs.abandon_client(c as u8, now)
            } else {
                0
            };
            st.counters.req_aborted += n as u64;
            (n, st.release_client(c))
        };
        // Only abandoned requests free seqs.
        if abandoned != 0 {
            self.instance.seq_free.notify_all();
        }
        // Freed outside the IRQ-disabling lock (if not kept for the next file).
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
        // write and make synchronous requests. The inbox of a file closed before is taken
        // again if there is one; else a new one, allocated outside the lock.
        let reopened = dev.rx.lock().st.clients.reopen();
        let client = match reopened {
            Reopen::Place(c) => Some(c),
            Reopen::NoPlace => None,
            Reopen::NoSpare => {
                let mut inbox = Some(Inbox::new(dev.max_len)?);
                let client = dev.rx.lock().st.clients.open(&mut inbox);
                drop(inbox);
                client
            }
        };
        // INVARIANT: place `client` was free and now holds this file's inbox.
        Ok(Self {
            instance: dev.clone(),
            client,
        })
    }

    #[inline]
    fn read(&self, file: &File, target: ReadTarget) -> Result<usize> {
        let instance = &self.instance;
        // Nothing to read anywhere, and alive: no lock needed to say so.
        if instance.pending.none() && Self::nonblock(file) {
            return Err(EAGAIN);
        }
        // The frame lands at `REPLY_HDR`, the length byte just before it. Only the part the
        // frame fills is initialised, under the lock once its length is known: zeroing the
        // whole buffer (248 bytes) cost every call, the ones that find nothing too, more than
        // the rest of the path.
        let mut store = MaybeUninit::<ReadBuf>::uninit();
        let (out, end, from) = {
            let mut guard = instance.rx.lock();
            loop {
                if guard.st.dead {
                    return Err(ENODEV);
                }
                // The responses to this file's `write()` requests, and the shared queue.
                if let Some(from) = guard.st.read_source(self.client) {
                    // A frame of the shared queue goes to userspace straight from its slot,
                    // taken only once it is there: one lock, no copy between, nothing to put
                    // back. If that would need a page fault, the path below takes it.
                    if from == Source::Shared {
                        let copied = guard.st.read_shared(|rec| {
                            let rec = rec.get(..rec.len().min(target.len()))?;
                            target.write_nofault(rec).then_some(rec.len())
                        });
                        if let Some(count) = copied {
                            return Ok(count);
                        }
                    }
                    let len = guard.st.read_end(from).ok_or(EIO)?;
                    let out = zeroed_prefix::<_, ZEROED_MIN>(&mut store, len);
                    // `read_source` found the frame, under the same lock.
                    let end = guard.st.take_read(from, out).ok_or(EIO)?;
                    break (out, end, from);
                }
                if Self::nonblock(file) {
                    return Err(EAGAIN);
                }
                // Counted under `rx`, before the wait queues this task and releases `rx`: a
                // frame queued after this sees the count and wakes the condition variable.
                guard.st.blocked_readers += 1;
                let interrupted = instance.wait.wait_interruptible(&mut guard);
                guard.st.blocked_readers -= 1;
                if interrupted {
                    return Err(ERESTARTSYS);
                }
            }
        };
        // The length byte counts every byte after itself; frames are at most 240 bytes. It
        // goes over the last byte of a reply's stamp, put back for `read_done`.
        let n = end - REPLY_HDR;
        let len_at = out.get_mut(REPLY_HDR - 1).ok_or(EIO)?;
        let stamp_byte = core::mem::replace(len_at, n as u8);
        let count = target.len().min(n + 1);
        let mut buf = target.writer();
        let copied = buf.write_slice(out.get(REPLY_HDR - 1..REPLY_HDR - 1 + count).ok_or(EIO)?);
        out[REPLY_HDR - 1] = stamp_byte;
        // Not copied: the frame goes back to the head for the next reader.
        let mut wake = Wake::default();
        instance
            .rx
            .lock()
            .st
            .read_done(from, &out[..end], copied.is_ok(), &mut wake);
        instance.wake(wake);
        copied.map(|()| count)
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
        match Header::parse(frame) {
            // A request: its seq stays away from the kernel's own requests for the same
            // exchange, and its response goes to this file's `read()`.
            Some(h) if !frame::is_response(frame[frame::NETFN_LUN]) => {
                instance.write_request(self.client, frame, &h)?
            }
            _ => instance.send(frame, false)?,
        }
        Ok(count)
    }

    fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        self.dispatch_ioctl(file, cmd, arg)
    }

    fn poll(&self, file: &File, table: PollTable<'_>) -> u32 {
        let instance = &self.instance;
        if let Some(q) = instance.poll_queue(None) {
            table.register_wait(file, q);
        }
        if let Some(q) = self.client.and_then(|c| instance.poll_queue(Some(c))) {
            table.register_wait(file, q);
        }
        let mut g = instance.rx.lock();
        let mut mask = EPOLLOUT;
        if g.st.readable(self.client) {
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
