//! Forged, broken and misaddressed streams, version and identity checks, clock skew.
#![allow(clippy::unwrap_used)]

mod support;

use pos_audit::{Checkpoint, DeviceKey};
use pos_sync::message::{BatchEntry, Message};
use pos_sync::{AppEvent, CloseReason, RejectReason};
use support::*;

fn session(terminal_events: usize) -> Session {
    let tdb = terminal_db(1, terminal_events, &["sale", "stock"]);
    let mut hdb = HubDb::new(9, &tdb.chain);
    hdb.chain.append_many(20, &["catalogue", "user"]);
    Session::new(small_config(), tdb, hdb)
}

/// Change the second event batch the terminal sends.
fn tamper_second_batch(change: impl Fn(&mut pos_sync::message::EventBatch) + 'static) -> Tamper {
    let mut n = 0;
    Box::new(move |f| {
        if frame_type(&f) != EVENT_BATCH {
            return vec![f];
        }
        n += 1;
        if n != 2 {
            return vec![f];
        }
        vec![rewrite(f, |m| {
            if let Message::EventBatch(b) = m {
                change(b)
            }
        })]
    })
}

fn violation(log: &[AppEvent]) -> Option<(u64, String)> {
    log.iter().find_map(|e| match e {
        AppEvent::SecurityViolation { seq, why, .. } => Some((*seq, why.clone())),
        _ => None,
    })
}

fn rejected(log: &[AppEvent]) -> Option<(u64, RejectReason)> {
    log.iter().find_map(|e| match e {
        AppEvent::Rejected { seq, reason, .. } => Some((*seq, *reason)),
        _ => None,
    })
}

/// A violation in the second batch: the first is stored, the rest is held.
fn assert_held_after_first_batch(s: &mut Session, seq: u64, why: &str) {
    let (at, text) = violation(&s.hlog).expect("a security violation");
    assert_eq!(at, seq, "{text}");
    assert!(text.contains(why), "{text}");
    assert_eq!(rejected(&s.tlog), Some((seq, RejectReason::Verification)));
    assert_eq!(
        s.hdb.stored,
        s.tdb.chain.events[..40],
        "only the good batch"
    );
    // Nothing more is accepted, on this connection or the next while the hold stands.
    s.settle(5);
    assert_eq!(s.hdb.head.0, 40);
    assert!(
        s.hub_closed_with().is_none(),
        "the connection itself stays up"
    );
    assert_eq!(
        s.tdb.hub_head,
        s.hdb.chain.head(),
        "master data still flows"
    );
}

#[test]
fn a_changed_event_is_rejected_and_its_origin_held() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        if let BatchEntry::Full(e) = &mut b.entries[5] {
            e.payload = br#"{"qty":-1000}"#.to_vec();
        }
    });
    s.pump();
    assert_held_after_first_batch(&mut s, 46, "content changed");

    // Reconnect with the hold persisted: refused without verification, nothing stored.
    let (tdb, mut hdb) = s.into_dbs();
    assert!(hdb.held);
    hdb.held = true;
    let mut s = Session::connect(small_config(), tdb, hdb, 1000);
    s.pump();
    assert_eq!(rejected(&s.tlog), Some((41, RejectReason::Held)));
    assert_eq!(s.hdb.head.0, 40);
}

#[test]
fn a_rehashed_event_breaks_the_link_and_is_rejected() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        if let BatchEntry::Full(e) = &mut b.entries[5] {
            e.payload = br#"{"qty":-1000}"#.to_vec();
            e.hash = e.compute_hash(&mut Vec::new());
        }
    });
    s.pump();
    // The next record still links to the original: the edited one is named.
    assert_held_after_first_batch(&mut s, 46, "content changed");
}

#[test]
fn a_bad_seal_signature_is_rejected() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| b.seal.signature[0] ^= 1);
    s.pump();
    assert_held_after_first_batch(&mut s, 80, "signature is invalid");
}

#[test]
fn a_batch_signed_by_an_unregistered_key_is_rejected() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        let last = b.entries.last().unwrap().clone();
        let BatchEntry::Full(e) = last else { panic!() };
        b.seal = Checkpoint::sign(
            &DeviceKey::from_seed([66; 32]),
            e.origin,
            e.seq,
            e.hash,
            e.hlc,
        );
    });
    s.pump();
    assert_held_after_first_batch(&mut s, 80, "unknown key");
}

