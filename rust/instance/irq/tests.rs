// SPDX-License-Identifier: GPL-2.0

//! The receive path's KUnit suite (`ipmb_rx`).
//!
//! The cases sit in an inline module because an attribute macro (`kunit_tests`) cannot take a
//! module whose body is in another file.

#[::kernel::prelude::kunit_tests(ipmb_rx)]
mod cases {
    use super::super::*;
    use crate::{
        instance::{
            Config,
            Inbox,
            Queue,
            MAX_LEN_LIMIT,
            REC_HDR,
            REPLY_HDR, //
        },
        proto::{
            frame::build,
            seqtab::Outcome,
            stats::Counters, //
        },
    };
    use kernel::sync::Arc;

    // Every case copies what it checks out of the state and releases `rx` before asserting:
    // a failed KUnit assertion ends the test thread at once, which with the IRQ-disabling
    // lock held would hang the CPU instead of failing the case.

    const OWN: u8 = 0x20;

    fn shared(queue_len: usize) -> Result<Arc<Instance>> {
        let cfg = Config {
            adapter: 0,
            addr: OWN,
            max_len: frame::SPEC_MAX_LEN,
            queue_len,
            retries: 0,
            smbus: false,
            req_timeout_ms: 250,
            req_retries: 1,
        };
        Instance::new(&cfg, None)
    }

    /// Feeds a whole write transaction for `f` (address byte first) to the callback path.
    fn deliver(s: &Instance, f: &[u8]) -> Result {
        s.rx_event(Event::WriteRequested)?;
        for b in &f[1..] {
            s.rx_event(Event::WriteReceived(*b))?;
        }
        s.rx_event(Event::Stop)?;
        Ok(())
    }

