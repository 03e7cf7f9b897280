// SPDX-License-Identifier: GPL-2.0

//! The client places' KUnit suite (`ipmb_clients`).
//!
//! The cases sit in an inline module because an attribute macro (`kunit_tests`) cannot take a
//! module whose body is in another file.

#[::kernel::prelude::kunit_tests(ipmb_clients)]
mod cases {
    use super::super::*;
    use crate::proto::frame::{
        self,
        Header, //
    };

    const APP: u8 = 0x06;

    /// Clients with `n` places taken; returns them and the places.
    fn clients(n: usize) -> Result<(Clients, KVec<usize>)> {
        let mut clients = Clients::new()?;
        let mut places = KVec::new();
        for _ in 0..n {
            let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
            let c = clients.open(&mut inbox).ok_or(ENOSPC)?;
            places.push(c, GFP_KERNEL)?;
        }
        Ok((clients, places))
    }

    /// A request from 0x72 to 0x20 for NetFn App, `cmd`.
    fn request(cmd: u8) -> Result<([u8; 7], usize)> {
        let hdr = Header {
            dest: 0x20,
            netfn: APP,
            dest_lun: 0,
            src: 0x72,
            seq: 1,
            src_lun: 0,
            cmd,
        };
        let mut f = [0u8; 7];
        let n = frame::build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    #[test]
    fn release_clears_only_its_routes() -> Result {
        let (mut cl, p) = clients(2)?;
        cl.register(p[0], APP, 1, true)?;
        cl.register(p[0], APP, 2, true)?;
        cl.register(p[1], APP, 3, true)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        let routes = [cl.route(APP, 1), cl.route(APP, 2), cl.route(APP, 3)];
        assert_eq!(routes, [None, None, Some(p[1])]);
        Ok(())
    }

    #[test]
    fn unregistered_route_not_cleared_by_release() -> Result {
        // A pair the file gave up and another file took stays the other file's.
        let (mut cl, p) = clients(2)?;
        cl.register(p[0], APP, 1, true)?;
        cl.register(p[0], APP, 1, false)?;
        cl.register(p[1], APP, 1, true)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        assert_eq!(cl.route(APP, 1), Some(p[1]));
        Ok(())
    }

    #[test]
    fn registrations_bounded() -> Result {
        let (mut cl, p) = clients(1)?;
        for i in 0..MAX_REGISTRATIONS {
            cl.register(p[0], APP, i as u8, true)?;
        }
        assert!(cl.register(p[0], 0x30, 0, true) == Err(ENOSPC));
        Ok(())
    }

    #[test]
    fn unregister_frees_a_registration() -> Result {
        let (mut cl, p) = clients(1)?;
        for i in 0..MAX_REGISTRATIONS {
            cl.register(p[0], APP, i as u8, true)?;
        }
        cl.register(p[0], APP, 7, false)?;
        assert!(cl.register(p[0], 0x30, 0, true).is_ok());
        Ok(())
    }

    /// Delivers `count` routed requests (App, cmd 1) to client `c`; returns the frame.
    fn fill(cl: &mut Clients, c: usize, count: usize) -> Result<([u8; 7], usize)> {
        let (f, n) = request(1)?;
        for _ in 0..count {
            cl.deliver_request(c, 0, &f[..n]);
        }
        Ok((f, n))
    }

    /// Takes the oldest record of client `c` as `IPMB_IOC_RECEIVE` does.
    fn take(cl: &mut Clients, c: usize) -> ([u8; MAX_LEN_LIMIT + REC_HDR], usize) {
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let len = cl.take(c, Queue::Inbox, &mut rec).unwrap_or(0);
        (rec, len)
    }

    #[test]
    fn completion_fits_after_a_failed_receive() -> Result {
        // An inbox full of routed requests plus one place reserved for an asynchronous
        // request. A receive takes a request, a routed request arrives while it is copied
        // out, the copy fails and the request goes back: the completion still fits.
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        cl.can_reserve(c)?;
        cl.reserve(c);
        let (f, n) = fill(&mut cl, c, INBOX_LEN - 1)?;
        let (rec, len) = take(&mut cl, c);
        cl.deliver_request(c, 0, &f[..n]);
        cl.put_back(c, Queue::Inbox, &rec[..len], &mut Wake::default());
        let completed = cl.complete(c, 1, 0, &f[..n]);
        assert!(completed);
        Ok(())
    }

    #[test]
    fn routed_request_refused_while_receive_holds_the_place() -> Result {
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        let (f, n) = fill(&mut cl, c, INBOX_LEN)?;
        let (rec, len) = take(&mut cl, c);
        let taken = cl.deliver_request(c, 0, &f[..n]);
        cl.put_back(c, Queue::Inbox, &rec[..len], &mut Wake::default());
        assert!(!taken);
        Ok(())
    }

    #[test]
    fn put_back_wakes_the_file() -> Result {
        let (mut cl, p) = clients(2)?;
        let c = p[1];
        fill(&mut cl, c, 1)?;
        let (rec, len) = take(&mut cl, c);
        let mut wake = Wake::default();
        cl.put_back(c, Queue::Inbox, &rec[..len], &mut wake);
        assert_eq!(wake.client, Some(c));
        Ok(())
    }

    #[test]
    fn delivered_frees_the_place() -> Result {
        let (mut cl, p) = clients(1)?;
        let c = p[0];
        let (f, n) = fill(&mut cl, c, INBOX_LEN)?;
        take(&mut cl, c);
        cl.delivered(c, Queue::Inbox);
        let taken = cl.deliver_request(c, 0, &f[..n]);
        assert!(taken);
        Ok(())
    }

    #[test]
    fn exact_registration_beats_default_route() -> Result {
        let (mut cl, p) = clients(2)?;
        cl.register_default(p[0], true)?;
        cl.register(p[1], APP, 1, true)?;
        assert_eq!(cl.route(APP, 1), Some(p[1]));
        assert_eq!(cl.route(APP, 2), Some(p[0]));
        assert_eq!(cl.route(0x30, 7), Some(p[0]));
        Ok(())
    }

    #[test]
    fn one_default_route_per_device() -> Result {
        let (mut cl, p) = clients(2)?;
        cl.register_default(p[0], true)?;
        cl.register_default(p[0], true)?;
        assert!(cl.register_default(p[1], true) == Err(EBUSY));
        assert!(cl.register_default(p[1], false) == Err(ENOENT));
        cl.register_default(p[0], false)?;
        assert!(cl.register_default(p[0], false) == Err(ENOENT));
        cl.register_default(p[1], true)?;
        assert_eq!(cl.route(APP, 1), Some(p[1]));
        Ok(())
    }

    #[test]
    fn release_gives_up_the_default_route() -> Result {
        let (mut cl, p) = clients(2)?;
        cl.register_default(p[0], true)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        assert_eq!(cl.route(APP, 1), None);
        cl.register_default(p[1], true)?;
        Ok(())
    }

    #[test]
    fn reply_to_a_closed_writer_is_gone() -> Result {
        // The place is taken again by another file: the old note must not reach it.
        let (mut cl, p) = clients(1)?;
        let old = cl.writer(p[0]).ok_or(EINVAL)?;
        let inbox = cl.release(p[0]);
        drop(inbox);
        let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
        let again = cl.open(&mut inbox);
        let (f, n) = request(1)?;
        let got = cl.deliver_reply(old, 0, &f[..n]);
        assert_eq!(again, Some(p[0]));
        assert_eq!(got, Reply::Gone);
        assert_eq!(cl.reply_stamp(p[0]), None);
        Ok(())
    }

    #[test]
    fn reply_box_full_then_room_after_read() -> Result {
        let (mut cl, p) = clients(1)?;
        let w = cl.writer(p[0]).ok_or(EINVAL)?;
        let (f, n) = request(1)?;
        for i in 0..REPLY_LEN {
            assert_eq!(
                cl.deliver_reply(w, i as u64, &f[..n]),
                Reply::Delivered(p[0])
            );
        }
        assert_eq!(cl.deliver_reply(w, 99, &f[..n]), Reply::Full);
        assert_eq!(cl.reply_stamp(p[0]), Some(0));
        let mut rec = [0u8; MAX_LEN_LIMIT + REPLY_HDR];
        assert_eq!(cl.take(p[0], Queue::Replies, &mut rec), Some(REPLY_HDR + n));
        // Still held while the record is copied out.
        assert_eq!(cl.deliver_reply(w, 99, &f[..n]), Reply::Full);
        cl.delivered(p[0], Queue::Replies);
        assert_eq!(cl.deliver_reply(w, 99, &f[..n]), Reply::Delivered(p[0]));
        assert_eq!(cl.reply_stamp(p[0]), Some(1));
        Ok(())
    }

    #[test]
    fn reopen_without_spare_mailboxes_needs_new_ones() -> Result {
        let (mut cl, _) = clients(1)?;
        assert_eq!(cl.reopen(), Reopen::NoSpare);
        Ok(())
    }

    #[test]
    fn reopen_takes_the_closed_files_mailboxes_empty() -> Result {
        // What the closed file left (a request, a reply, a route) never reaches the next.
        let (mut cl, p) = clients(1)?;
        let (f, n) = request(1)?;
        cl.register(p[0], APP, 1, true)?;
        assert!(cl.deliver_request(p[0], 0, &f[..n]));
        let w = cl.writer(p[0]).ok_or(EINVAL)?;
        assert_eq!(cl.deliver_reply(w, 3, &f[..n]), Reply::Delivered(p[0]));
        let kept = cl.release(p[0]);
        assert!(kept.is_none());
        assert_eq!(cl.reopen(), Reopen::Place(p[0]));
        assert_eq!(cl.reply_stamp(p[0]), None);
        assert!(cl.inbox(p[0]).is_some_and(|i| i.is_empty()));
        assert_eq!(cl.route(APP, 1), None);
        cl.register(p[0], APP, 1, true)?;
        assert_eq!(cl.route(APP, 1), Some(p[0]));
        Ok(())
    }

    #[test]
    fn reopen_with_every_place_taken_finds_none() -> Result {
        let (mut cl, p) = clients(MAX_CLIENTS)?;
        let kept = cl.release(p[0]);
        assert!(kept.is_none());
        let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
        assert_eq!(cl.open(&mut inbox), Some(p[0]));
        assert_eq!(cl.reopen(), Reopen::NoPlace);
        Ok(())
    }

    #[test]
    fn taken_has_a_bit_per_place_in_use() -> Result {
        let (mut cl, p) = clients(3)?;
        let kept = cl.release(p[1]);
        assert!(kept.is_none());
        assert_eq!(cl.taken(), 1 << p[0] | 1 << p[2]);
        Ok(())
    }
}
