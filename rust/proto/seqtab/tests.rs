// SPDX-License-Identifier: GPL-2.0

//! The seq table's test cases: `cargo test` on the host, the `ipmb_seqtab` KUnit suite in the
//! module.
//!
//! The cases sit in an inline module because an attribute macro (`kunit_tests`) cannot take a
//! module whose body is in another file.

#[cfg_attr(CONFIG_KUNIT, ::kernel::prelude::kunit_tests(ipmb_seqtab))]
mod cases {
    use super::super::*;

    const MS: u64 = 1_000_000;
    const K: Key = Key {
        rs_sa: 0x72,
        netfn: 0x06,
        rs_lun: 0,
        rq_lun: 0,
        cmd: 0x01,
    };

    fn other_cmd(cmd: u8) -> Key {
        Key { cmd, ..K }
    }

    #[test]
    fn seqs_are_distinct_and_round_robin() {
        let mut t = heap_table!(SeqTable);
        let a = t.alloc(K, Owner::Sync, 1, 0, 250 * MS, 0);
        let b = t.alloc(other_cmd(2), Owner::Sync, 2, 0, 250 * MS, 0);
        assert_eq!((a, b), (Some(0), Some(1)));
        assert_eq!(t.busy(), 2);
    }

    #[test]
    fn at_most_64_in_flight() {
        let mut t = heap_table!(SeqTable);
        for i in 0..64u64 {
            assert!(t
                .alloc(other_cmd(i as u8), Owner::Sync, i, 0, MS, 0)
                .is_some());
        }
        assert_eq!(t.alloc(other_cmd(200), Owner::Sync, 99, 0, MS, 0), None);
    }

    #[test]
    fn response_matches_full_key_and_seq() {
        let mut t = heap_table!(SeqTable);
        let seq = t.alloc(K, Owner::Sync, 7, 0, MS, 0).unwrap_or(99);
        // Wrong LUN, wrong cmd, wrong responder, wrong seq: not ours.
        assert_eq!(
            t.on_response(Key { rq_lun: 1, ..K }, seq, 8, 0),
            Match::Unmatched
        );
        assert_eq!(t.on_response(other_cmd(2), seq, 8, 0), Match::Unmatched);
        assert_eq!(
            t.on_response(Key { rs_sa: 0x74, ..K }, seq, 8, 0),
            Match::Unmatched
        );
        assert_eq!(t.on_response(K, seq + 1, 8, 0), Match::Unmatched);
        assert_eq!(
            t.on_response(K, seq, 9, 0),
            Match::Matched {
                owner: Owner::Sync,
                id: 7
            }
        );
        assert_eq!(t.on_response(K, seq, 9, 0), Match::Duplicate);
        assert_eq!(t.take(seq, MS), Some(Outcome::Response(9)));
        assert_eq!(t.on_response(K, seq, 9, 2 * MS), Match::Duplicate);
        assert_eq!(t.busy(), 0);
    }