    fn response(seq: u8) -> Result<([u8; 8], usize)> {
        let hdr = Header {
            dest: OWN,
            netfn: 0x07,
            dest_lun: 0,
            src: 0x72,
            seq,
            src_lun: 0,
            cmd: 1,
        };
        let mut f = [0u8; 8];
        let n = build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[0]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    fn pop(s: &Instance) -> Option<([u8; MAX_LEN_LIMIT], usize)> {
        let mut out = [0u8; MAX_LEN_LIMIT];
        let n = s.rx.lock().st.ring.pop_into(&mut out)?;
        Some((out, n))
    }

    /// A copy of the counters, taken under `rx`.
    fn counters(s: &Instance) -> Counters {
        s.rx.lock().st.counters
    }

    /// Frames waiting for `read()`.
    fn queued(s: &Instance) -> usize {
        s.rx.lock().st.ring.len()
    }

    #[test]
    fn frames_queued_in_order() -> Result {
        let s = shared(8)?;
        for seq in 0..5 {
            deliver(&s, &response(seq)?.0)?;
        }
        let rx_frames = counters(&s).rx_frames;
        assert_eq!(rx_frames, 5);
        for seq in 0..5 {
            let (expected, n) = response(seq)?;
            let got = pop(&s);
            assert!(got.is_some());
            if let Some((out, len)) = got {
                assert_eq!(len, n);
                assert_eq!(out[..len], expected[..n]);
            }
        }
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn blocked_readers_woken_only_when_counted() -> Result {
        let s = shared(8)?;
        let (f, n) = response(1)?;
        let (mut none, mut one) = (Wake::default(), Wake::default());
        {
            let mut g = s.rx.lock();
            g.st.queue_shared(&f[..n], &mut none);
            g.st.blocked_readers = 1;
            g.st.queue_shared(&f[..n], &mut one);
            g.st.blocked_readers = 0;
        }
        assert_eq!(
            [(none.read, none.read_blocked), (one.read, one.read_blocked)],
            [(true, false), (true, true)]
        );
        Ok(())
    }

    #[test]
    fn overflow_keeps_oldest_and_counts() -> Result {
        let s = shared(2)?;
        for seq in 0..4 {
            deliver(&s, &response(seq)?.0)?;
        }
        let c = counters(&s);
        assert_eq!((c.rx_frames, c.rx_overflow), (2, 2));
        let (first, n) = response(0)?;
        assert_eq!(pop(&s).map(|(o, l)| o[..l] == first[..n]), Some(true));
        Ok(())
    }

    #[test]
    fn bad_frame_counted_not_queued() -> Result {
        let s = shared(4)?;
        let (mut f, _) = response(1)?;
        f[7] ^= 1;
        deliver(&s, &f)?;
        let c = counters(&s);
        assert_eq!((c.rx_frames, c.rx_bad_cs2), (0, 1));
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn overlong_byte_is_refused() -> Result {
        let s = shared(4)?;
        s.rx_event(Event::WriteRequested)?;
        for _ in 1..frame::SPEC_MAX_LEN {
            s.rx_event(Event::WriteReceived(0))?;
        }
        assert!(s.rx_event(Event::WriteReceived(0)).is_err());
        s.rx_event(Event::Stop)?;
        let rx_too_long = counters(&s).rx_too_long;
        assert_eq!(rx_too_long, 1);
        Ok(())
    }

    #[test]
    fn read_events_return_fill() -> Result {
        let s = shared(4)?;
        assert_eq!(s.rx_event(Event::ReadRequested)?, READ_FILL);
        assert_eq!(s.rx_event(Event::ReadProcessed)?, READ_FILL);
        s.rx_event(Event::Stop)?;
        assert!(pop(&s).is_none());
        Ok(())
    }

    #[test]
    fn send_without_client_is_enodev() -> Result {
        let s = shared(4)?;
        let (f, n) = response(1)?;
        let sent = s.send(&f[..n], false);
        let tx_frames = counters(&s).tx_frames;
        assert!(sent == Err(ENODEV));
        assert_eq!(tx_frames, 0);
        Ok(())
    }

    const APP_GET_DEVICE_ID: Key = Key {
        rs_sa: 0x72,
        netfn: 0x06,
        rs_lun: 0,
        rq_lun: 0,
        cmd: 1,
    };

    /// A request from 0x72 to us for NetFn App, `cmd`.
    fn request_to_us(cmd: u8) -> Result<([u8; 7], usize)> {
        let hdr = Header {
            dest: OWN,
            netfn: 0x06,
            dest_lun: 0,
            src: 0x72,
            seq: 5,
            src_lun: 0,
            cmd,
        };
        let mut f = [0u8; 7];
        let n = build(&mut f, frame::SPEC_MAX_LEN, &hdr, &[]).map_err(|_| EINVAL)?;
        Ok((f, n))
    }

    /// Allocates seq 0 for a synchronous request to 0x72 (App, Get Device ID).
    fn sync_request(s: &Instance) -> Option<u8> {
        let mut g = s.rx.lock();
        let now = s.now();
        g.st.seqs
            .alloc(APP_GET_DEVICE_ID, Owner::Sync, 1, now, 1_000_000_000, 0)
    }

    #[test]
    fn response_goes_to_its_request() -> Result {
        let s = shared(4)?;
        let seq = sync_request(&s);
        let (f, n) = response(0)?;
        deliver(&s, &f[..n])?;
        let (stored, outcome) = {
            let mut g = s.rx.lock();
            let now = s.now();
            let stored = g.st.responses.get(0) == &f[..n];
            (stored, g.st.seqs.take(0, now))
        };
        assert_eq!(seq, Some(0));
        assert!(stored);
        assert_eq!(outcome, Some(Outcome::Response(n as u8)));
        Ok(())
    }

    #[test]
    fn second_response_is_a_duplicate() -> Result {
        let s = shared(4)?;
        sync_request(&s);
        let (f, n) = response(0)?;
        deliver(&s, &f[..n])?;
        deliver(&s, &f[..n])?;
        let c = counters(&s);
        assert_eq!((c.rsp_matched, c.rsp_duplicate, c.rx_frames), (1, 1, 1));
        assert_eq!(queued(&s), 0);
        Ok(())
    }

    #[test]
    fn unmatched_response_goes_to_read() -> Result {
        let s = shared(4)?;
        sync_request(&s);
        deliver(&s, &response(9)?.0)?;
        let c = counters(&s);
        assert_eq!((c.rsp_matched, c.rx_frames), (0, 1));
        assert_eq!(queued(&s), 1);
        Ok(())
    }

    /// An instance with one file that registered (App, `cmd`); returns its place.
    fn registered(cmd: u8) -> Result<(Arc<Instance>, usize)> {
        let s = shared(4)?;
        let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
        let place = {
            let mut g = s.rx.lock();
            let place = g.st.clients.open(&mut inbox);
            place.map(|p| (p, g.st.clients.register(p, 0x06, cmd, true)))
        };
        match place {
            Some((p, Ok(()))) => Ok((s, p)),
            Some((_, Err(e))) => Err(e),
            None => Err(EMFILE),
        }
    }

    /// Frees place `c`, its inbox outside the lock, as a closing file does.
    fn close(s: &Instance, c: usize) {
        let inbox = s.rx.lock().st.release_client(c);
        drop(inbox);
    }

    #[test]
    fn registered_request_goes_to_its_inbox() -> Result {
        let (s, place) = registered(0x01)?;
        deliver(&s, &request_to_us(0x01)?.0)?;
        let mut rec = [0u8; MAX_LEN_LIMIT + REC_HDR];
        let n = s.rx.lock().st.clients.take(place, Queue::Inbox, &mut rec);
        let c = counters(&s);
        close(&s, place);
        assert_eq!((c.rx_routed, c.rx_frames), (1, 1));
        assert_eq!(n, Some(REC_HDR + 7));
        assert_eq!(
            (rec[0], rec[REC_HDR + frame::CMD]),
            (uapi::KIND_REQUEST, 0x01)
        );
        Ok(())
    }

    #[test]
    fn unregistered_request_goes_to_read() -> Result {
        let (s, place) = registered(0x01)?;
        deliver(&s, &request_to_us(0x02)?.0)?;
        let c = counters(&s);
        let n = queued(&s);
        close(&s, place);
        assert_eq!((c.rx_routed, c.rx_frames), (0, 1));
        assert_eq!(n, 1);
        Ok(())
    }

    /// An instance with one open file that wrote a request (App, cmd 1, seq `seq`) to 0x72;
    /// returns its place.
    fn written(seq: u8) -> Result<(Arc<Instance>, usize)> {
        let s = shared(4)?;
        let mut inbox = Some(Inbox::new(frame::SPEC_MAX_LEN)?);
        let place = {
            let mut g = s.rx.lock();
            let now = s.now();
            let st = &mut g.st;
            let place = st.clients.open(&mut inbox);
            let w = place.and_then(|p| st.clients.writer(p));
            place.zip(w.and_then(|w| st.notes.note(APP_GET_DEVICE_ID, seq, w, now)))
        };
        place.map(|(p, _)| (s, p)).ok_or(ENOSPC)
    }

    #[test]
    fn response_to_a_write_goes_to_its_writer() -> Result {
        let (s, place) = written(4)?;
        deliver(&s, &response(4)?.0)?;
        let stamp = s.rx.lock().st.clients.reply_stamp(place);
        let c = counters(&s);
        let n = queued(&s);
        close(&s, place);
        assert_eq!((c.rsp_to_writer, c.rx_frames, n), (1, 1, 0));
        assert_eq!(stamp, Some(0));
        Ok(())
    }

    #[test]
    fn response_to_a_closed_writer_goes_to_read() -> Result {
        let (s, place) = written(4)?;
        close(&s, place);
        deliver(&s, &response(4)?.0)?;
        let c = counters(&s);
        assert_eq!((c.rsp_writer_gone, c.rsp_to_writer, c.rx_frames), (1, 0, 1));
        assert_eq!(queued(&s), 1);
        Ok(())
    }

    #[test]
    fn read_takes_both_queues_in_arrival_order() -> Result {
        // Shared frame (seq 9), the writer's response (seq 4), shared frame (seq 10).
        let (s, place) = written(4)?;
        for seq in [9, 4, 10] {
            deliver(&s, &response(seq)?.0)?;
        }
        let mut seqs = [0u8; 4];
        {
            let mut g = s.rx.lock();
            for got in seqs.iter_mut() {
                let mut buf: crate::instance::ReadBuf = [0; REPLY_HDR + MAX_LEN_LIMIT];
                if let Some((end, from)) = g.st.pop_read(Some(place), &mut buf) {
                    *got = buf[REPLY_HDR + frame::SEQ_LUN] >> 2;
                    g.st.read_done(from, &buf[..end], true, &mut Wake::default());
                }
            }
        }
        close(&s, place);
        assert_eq!(seqs, [9, 4, 10, 0]);
        Ok(())
    }

    #[test]
    fn faulting_read_keeps_its_place_and_counts_each_frame_once() -> Result {
        // A queue of 2: seq 1 is out for a read() whose copy then faults, seqs 2 and 3 arrive
        // meanwhile. One of them fits; seq 1 goes back to the head.
        let s = shared(2)?;
        deliver(&s, &response(1)?.0)?;
        let mut buf: crate::instance::ReadBuf = [0; REPLY_HDR + MAX_LEN_LIMIT];
        let taken = s.rx.lock().st.pop_read(None, &mut buf);
        for seq in [2, 3] {
            deliver(&s, &response(seq)?.0)?;
        }
        if let Some((end, from)) = taken {
            let mut g = s.rx.lock();
            g.st.read_done(from, &buf[..end], false, &mut Wake::default());
        }
        let c = counters(&s);
        let next = pop(&s).map(|(o, _)| o[frame::SEQ_LUN] >> 2);
        assert!(taken.is_some());
        // Three frames on the wire: two queued, one dropped, none counted twice.
        assert_eq!((c.rx_frames, c.rx_overflow), (2, 1));
        assert_eq!(next, Some(1));
        Ok(())
    }

    /// Marks the instance dead and collects the synchronous request on seq 0 as its waiting
    /// caller would.
    fn collect_after_unbind(s: &Instance) -> Option<Result<Outcome>> {
        let mut g = s.rx.lock();
        g.st.dead = true;
        let now = s.now();
        g.st.collect(0, now, false)
    }

    #[test]
    fn answer_not_collected_at_unbind_is_not_also_aborted() -> Result {
        let s = shared(4)?;
        let seq = sync_request(&s);
        let (f, n) = response(0)?;
        deliver(&s, &f[..n])?;
        let got = collect_after_unbind(&s);
        let c = counters(&s);
        assert_eq!(seq, Some(0));
        assert_eq!(got, Some(Err(ENODEV)));
        assert_eq!((c.rsp_matched, c.req_aborted), (1, 0));
        Ok(())
    }

    #[test]
    fn request_waiting_at_unbind_is_aborted() -> Result {
        let s = shared(4)?;
        let seq = sync_request(&s);
        let got = collect_after_unbind(&s);
        let c = counters(&s);
        assert_eq!(seq, Some(0));
        assert_eq!(got, Some(Err(ENODEV)));
        assert_eq!(c.req_aborted, 1);
        Ok(())
    }

    #[test]
    fn pending_counts_a_frame_until_it_is_read() -> Result {
        let s = shared(4)?;
        let before = s.pending.none();
        deliver(&s, &response(1)?.0)?;
        let queued = s.pending.none();
        let mut buf: crate::instance::ReadBuf = [0; REPLY_HDR + MAX_LEN_LIMIT];
        let taken = {
            let mut g = s.rx.lock();
            let taken = g.st.pop_read(None, &mut buf);
            if let Some((end, from)) = taken {
                g.st.read_done(from, &buf[..end], true, &mut Wake::default());
            }
            taken
        };
        assert!(taken.is_some());
        assert_eq!((before, queued, s.pending.none()), (true, false, true));
        Ok(())
    }

    #[test]
    fn pending_counts_a_frame_put_back_after_a_fault() -> Result {
        let s = shared(4)?;
        deliver(&s, &response(1)?.0)?;
        let mut buf: crate::instance::ReadBuf = [0; REPLY_HDR + MAX_LEN_LIMIT];
        let taken = s.rx.lock().st.pop_read(None, &mut buf);
        let out = s.pending.none();
        if let Some((end, from)) = taken {
            let mut g = s.rx.lock();
            g.st.read_done(from, &buf[..end], false, &mut Wake::default());
        }
        assert!(taken.is_some());
        assert_eq!((out, s.pending.none()), (true, false));
        Ok(())
    }

    #[test]
    fn pending_counts_a_writers_response_until_its_file_closes() -> Result {
        let (s, place) = written(4)?;
        deliver(&s, &response(4)?.0)?;
        let delivered = s.pending.none();
        close(&s, place);
        assert_eq!((delivered, s.pending.none()), (false, true));
        Ok(())
    }

    #[test]
    fn pending_is_never_none_once_dead() -> Result {
        let s = shared(4)?;
        s.kill();
        assert!(!s.pending.none());
        Ok(())
    }

    #[test]
    fn read_shared_takes_the_frame_only_once_copied() -> Result {
        let s = shared(4)?;
        deliver(&s, &response(1)?.0)?;
        let (refused, taken, len_byte, left) = {
            let mut g = s.rx.lock();
            let refused = g.st.read_shared(|_| None);
            let mut len_byte = None;
            let taken = g.st.read_shared(|rec| {
                len_byte = rec.first().copied();
                Some(rec.len())
            });
            (refused, taken, len_byte, g.st.ring.len())
        };
        assert_eq!(refused, None);
        assert!(taken.is_some());
        // The record is `read()`'s `[len, frame...]`: the length counts what follows it.
        assert_eq!(len_byte.map(|b| usize::from(b) + 1), taken);
        assert_eq!((left, s.pending.none()), (0, true));
        Ok(())
    }
}