#[test]
fn a_deleted_record_is_rejected() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        b.entries.remove(3);
    });
    s.pump();
    assert_held_after_first_batch(&mut s, 44, "missing");
}

#[test]
fn a_cut_tail_without_its_seal_is_rejected() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        b.entries.truncate(30);
    });
    s.pump();
    // The seal signs seq 80 but the batch ends at 70: truncated on the way.
    assert_held_after_first_batch(&mut s, 71, "truncated");
}

#[test]
fn an_appended_unsigned_record_is_rejected() {
    let mut s = session(120);
    let mut extra = pos_sync::testing::SignedChain::new(1, 100);
    extra.append_many(81, &["sale", "stock"]);
    let forged = extra.events[80].clone();
    s.t2h = tamper_second_batch(move |b| {
        b.entries.push(BatchEntry::Full(forged.clone()));
    });
    s.pump();
    assert_held_after_first_batch(&mut s, 81, "not signed");
}

#[test]
fn redacted_records_from_a_terminal_are_refused() {
    let mut s = session(120);
    s.t2h = tamper_second_batch(|b| {
        let e = b.entries[2].clone();
        b.entries[2] = BatchEntry::Redacted {
            seq: e.seq(),
            hash: e.hash(),
        };
    });
    s.pump();
    assert_held_after_first_batch(&mut s, 43, "redacted");
}

#[test]
fn records_of_another_origin_are_refused_and_reported() {
    let mut s = session(0);
    s.pump();
    let mut other = pos_sync::testing::SignedChain::new(7, 100);
    other.append_many(3, &["sale"]);
    let last = other.events[2].clone();
    let batch = Message::EventBatch(pos_sync::message::EventBatch {
        origin: other.origin,
        entries: other.events.iter().cloned().map(BatchEntry::Full).collect(),
        checkpoints: vec![],
        seal: Checkpoint::sign(&other.key, other.origin, 3, last.hash, last.hlc),
    });
    let now = s.now();
    s.h.receive(&encode(&batch), now);
    s.pump();
    let why = violation(&s.hlog).unwrap().1;
    assert!(why.contains("sent records of origin"), "{why}");
    assert_eq!(s.hdb.store_events, 0);
}

#[test]
fn a_fork_of_an_already_stored_chain_is_a_violation() {
    let mut s = session(40);
    s.pump();
    assert!(s.converged());
    // The terminal is reinstalled with the same identity and writes a different history.
    let (mut tdb, hdb) = s.into_dbs();
    let mut forked = pos_sync::testing::SignedChain::new(1, 100);
    forked.append_many(60, &["shift"]);
    tdb.chain = forked;
    let mut s = Session::connect(small_config(), tdb, hdb, 100);
    s.pump();
    let (seq, why) = violation(&s.hlog).unwrap();
    assert_eq!(seq, 41, "{why}");
    assert_eq!(s.hdb.head.0, 40);
}

#[test]
fn forged_master_data_is_refused_by_the_terminal() {
    let mut s = session(0);
    s.h2t = Box::new(move |f| {
        if frame_type(&f) != EVENT_BATCH {
            return vec![f];
        }
        vec![rewrite(f, |m| {
            if let Message::EventBatch(b) = m {
                if let Some(BatchEntry::Full(e)) = b.entries.get_mut(0) {
                    e.payload = br#"{"price":1}"#.to_vec();
                }
            }
        })]
    });
    s.pump();
    let (seq, why) = violation(&s.tlog).unwrap();
    assert_eq!(seq, 1);
    assert!(why.contains("content changed"), "{why}");
    assert!(s.tdb.hub_events.is_empty());
    assert_eq!(rejected(&s.hlog), Some((1, RejectReason::Verification)));
}

#[test]
fn a_protocol_version_mismatch_closes_cleanly_with_a_reason() {
    let mut s = session(0);
    let now = s.now();
    let hello = s.t.poll_transmit().unwrap();
    let newer = rewrite(hello, |m| {
        if let Message::Hello(h) = m {
            h.protocol_version = 2;
        }
    });
    s.h.receive(&newer, now);
    let close = decode(&s.h.poll_transmit().unwrap());
    let Message::Close(close) = close else {
        panic!("{close:?}")
    };
    assert_eq!(close.reason, CloseReason::VersionMismatch);
    assert!(close.detail.contains("protocol 1"), "{}", close.detail);
    assert!(s.h.is_closed() && s.h.poll_transmit().is_none());
}