    #[test]
    fn quarantine_keeps_seq_from_same_exchange_for_5s() {
        let mut t = heap_table!(SeqTable);
        let first = t.alloc(K, Owner::Async(0), 1, 0, MS, 0);
        assert_eq!(first, Some(0));
        assert!(matches!(t.on_response(K, 0, 8, MS), Match::Matched { .. }));
        // Fill the other 63 seqs with the same exchange, then free them again.
        for i in 1..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, MS, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, MS),
                Match::Matched { .. }
            ));
        }
        // Every seq is quarantined for K until 5 s after it finished...
        assert_eq!(t.alloc(K, Owner::Sync, 100, 4999 * MS, MS, 0), None);
        // ... but another exchange may use them at once.
        assert_eq!(
            t.alloc(other_cmd(9), Owner::Sync, 101, 2 * MS, MS, 0),
            Some(0)
        );
        // After the interval the exchange gets a seq again.
        assert_eq!(t.alloc(K, Owner::Sync, 102, 5001 * MS, MS, 0), Some(1));
    }

    #[test]
    fn retries_then_timeout() {
        let mut t = heap_table!(SeqTable);
        let seq = t.alloc(K, Owner::Sync, 5, 0, 250 * MS, 2).unwrap_or(99);
        assert!(t.sent(seq, 5, 0));
        assert_eq!(t.next_deadline(), Some(250 * MS));
        assert_eq!(t.expire(249 * MS), None);
        assert_eq!(t.expire(250 * MS), Some(Expiry::Retry { seq, id: 5 }));
        assert!(t.sent(seq, 5, 250 * MS));
        assert_eq!(t.next_deadline(), Some(500 * MS));
        assert_eq!(t.expire(500 * MS), Some(Expiry::Retry { seq, id: 5 }));
        assert!(t.sent(seq, 5, 500 * MS));
        assert_eq!(
            t.expire(750 * MS),
            Some(Expiry::TimedOut {
                seq,
                owner: Owner::Sync,
                id: 5,
                key: K
            })
        );
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            t.take(seq, 751 * MS),
            Some(Outcome::Synthesized(CC_TIMEOUT))
        );
        // A response after the timeout is late, and is not given to the next request.
        assert_eq!(t.on_response(K, seq, 8, 800 * MS), Match::Late);
        let next = t.alloc(K, Owner::Sync, 6, 800 * MS, MS, 0);
        assert!(next.is_some() && next != Some(seq));
        assert_eq!(t.on_response(K, seq, 8, 801 * MS), Match::Late);
    }

    #[test]
    fn async_timeout_frees_slot() {
        let mut t = heap_table!(SeqTable);
        let seq = t.alloc(K, Owner::Async(3), 8, 0, MS, 0).unwrap_or(99);
        assert!(t.sent(seq, 8, 0));
        assert_eq!(
            t.expire(MS),
            Some(Expiry::TimedOut {
                seq,
                owner: Owner::Async(3),
                id: 8,
                key: K
            })
        );
        assert_eq!(t.busy(), 0);
        assert_eq!(t.on_response(K, seq, 8, 2 * MS), Match::Late);
    }

    #[test]
    fn waiting_leaves_out_outcomes_not_yet_collected() {
        let mut t = heap_table!(SeqTable);
        let seq = t.alloc(K, Owner::Sync, 1, 0, MS, 0).unwrap_or(99);
        t.alloc(other_cmd(2), Owner::Sync, 2, 0, MS, 0);
        t.sent(seq, 1, 0);
        assert!(matches!(t.on_response(K, seq, 8, 0), Match::Matched { .. }));
        assert_eq!((t.busy(), t.waiting()), (2, 1));
    }

    #[test]
    fn abandoned_requests_make_late_responses() {
        let mut t = heap_table!(SeqTable);
        let a = t.alloc(K, Owner::Async(1), 1, 0, MS, 0).unwrap_or(99);
        let b = t
            .alloc(other_cmd(2), Owner::Async(1), 2, 0, MS, 0)
            .unwrap_or(99);
        let c = t
            .alloc(other_cmd(3), Owner::Async(2), 3, 0, MS, 0)
            .unwrap_or(99);
        assert_eq!(t.abandon_client(1, 0), 2);
        assert_eq!(t.busy(), 1);
        assert_eq!(t.on_response(K, a, 8, 0), Match::Late);
        assert_eq!(t.on_response(other_cmd(2), b, 8, 0), Match::Late);
        assert!(matches!(
            t.on_response(other_cmd(3), c, 8, 0),
            Match::Matched { .. }
        ));
        let s = t.alloc(K, Owner::Sync, 4, 0, MS, 0).unwrap_or(99);
        t.abandon(s, 0);
        assert_eq!(t.on_response(K, s, 8, 0), Match::Late);
    }

    #[test]
    fn external_seqs_avoided_and_left_to_read() {
        let mut t = heap_table!(SeqTable);
        assert!(t.note_external(K, 0, 0));
        assert_eq!(t.on_response(K, 0, 8, 0), Match::Unmatched);
        // The allocator skips seq 0 for this exchange only.
        assert_eq!(t.alloc(K, Owner::Sync, 1, 0, MS, 0), Some(1));
        assert_eq!(t.alloc(other_cmd(5), Owner::Sync, 2, 0, MS, 0), Some(2));
        // A write() colliding with a request of ours in flight is refused.
        assert!(!t.note_external(K, 1, 0));
        assert!(t.note_external(other_cmd(7), 1, 0));
    }

    #[test]
    fn send_failure_completes() {
        let mut t = heap_table!(SeqTable);
        let s = t.alloc(K, Owner::Sync, 1, 0, MS, 3).unwrap_or(99);
        assert_eq!(
            t.complete(s, 1, Outcome::Synthesized(0x82), 0),
            Some((Owner::Sync, 1, K))
        );
        assert_eq!(t.complete(s, 1, Outcome::Synthesized(0x82), 0), None);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.take(s, 0), Some(Outcome::Synthesized(0x82)));
        assert_eq!(t.take(s, 0), None);
    }

    #[test]
    fn stale_completion_leaves_reused_seq_alone() {
        let mut t = heap_table!(SeqTable);
        // Fill every seq so the next allocation wraps round to seq 0.
        for i in 0..64u64 {
            assert_eq!(
                t.alloc(other_cmd(i as u8), Owner::Async(0), i, 0, MS, 0),
                Some(i as u8)
            );
        }
        // Request 0 ends (answered) while its sender is still busy; another exchange takes
        // its seq.
        assert!(matches!(
            t.on_response(other_cmd(0), 0, 8, 0),
            Match::Matched { .. }
        ));
        assert_eq!(t.alloc(K, Owner::Sync, 100, 0, MS, 0), Some(0));
        // The first sender's reports (sent, or failed) must not touch the new request.
        assert!(!t.sent(0, 0, 0));
        assert_eq!(t.complete(0, 0, Outcome::Synthesized(0x82), 0), None);
        assert_eq!(t.take(0, 0), None);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(
            t.complete(0, 100, Outcome::Synthesized(0x82), 0),
            Some((Owner::Sync, 100, K))
        );
    }

    #[test]
    fn deadline_starts_when_sent() {
        let mut t = heap_table!(SeqTable);
        let seq = t.alloc(K, Owner::Sync, 1, 0, 10 * MS, 1).unwrap_or(99);
        // Waiting for the bus for longer than the timeout does not time it out...
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.expire(50 * MS), None);
        // ... its timeout runs from when it is on the wire.
        assert!(t.sent(seq, 1, 50 * MS));
        assert_eq!(t.expire(59 * MS), None);
        assert_eq!(t.expire(60 * MS), Some(Expiry::Retry { seq, id: 1 }));
        // So does the resend's.
        assert_eq!(t.expire(90 * MS), None);
        assert!(t.sent(seq, 1, 90 * MS));
        assert_eq!(t.next_deadline(), Some(100 * MS));
    }

    #[test]
    fn queued_sends_are_taken_oldest_first() {
        let mut t = heap_table!(SeqTable);
        let a = t.alloc(K, Owner::Async(0), 7, 0, MS, 0).unwrap_or(99);
        let b = t
            .alloc(other_cmd(2), Owner::Async(0), 5, 0, MS, 0)
            .unwrap_or(99);
        let c = t
            .alloc(other_cmd(3), Owner::Async(0), 9, 0, MS, 0)
            .unwrap_or(99);
        t.queue(a, 7);
        t.queue(b, 5);
        // A stale id queues nothing.
        t.queue(c, 1);
        assert_eq!(t.next_queued(), Some((b, 5)));
        assert_eq!(t.next_queued(), Some((a, 7)));
        assert_eq!(t.next_queued(), None);
    }

    #[test]
    fn quarantine_survives_other_exchanges_on_the_seq() {
        let mut t = heap_table!(SeqTable);
        for i in 0..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, 0, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, 0),
                Match::Matched { .. }
            ));
        }
        // Another exchange takes seq 0 and finishes; K's record on seq 0 must survive.
        assert_eq!(t.alloc(other_cmd(2), Owner::Sync, 100, MS, MS, 0), Some(0));
        assert_eq!(t.take(0, MS), None);
        t.abandon(0, 2 * MS);
        assert_eq!(t.alloc(K, Owner::Sync, 101, 3 * MS, MS, 0), None);
        // A late response for K on seq 0 is still recognised.
        assert_eq!(t.on_response(K, 0, 8, 3 * MS), Match::Duplicate);
        assert_eq!(t.on_response(other_cmd(2), 0, 8, 3 * MS), Match::Late);
    }

    #[test]
    fn usable_at_tells_when_to_retry() {
        let mut t = heap_table!(SeqTable);
        for i in 0..64u64 {
            assert_eq!(t.alloc(K, Owner::Async(0), i, i * MS, MS, 0), Some(i as u8));
            assert!(matches!(
                t.on_response(K, i as u8, 8, i * MS),
                Match::Matched { .. }
            ));
        }
        // Seq 0 finished at 0 ms: usable for K again 5 s later.
        assert_eq!(t.usable_at(&K, 100 * MS), Some(5000 * MS));
        assert_eq!(t.usable_at(&other_cmd(3), 100 * MS), Some(100 * MS));
        assert_eq!(t.alloc(K, Owner::Sync, 1, 5000 * MS, MS, 0), Some(0));
        // With every seq in flight there is no time to give: a seq must be freed.
        let mut full = heap_table!(SeqTable);
        for i in 0..64u64 {
            assert!(full
                .alloc(other_cmd(i as u8), Owner::Sync, i, 0, MS, 0)
                .is_some());
        }
        assert_eq!(full.usable_at(&K, 0), None);
    }

    #[test]
    fn a_seq_serves_at_most_records_exchanges_per_interval() {
        let mut t = heap_table!(SeqTable);
        // Use every seq for RECORDS distinct exchanges within 5 s.
        for round in 0..RECORDS as u64 {
            for i in 0..64u64 {
                let seq = t.alloc(other_cmd(round as u8), Owner::Async(0), i, round, MS, 0);
                assert_eq!(seq, Some(i as u8));
                t.abandon(i as u8, round);
            }
        }
        // A new exchange must wait for the oldest records to expire.
        assert_eq!(t.alloc(other_cmd(200), Owner::Sync, 1, 100, MS, 0), None);
        assert_eq!(t.usable_at(&other_cmd(200), 100), Some(SEQ_EXPIRY_NS));
        assert!(t
            .alloc(other_cmd(200), Owner::Sync, 1, SEQ_EXPIRY_NS, MS, 0)
            .is_some());
        // Every exchange of the first round is still remembered until then.
        assert_eq!(t.on_response(other_cmd(1), 5, 8, 100), Match::Late);
    }

    /// Found by the seqtab fuzzer's model: a seq noted again for an exchange it remembers
    /// kept the exchange's older record too when an expired record came first, so one
    /// exchange took two of the seq's records and the seq refused a new exchange too early.
    #[test]
    fn an_exchange_noted_again_keeps_one_record() {
        let mut t = heap_table!(SeqTable);
        assert!(t.note_external(other_cmd(100), 0, 0));
        assert!(t.note_external(K, 0, 1000 * MS));
        // At 5.5 s the first record has expired; K's exchange is noted again.
        assert!(t.note_external(K, 0, 5500 * MS));
        for cmd in 2..16 {
            assert!(t.note_external(other_cmd(cmd), 0, 5500 * MS));
        }
        // 15 exchanges hold 15 of the 16 records: seq 0 can take one more.
        assert_eq!(
            t.alloc(other_cmd(200), Owner::Sync, 1, 5501 * MS, MS, 0),
            Some(0)
        );
    }

    #[test]
    fn request_and_its_response_have_one_key() {
        let req = Header {
            dest: 0x72,
            netfn: 0x06,
            dest_lun: 1,
            src: 0x20,
            seq: 9,
            src_lun: 2,
            cmd: 0x01,
        };
        // The response swaps addresses and LUNs and sets the netFn's low bit.
        let rsp = Header {
            dest: 0x20,
            netfn: 0x07,
            dest_lun: 2,
            src: 0x72,
            seq: 9,
            src_lun: 1,
            cmd: 0x01,
        };
        assert_eq!(Key::of_request(&req), Key::of_response(&rsp));
        assert_eq!(
            Key::of_request(&req),
            Key {
                rs_lun: 1,
                rq_lun: 2,
                ..K
            }
        );
    }
}