#[test]
fn a_hello_from_another_device_than_the_authenticated_one_is_refused() {
    let mut s = session(0);
    let now = s.now();
    let hello = s.t.poll_transmit().unwrap();
    let other = rewrite(hello, |m| {
        if let Message::Hello(h) = m {
            h.device = pos_core::DeviceId::from_bytes([3; 16]);
        }
    });
    s.h.receive(&other, now);
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::WrongPeer);
    assert!(detail.contains("authenticated as"), "{detail}");
}

#[test]
fn a_terminal_clock_far_off_is_flagged_on_the_hub_once() {
    let mut s = session(0);
    // The terminal's clock is 10 minutes ahead.
    let now = s.now();
    let hello = s.t.poll_transmit().unwrap();
    let skewed = rewrite(hello, |m| {
        if let Message::Hello(h) = m {
            h.wall_ms = now.wall_ms + 600_000;
        }
    });
    s.h.receive(&skewed, now);
    s.pump();
    s.advance(small_config().heartbeat_interval_ms);
    let flags: Vec<_> = s
        .hlog
        .iter()
        .filter_map(|e| match e {
            AppEvent::ClockSkew { skew_ms, .. } => Some(*skew_ms),
            _ => None,
        })
        .collect();
    assert_eq!(flags, vec![600_000]);
}

#[test]
fn an_hlc_far_in_the_future_is_flagged_even_with_a_correct_wall_clock() {
    let mut s = session(0);
    let now = s.now();
    let hello = s.t.poll_transmit().unwrap();
    let skewed = rewrite(hello, |m| {
        if let Message::Hello(h) = m {
            h.hlc = pos_core::Hlc::from_parts(now.wall_ms + 86_400_000, 0);
        }
    });
    s.h.receive(&skewed, now);
    s.pump();
    assert!(s.hlog.iter().any(|e| matches!(
        e,
        AppEvent::ClockSkew {
            skew_ms: 86_400_000,
            ..
        }
    )));
    assert_eq!(s.h.peer_hlc().wall_ms(), now.wall_ms + 86_400_000);
}

mod flipped_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 96,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever single byte of a batch is changed on the way, the hub never stores a record
        /// the terminal did not write, and it notices: it closes, or rejects and holds.
        #[test]
        fn a_changed_byte_is_never_stored(at in any::<prop::sample::Index>(), x in 1u8..=255) {
            let mut s = session(50);
            let mut n = 0;
            s.t2h = Box::new(move |mut f| {
                if frame_type(&f) == EVENT_BATCH {
                    n += 1;
                    if n == 2 {
                        let i = at.index(f.len());
                        f[i] ^= x;
                    }
                }
                vec![f]
            });
            // Long enough for the idle timeout to end a connection stuck on a bad length.
            s.settle(6);
            let stored = &s.hdb.stored;
            prop_assert_eq!(&stored[..], &s.tdb.chain.events[..stored.len()]);
            let refused = s.hub_closed_with().is_some()
                || s.hlog.iter().any(|e| matches!(e, AppEvent::SecurityViolation { .. }));
            prop_assert!(refused && stored.len() == 40, "stored {}", stored.len());
        }
    }
}

#[test]
fn a_batch_with_more_signatures_than_records_is_refused_before_checking_them() {
    let mut s = session(0);
    s.pump();
    let mut chain = pos_sync::testing::SignedChain::new(1, 1);
    chain.append_many(3, &["sale"]);
    let last = chain.events[2].clone();
    let seal = Checkpoint::sign(&chain.key, chain.origin, 3, last.hash, last.hlc);
    let batch = Message::EventBatch(pos_sync::message::EventBatch {
        origin: chain.origin,
        entries: chain.events.iter().cloned().map(BatchEntry::Full).collect(),
        checkpoints: vec![seal.clone(); 4],
        seal,
    });
    let now = s.now();
    s.h.receive(&encode(&batch), now);
    s.pump();
    let (reason, detail) = s.hub_closed_with().unwrap();
    assert_eq!(reason, CloseReason::ProtocolViolation);
    assert!(detail.contains("4 checkpoints for 3 records"), "{detail}");
}
